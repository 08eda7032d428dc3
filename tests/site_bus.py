"""A site on this machine: Debian's mosquitto with the shipped configuration and ACL (TLS, one user per gate), and
real `sitegate run` daemons with fifo readers, each in its own folder, all on loopback."""

from __future__ import annotations

import json
import os
import signal
import socket
import ssl
import subprocess
import time
from collections.abc import Callable
from pathlib import Path

from conftest import CONFIG_TEXT, REPO, run_sitegate
from gate_site import ROSTER_HEADER, DaemonProcess
from simulator_process import client_credentials, service_section

from sitegate.queue.credentials import make_self_signed
from sitegate.queue.signing import DeviceKey

SHIPPED = REPO / "systemd" / "mosquitto"
SITE = "site-1"
GATES = ("gate-a", "gate-b", "gate-c")


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


class Broker:
    """mosquitto -c (the shipped sitegate.conf and sitegate.acl, paths and port rewritten), its own process group."""

    def __init__(self, directory: Path, users: tuple[str, ...] = (*GATES, "fleet")) -> None:
        self.directory = directory
        directory.mkdir(parents=True, exist_ok=True)
        self.port = free_port()
        self.key, self.ca_file = make_self_signed(directory / "certs", "broker", hosts=("127.0.0.1", "localhost"))
        self.passwords = {user: f"pw-{user}" for user in users}
        passwd = directory / "sitegate.passwd"
        for user, password in self.passwords.items():
            create = ["-c"] if not passwd.exists() else []
            subprocess.run(["mosquitto_passwd", *create, "-b", str(passwd), user, password], check=True)
        (directory / "sitegate.acl").write_text((SHIPPED / "sitegate.acl").read_text())
        (directory / "data").mkdir(exist_ok=True)
        replacements = {
            "password_file": passwd,
            "acl_file": directory / "sitegate.acl",
            "persistence_location": f"{directory / 'data'}/",
            "listener": f"{self.port} 127.0.0.1",
            "cafile": self.ca_file,
            "certfile": self.ca_file,
            "keyfile": self.key,
        }
        lines = []
        for line in (SHIPPED / "sitegate.conf").read_text().splitlines():
            name = line.split(" ", 1)[0]
            lines.append(f"{name} {replacements[name]}" if name in replacements else line)
        if os.geteuid() == 0:
            lines.append("user root")  # else mosquitto drops to the `mosquitto` user, who cannot read this folder
        self.config = directory / "mosquitto.conf"
        self.config.write_text("\n".join(lines) + "\n")
        self.process: subprocess.Popen | None = None

    def start(self) -> Broker:
        log = open(self.directory / "mosquitto.log", "a")  # noqa: SIM115 - the broker's output, kept for a failure
        self.process = subprocess.Popen(
            ["mosquitto", "-c", str(self.config)], stdout=log, stderr=log, start_new_session=True
        )
        deadline = time.monotonic() + 10
        context = ssl.create_default_context(cafile=str(self.ca_file))
        while time.monotonic() < deadline:
            try:
                with socket.create_connection(("127.0.0.1", self.port), 0.5) as raw:
                    with context.wrap_socket(raw, server_hostname="127.0.0.1"):
                        return self
            except OSError:
                time.sleep(0.05)
        raise AssertionError(f"mosquitto did not start: {(self.directory / 'mosquitto.log').read_text()[-2000:]}")

    def kill(self) -> None:
        if self.process and self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGKILL)
            self.process.wait(10)

    def stop(self) -> None:
        if self.process and self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGTERM)
            self.process.wait(10)


def bus_section(broker: Broker, directory: Path, user: str, peers: dict[str, str], **options) -> str:
    password = directory / "bus.password"
    password.write_text(broker.passwords.get(user, "wrong") + "\n")
    password.chmod(0o600)
    listed = ", ".join(f'{{id = "{device}", public_key = "{key}"}}' for device, key in peers.items())
    extra = "".join(f"{name} = {json.dumps(value)}\n" for name, value in options.items())
    return (
        f'\n[bus]\nhost = "127.0.0.1"\nport = {broker.port}\nsite = "{SITE}"\nusername = "{user}"\n'
        f'password_file = "{password}"\nca_file = "{broker.ca_file}"\npeers = [{listed}]\n{extra}'
    )


class SiteGate:
    """One gate of the site: own folder, key made up front (its peers pin it), fifo reader, the daemon."""

    def __init__(self, directory: Path, device: str, service: str, window_s: float = 0) -> None:
        self.directory, self.device = directory, device
        directory.mkdir(parents=True, exist_ok=True)
        (directory / "data").mkdir(exist_ok=True)
        self.public_key = DeviceKey.load_or_create(directory / "data" / "device.key").public_key_hex
        self.base = (
            CONFIG_TEXT.replace('id = "gate-01"', f'id = "{device}"').replace(
                'fifo_path = "badges.fifo"', f'fifo_path = "badges.fifo"\nsame_badge_window_s = {window_s}'
            )
            + service
            + "\n[clock]\ntrust_system_clock = true\n"
        )
        self.config = directory / "sitegate.toml"
        self.daemon: DaemonProcess | None = None
        self.handled = 0

    def configure(self, bus: str) -> None:
        self.config.write_text(self.base + bus)

    def roster(self, rows: list[str]) -> None:
        path = self.directory / "roster.csv"
        path.write_text(ROSTER_HEADER + "\n".join(rows) + "\n")
        assert self.sitegate("roster", "import", str(path)).returncode in (0, 1)

    def start(self) -> SiteGate:
        self.daemon = DaemonProcess(self.config)
        self.daemon.wait_ready()
        self.handled = 0
        return self

    def badge(self, *uids: str) -> None:
        with open(self.directory / "badges.fifo", "w") as pipe:
            for uid in uids:
                pipe.write(f"{uid} gate\n")
        wait(lambda: len(self.badges()) >= self.handled + len(uids), f"{self.device}: {len(uids)} badge(s) handled")
        self.handled = len(self.badges())

    def badges(self) -> list[dict]:
        return [e for e in list(self.daemon.lines) if e.get("event") == "badge"] if self.daemon else []

    def events(self, name: str) -> list[dict]:
        return [e for e in list(self.daemon.lines) if e.get("event") == name] if self.daemon else []

    def sitegate(self, *args: str):
        return run_sitegate(*args, config=self.config)

    def json(self, *args: str) -> dict:
        result = self.sitegate(*args, "--json")
        assert result.stdout, result.stderr
        return json.loads(result.stdout)

    def stop(self, sig: int = signal.SIGTERM) -> None:
        if self.daemon and self.daemon.process.poll() is None:
            self.daemon.kill(sig)


def make_site(directory: Path, broker: Broker, service: str, devices: tuple[str, ...] = GATES) -> dict[str, SiteGate]:
    gates = {device: SiteGate(directory / device, device, service) for device in devices}
    for device, gate in gates.items():
        peers = {other.device: other.public_key for other in gates.values() if other.device != device}
        metrics = f'\n[metrics]\ntextfile = "{gate.directory / "metrics" / "sitegate.prom"}"\nevery_s = 1.0\n'
        gate.configure(bus_section(broker, gate.directory, device, peers, health_every_s=1.0) + metrics)
    return gates


def simulator_service(simulator, directory: Path) -> str:
    return service_section(simulator.base_url, simulator.token_url, client_credentials(directory / "cred"))


def wait(ready: Callable[[], object], what: str, timeout: float = 30) -> object:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = ready()
        if value:
            return value
        time.sleep(0.1)
    raise AssertionError(f"not within {timeout} s: {what}")
