"""`sitegate demo` (what `make demo` runs): a scripted morning at a gate, on any Linux machine.

It starts the service simulator and the real daemon (`sitegate run`, fifo badge sources, mock GPIO) as
processes, badges a few dozen workers in, plus an unknown badge, a double tap and an OUT without IN, waits
for the queue to drain to "delivered", and shows what came back. --interactive keeps the gate running for
badging by hand (type a UID and Enter, as a USB keyboard-wedge reader does; Ctrl-D stops it). The demo's folder is
./demo-data (or --dir), replaced at each run, so the commands it suggests next find its data.
"""

from __future__ import annotations

import json
import os
import shlex
import shutil
import signal
import subprocess
import sys
import threading
from importlib import resources
from pathlib import Path

from sitegate import config as configuration
from sitegate.clock import SYSTEM
from sitegate.clock.timefmt import local, show
from sitegate.config import SOAP_PATH
from sitegate.device import Device
from sitegate.domain.roster import parse_csv
from sitegate.errors import SitegateError
from sitegate.output import pairs, table
from sitegate.queue import delivery
from sitegate.service.credentials import make_self_signed
from sitegate.service.remarks import info

EXTRA_WORKERS = 30
# A demonstration site (the tests use it too): works declaration, company and a place of work in Brussels.
DEMO_SITE = """
[site]
works_declaration = "1Y101DRUNWB5Z"
employers = ["0403.170.701"]
registration_mode = "in_out"
reception_delay_s = 900

[site.place_of_work.coordinates]
latitude = 50.8466
longitude = 4.3528

[site.place_of_work.address]
post_code = "1000"
municipality = "Bruxelles"
street = "Rue de la Loi"
house_number = "16"
"""
# The outage probes stay on this machine: the gateway is loopback (a refused connection proves it answers) and no
# independent reference host is asked (a real gate asks one, see `sitegate config example`).
LOOPBACK_PROBES = """
[outage]
gateway = "127.0.0.1"
reference_url = ""
"""
DEMO_CONFIG = (
    """
[device]
id = "demo-gate"
data_dir = "data"
"""
    + DEMO_SITE
    + """
[[reader]]
name = "{entry_name}"
source = "{entry_source}"
direction = "{entry_direction}"
fifo_path = "entry.fifo"
same_badge_window_s = 30

[[reader]]
name = "exit"
source = "fifo"
direction = "exit"
fifo_path = "exit.fifo"

[service]
base_url = "{base_url}"
token_url = "{token_url}"
client_id = "sitegate-demo"
key_file = "credentials/client.key"
cert_file = "credentials/client.crt"
channel = "{channel}"
fallback = "{fallback}"
soap_url = "{soap_url}"

[clock]
# The demo machine may have no time source at all: trust its clock (never on a real gate).
trust_system_clock = true
"""
    + LOOPBACK_PROBES
)


def _sitegate() -> str:
    return str(Path(sys.executable).parent / "sitegate")


def _environment(config_file: Path) -> dict:
    return {**os.environ, "SITEGATE_CONFIG": str(config_file), "GPIOZERO_PIN_FACTORY": "mock", "PYTHONUNBUFFERED": "1"}


CHANNELS = ("rest", "soap")


def prepare(directory: Path, endpoints: dict, interactive: bool, channel: str = "rest") -> Path:
    """Config and a roster (the demo workers, names with diacritics, and a few dozen more); the gate's credentials
    are made before, as the simulator trusts its certificate. The other channel is the fallback, as on a gate that
    has both."""
    config_file = directory / "sitegate.toml"
    config_file.write_text(
        DEMO_CONFIG.format(
            base_url=endpoints["base_url"],
            token_url=endpoints["token_url"],
            soap_url=endpoints["url"] + SOAP_PATH,
            channel=channel,
            fallback=next(other for other in CHANNELS if other != channel),
            entry_name="desk" if interactive else "entry",
            entry_source="keyboard" if interactive else "fifo",
            entry_direction="toggle" if interactive else "entry",
        ),
        encoding="utf-8",
    )
    roster = resources.files("sitegate").joinpath("data/demo_roster.csv").read_text(encoding="utf-8")
    roster += "".join(
        f"04C0{i:04X},,{10**16 + i:017d},Worker{i:02d},Demo,0403.170.701,,\n" for i in range(EXTRA_WORKERS)
    )
    device = Device.open(configuration.load(config_file), SYSTEM)
    device.roster.replace(parse_csv(roster).workers)
    device.close()
    return config_file


