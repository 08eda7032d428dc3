"""A site on this machine: Debian's mosquitto with the shipped configuration and ACL (TLS, one user per gate), and
real `sitegate run` daemons with fifo readers, each in its own folder, all on loopback."""

from __future__ import annotations

import contextlib
import json
import signal
from collections.abc import Iterator
from pathlib import Path

import paho.mqtt.client as mqtt
from conftest import CONFIG_TEXT, run_sitegate
from gate_site import ROSTER_HEADER, DaemonProcess, wait_until
from simulator_process import SimulatorProcess, client_credentials, service_section

from sitegate.clock import SYSTEM
from sitegate.queue.signing import DeviceKey
from sitegate.site.broker import LocalBroker

GATES = ("gate-a", "gate-b", "gate-c")
BOUW = "0403170701"


def badge(first_uid: int, index: int) -> str:
    return f"{first_uid + index:08X}"


def roster_rows(first_uid: int, first_number: int, name: str, count: int) -> list[str]:
    """`count` workers of BOUW: badges from `first_uid`, Limosa numbers from `first_number`, named name0, name1…"""
    return [f"{badge(first_uid, i)},,{first_number + i:017d},{name}{i},Test,{BOUW},," for i in range(count)]


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
        wait_until(
            lambda: len(self.badges()) >= self.handled + len(uids), f"{self.device}: {len(uids)} badge(s) handled"
        )
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


def make_site(
    directory: Path, broker: LocalBroker, service: str, devices=GATES, health_every_s: float = 1.0
) -> dict[str, SiteGate]:
    """health_every_s: 1 s for the tests (the fleet view and the peers heard at once), the default for a bench."""
    gates = {device: SiteGate(directory / device, device, service) for device in devices}
    for device, gate in gates.items():
        peers = {other.device: other.public_key for other in gates.values() if other.device != device}
        metrics = f'\n[metrics]\ntextfile = "{gate.directory / "metrics" / "sitegate.prom"}"\nevery_s = 1.0\n'
        gate.configure(broker.bus_section(gate.directory, device, peers, health_every_s=health_every_s) + metrics)
    return gates


def simulator_service(simulator, directory: Path) -> str:
    return service_section(simulator.base_url, simulator.token_url, client_credentials(directory / "cred"))


def client(broker: LocalBroker, user: str, name: str) -> mqtt.Client:
    """A bare MQTT connection with one user's credentials (a test's listener, or someone holding a gate's password)."""
    connection = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id=name, protocol=mqtt.MQTTv5)
    connection.username_pw_set(user, broker.passwords[user])
    connection.tls_set(ca_certs=str(broker.ca_file))
    connection.connect("127.0.0.1", broker.port)
    connection.loop_start()
    return connection


PACKET_TOO_LARGE = 0x95  # MQTT 5: why mosquitto disconnects a client sending over the shipped max_packet_size


def send_too_large(broker: LocalBroker, user: str, topic: str, payload: bytes) -> None:
    """Publish a message over the broker's limit with `user`'s password, until the broker disconnects us for it."""
    reasons: list[mqtt.ReasonCode] = []
    sender = client(broker, user, f"test-too-large-{user}")
    sender.on_disconnect = lambda c, u, flags, reason, props: reasons.append(reason)
    try:
        wait_until(sender.is_connected, f"{user}'s credentials connected")
        sender.publish(topic, payload, qos=1)
        refused = f"the broker refused {len(payload)} bytes"
        wait_until(lambda: any(r.value == PACKET_TOO_LARGE for r in reasons), refused)
    finally:
        sender.loop_stop()  # else paho connects again and sends it again (refused again)
        sender.disconnect()


@contextlib.contextmanager
def running_site(
    directory: Path, roster: list[str], running=GATES
) -> Iterator[tuple[LocalBroker, dict, SimulatorProcess]]:
    """A broker, the service simulator and the site's gates (those named in `running` started with `roster`),
    all stopped afterwards."""
    broker = LocalBroker(directory / "broker", SYSTEM).start()
    simulator = SimulatorProcess()
    gates = make_site(directory, broker, simulator_service(simulator, directory))
    started = [gates[name] for name in running]
    try:
        for gate in started:
            gate.roster(roster)
            gate.start()
        yield broker, gates, simulator
    finally:
        for gate in started:
            gate.stop()
        broker.stop()
        simulator.stop()
