"""`sitegate demo --site`: two gates of one site on a local mosquitto, each a real `sitegate run` with fifo
readers, both delivering to the service simulator. Workers go IN at gate A and OUT at gate B; gate B's
`sitegate site` shows who is still on site, and `sitegate fleet` both gates. `make demo` stays the single gate."""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path

from sitegate.clock import SYSTEM
from sitegate.demo import _environment, _sitegate, _wait_ready, fresh, prepare
from sitegate.errors import SitegateError
from sitegate.queue.signing import DeviceKey
from sitegate.service.credentials import make_self_signed
from sitegate.site.broker import INSTALL_HINT, LocalBroker

DEFAULT_SITE_DIR = Path("demo-site-data")  # in the current folder, replaced at each run

GATES = ("gate-a", "gate-b")
WORKERS = ("04A1B2C3", "04A1B2C4", "04A1B2C5", "04A1B2C6")  # the first demo roster workers


def _gates(directory: Path, broker: LocalBroker, endpoints: dict) -> dict[str, Path]:
    configs, keys = {}, {}
    for name in GATES:
        folder = directory / name
        folder.mkdir(parents=True, exist_ok=True)
        make_self_signed(folder / "credentials", SYSTEM.now(), "client")
        configs[name] = prepare(folder, endpoints, interactive=False)
        keys[name] = DeviceKey.load_or_create(folder / "data" / "device.key").public_key_hex
    for name, config in configs.items():
        peers = {other: key for other, key in keys.items() if other != name}
        text = config.read_text().replace('id = "demo-gate"', f'id = "{name}"')
        # The same-badge window spans the site: a worker leaving by gate B a second after entering at gate A would
        # count once. The demo's workers are quick; a real exit keeps the default.
        text = text.replace('fifo_path = "exit.fifo"', 'fifo_path = "exit.fifo"\nsame_badge_window_s = 1')
        config.write_text(text + broker.bus_section(config.parent, name, peers, health_every_s=2.0))
    return configs


def _badge(config: Path, reader_fifo: str, uid: str) -> None:
    with open(config.parent / reader_fifo, "w") as fifo:
        fifo.write(uid + "\n")
    SYSTEM.wait(0.2)


def _sitegate_out(config: Path, *args: str) -> str:
    done = subprocess.run([_sitegate(), *args], env=_environment(config), capture_output=True, text=True, timeout=60)
    return done.stdout + done.stderr


def run_site_demo(directory: Path | None = None) -> int:
    if shutil.which("mosquitto") is None or shutil.which("mosquitto_passwd") is None:
        print(f"the site demo runs a local MQTT broker, and mosquitto is not installed: {INSTALL_HINT}")
        print("(`sitegate demo` without --site needs no broker)")
        return 1
    directory = fresh(Path(directory or DEFAULT_SITE_DIR))
    broker = LocalBroker(directory / "broker", SYSTEM).start()
    simulator = subprocess.Popen([_sitegate(), "simulator", "--port", "0"], stdout=subprocess.PIPE, text=True)
    daemons: dict[str, subprocess.Popen] = {}
    try:
        endpoints = json.loads(simulator.stdout.readline())
        configs = _gates(directory, broker, endpoints)
        print(f"site demo in {directory}: mosquitto on 127.0.0.1:{broker.port} (TLS, the shipped ACL), two gates")
        for name, config in configs.items():
            daemons[name] = subprocess.Popen(
                [_sitegate(), "run"],
                env=_environment(config),
                stdout=subprocess.PIPE,
                stderr=subprocess.DEVNULL,
                text=True,
            )
            _wait_ready(daemons[name])
            print(f"{name} ready (sitegate run)")
        a, b = configs["gate-a"], configs["gate-b"]
        print(f"\n{len(WORKERS)} workers badge IN at gate-a …")
        for uid in WORKERS:
            _badge(a, "entry.fifo", uid)
        deadline = SYSTEM.monotonic_ns() + 30e9
        while SYSTEM.monotonic_ns() < deadline:
            present = json.loads(_sitegate_out(b, "site", "--json") or "{}").get("on_site", 0)
            if present >= len(WORKERS):
                break
            SYSTEM.wait(0.3)
        print(f"gate-b's mirror holds them; two leave by gate-b's exit ({', '.join(WORKERS[:2])}) …\n")
        SYSTEM.wait(1.0)  # past the exit's same-badge window
        for uid in WORKERS[:2]:
            _badge(b, "exit.fifo", uid)
        SYSTEM.wait(1.0)
        print("$ sitegate site   (at gate-b)")
        print(_sitegate_out(b, "site"))
        print("$ sitegate fleet  (at gate-a)")
        print(_sitegate_out(a, "fleet"))
        print(f"each gate: SITEGATE_CONFIG={a} (or {b}) sitegate site | fleet | metrics | status")
        return 0
    except SitegateError as error:
        print(f"error: {error.problem}\nfix: {error.fix}")
        return 2
    finally:
        for process in (*daemons.values(), simulator):
            if process.poll() is None:
                process.terminate()
                process.wait(15)
        broker.stop()