def _wait_ready(daemon: subprocess.Popen) -> None:
    for line in daemon.stdout:
        if json.loads(line).get("event") == "ready":
            return
    raise RuntimeError(f"the daemon did not start: {daemon.stderr.read()[-2000:]}")


def _badge(pipe: Path, uid: str, pause: float = 0.05) -> None:
    with open(pipe, "w") as fifo:
        fifo.write(uid + "\n")
    SYSTEM.wait(pause)


def _clock() -> str:
    """The real Brussels time beside each step: the remarks table that follows shows real times too."""
    return local(SYSTEM.now()).strftime("%H:%M:%S")


def _morning(directory: Path, channel: str) -> None:
    roster_uids = [
        line.split(",")[0]
        for line in resources.files("sitegate").joinpath("data/demo_roster.csv").read_text().splitlines()[1:]
    ]
    uids = roster_uids[:-1] + [f"04C0{i:04X}" for i in range(EXTRA_WORKERS)]
    print(f"{_clock()}  {len(uids)} workers badge IN at the entry reader …")
    for uid in uids:
        _badge(directory / "entry.fifo", uid, 0.02)
    print(f"{_clock()}  a double tap (the same badge twice within the window) …")
    _badge(directory / "entry.fifo", uids[0])
    print(f"{_clock()}  an unknown badge …")
    _badge(directory / "entry.fifo", "DEADBEEF")
    expected = "remark 24 expected" if channel == "rest" else "SOAP: the day's first badge is the presence"
    print(f"{_clock()}  an OUT without IN at the exit reader ({roster_uids[-1]}: {expected}) …")
    _badge(directory / "exit.fifo", roster_uids[-1])


def _drain(config_file: Path, timeout: float = 60) -> Device:
    device = Device.open(configuration.load(config_file), SYSTEM)
    deadline = SYSTEM.monotonic_ns() + timeout * 1e9
    while SYSTEM.monotonic_ns() < deadline:
        summary = delivery.summary(device.db, SYSTEM.now())
        print(f"\r          queue: {summary.pending} pending, {summary.delivered} delivered   ", end="", flush=True)
        if summary.undelivered == 0 and summary.delivered:
            break
        SYSTEM.wait(0.3)
    print()
    return device


def _report(device: Device, config_file: Path, daemon_lines: list[dict]) -> None:
    outcomes: dict[str, int] = {}
    for entry in daemon_lines:
        if entry.get("event") == "badge":
            outcomes[entry["outcome"]] = outcomes.get(entry["outcome"], 0) + 1
    summary = delivery.summary(device.db, SYSTEM.now())
    rows = delivery.rows(device.db)
    records = device.log.get_many([row.seq for row in rows])
    remark_rows = []
    for row in rows:
        seq, service_id, codes = row.seq, row.service_id, row.remarks
        wall, payload = records[seq].wall_utc, records[seq].payload
        expected = ",".join(map(str, row.expected_remarks))
        if codes:
            data = json.loads(payload)
            remark_rows.append(
                [
                    seq,
                    show(wall),
                    data["direction"],
                    service_id,
                    ",".join(map(str, codes)),
                    expected,
                    info(codes[0]).text_en,
                ]
            )
    print()
    print(
        pairs(
            [
                ("badges", ", ".join(f"{n} {k}" for k, n in outcomes.items())),
                ("delivered", f"{summary.delivered} (pending {summary.pending}, rejected {summary.rejected})"),
                ("signed records", device.log.count()),
            ]
        )
    )
    if remark_rows:
        print("\nremarks that came back from the service:")
        print(table(remark_rows, ["seq", "time (Brussels)", "dir", "service id", "remarks", "expected", "meaning"]))
    print("\nwhere to look next (the demo's gate has stopped: `status` says so, as it should):")
    print(f"  export SITEGATE_CONFIG={shlex.quote(str(config_file))}")
    for command in ("status", "queue", "remarks", "roster list", "verify", "clock"):
        print(f"  {shlex.quote(_sitegate())} {command}")


DEFAULT_DIR = Path("demo-data")  # in the current folder, replaced at each run: nothing piles up in /tmp
MARKER = ".sitegate-demo"  # left in a demo's folder: only such a folder is ever emptied


def fresh(directory: Path) -> Path:
    """The demo's folder, emptied when it holds an earlier demo; another folder of that name is never touched."""
    directory = directory.resolve()
    if (directory / MARKER).is_file():
        shutil.rmtree(directory)
    elif directory.exists() and any(directory.iterdir()):
        raise SitegateError(f"{directory} exists and holds no earlier demo", "give another folder with --dir")
    directory.mkdir(parents=True, exist_ok=True)
    (directory / MARKER).write_text("made by `sitegate demo`: emptied at its next run\n", encoding="utf-8")
    return directory


class Echo(threading.Thread):
    """The daemon's JSON lines, as a person reads them: one line per badge, and what went wrong."""

    def __init__(self, stream) -> None:
        super().__init__(daemon=True)
        self.stream = stream
        self.ready = threading.Event()
        self.badges = 0

    def run(self) -> None:
        for line in self.stream:
            try:
                entry = json.loads(line)
            except ValueError:
                continue
            if entry.get("event") == "ready":
                self.ready.set()
            elif entry.get("event") == "badge":
                said = f"{entry.get('uid')}: {entry['outcome']}"
                said += f" {entry['direction']}" if entry.get("direction") else ""
                said += f" ({entry['reason']})" if entry.get("reason") else ""
                print(f"  {_clock()}  {said}", flush=True)
                self.badges += 1
            elif entry.get("level") in ("warning", "error", "critical"):
                print(f"  {_clock()}  {entry.get('msg')}: {entry.get('problem') or entry.get('detail') or ''}")


def _by_hand(config_file: Path) -> int:
    """The gate for badging by hand: each line typed goes to the keyboard reader; Ctrl-D (end of input) stops it,
    once every line typed has been handled."""
    daemon = subprocess.Popen(
        [_sitegate(), "run"], env=_environment(config_file), stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True
    )
    echo = Echo(daemon.stdout)
    echo.start()
    echo.ready.wait(60)
    typed = 0
    try:
        for line in sys.stdin:
            daemon.stdin.write(line)
            daemon.stdin.flush()
            typed += bool(line.strip())
        daemon.stdin.close()
        deadline = SYSTEM.monotonic_ns() + 10e9
        while echo.badges < typed and SYSTEM.monotonic_ns() < deadline and daemon.poll() is None:
            SYSTEM.wait(0.1)
    except KeyboardInterrupt:
        pass
    daemon.send_signal(signal.SIGTERM)
    code = daemon.wait(30)
    echo.join(5)
    print("gate stopped")
    return 0 if code in (0, -signal.SIGTERM) else code


def run_demo(directory: Path | None = None, interactive: bool = False, channel: str = "rest") -> int:
    directory = fresh(Path(directory or DEFAULT_DIR))
    certificate = make_self_signed(directory / "credentials", SYSTEM.now(), "client")[1]
    simulator = subprocess.Popen(
        [_sitegate(), "simulator", "--port", "0", "--trust", str(certificate)], stdout=subprocess.PIPE, text=True
    )
    daemon = None
    try:
        endpoints = json.loads(simulator.stdout.readline())
        config_file = prepare(directory, endpoints, interactive, channel)
        print(f"demo site in {directory}; service simulator at {endpoints['url']} ({channel.upper()} channel)")
        if interactive:
            print("type a badge UID and Enter (e.g. 04A1B2C3); Ctrl-D or Ctrl-C to stop")
            return _by_hand(config_file)
        daemon = subprocess.Popen(
            [_sitegate(), "run"],
            env=_environment(config_file),
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        _wait_ready(daemon)
        print("gate daemon ready (sitegate run, fifo readers 'entry' and 'exit', GPIO simulated)\n")
        _morning(directory, channel)
        device = _drain(config_file)
        daemon.send_signal(signal.SIGTERM)
        out, _ = daemon.communicate(timeout=30)
        lines = [json.loads(line) for line in out.splitlines() if line.startswith("{")]
        _report(device, config_file, lines)
        return 0
    finally:
        for process in (daemon, simulator):
            if process is not None and process.poll() is None:
                process.terminate()
                process.wait(10)
