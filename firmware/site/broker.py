"""A broker on this machine for the site demo and the tests: Debian's mosquitto with the shipped configuration and
ACL (`sitegate/site/mosquitto/`), paths and port rewritten into a folder of its own, TLS with a self-signed
certificate, one password per gate. Never for a real site: there the broker is installed as the README says."""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import ssl
import subprocess
from importlib import resources
from pathlib import Path

from sitegate.clock import Clock
from sitegate.errors import SitegateError
from sitegate.service.credentials import make_self_signed

SITE = "site-1"  # the site name the shipped ACL's example blocks use
USERS = ("gate-a", "gate-b", "gate-c", "fleet")
INSTALL_HINT = "install Debian's broker: sudo apt-get install mosquitto"


def shipped(name: str) -> str:
    return resources.files("sitegate.site").joinpath(f"mosquitto/{name}").read_text(encoding="utf-8")


def acl_for(users: tuple[str, ...]) -> str:
    """The shipped ACL, plus one block per gate it does not name, written as its comment says (gate-a's block with
    the device id changed): a site of twelve gates for the benchmarks."""
    acl = shipped("sitegate.acl")
    template = acl[acl.index("user gate-a\n") : acl.index("\n\n", acl.index("user gate-a\n"))]
    extra = [template.replace("gate-a", user) for user in users if user != "fleet" and f"user {user}\n" not in acl]
    return acl + "".join(f"\n{block}\n" for block in extra)


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


class LocalBroker:
    """`mosquitto -c` in its own process group on 127.0.0.1; kill() and start() again keep port and data."""

    def __init__(self, directory: Path, clock: Clock, users: tuple[str, ...] = USERS) -> None:
        for tool in ("mosquitto", "mosquitto_passwd"):
            if shutil.which(tool) is None:
                raise SitegateError(f"{tool} is not installed", INSTALL_HINT)
        self.directory = directory
        self.clock = clock  # the start's deadline and pauses
        directory.mkdir(parents=True, exist_ok=True)
        self.port = free_port()
        self.key, self.ca_file = make_self_signed(
            directory / "certs", clock.now(), "broker", hosts=("127.0.0.1", "localhost")
        )
        self.passwords = {user: f"pw-{user}" for user in users}
        passwd = directory / "sitegate.passwd"
        for user, password in self.passwords.items():
            create = [] if passwd.exists() else ["-c"]
            subprocess.run(["mosquitto_passwd", *create, "-b", str(passwd), user, password], check=True)
        (directory / "sitegate.acl").write_text(acl_for(users))
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
        for line in shipped("sitegate.conf").splitlines():
            name = line.split(" ", 1)[0]
            lines.append(f"{name} {replacements[name]}" if name in replacements else line)
        if os.geteuid() == 0:
            lines.append("user root")  # else mosquitto drops to the `mosquitto` user, who cannot read this folder
        self.config = directory / "mosquitto.conf"
        self.config.write_text("\n".join(lines) + "\n")
        self.process: subprocess.Popen | None = None

    def start(self, timeout_s: float = 10) -> LocalBroker:
        log = open(self.directory / "mosquitto.log", "a")  # noqa: SIM115 - the broker's own output, kept
        self.process = subprocess.Popen(
            ["mosquitto", "-c", str(self.config)], stdout=log, stderr=log, start_new_session=True
        )
        log.close()
        context = ssl.create_default_context(cafile=str(self.ca_file))
        deadline = self.clock.monotonic_ns() + timeout_s * 1e9
        while self.clock.monotonic_ns() < deadline:
            try:
                with socket.create_connection(("127.0.0.1", self.port), 0.5) as raw:
                    with context.wrap_socket(raw, server_hostname="127.0.0.1"):
                        return self
            except OSError:
                self.clock.wait(0.05)
        self.stop()
        raise SitegateError(
            f"mosquitto did not start: {(self.directory / 'mosquitto.log').read_text()[-1000:]}", INSTALL_HINT
        )

    def _signal(self, sig: int) -> None:
        if self.process and self.process.poll() is None:
            os.killpg(self.process.pid, sig)
            self.process.wait(10)

    def kill(self) -> None:
        self._signal(signal.SIGKILL)

    def stop(self) -> None:
        self._signal(signal.SIGTERM)

    def bus_section(self, directory: Path, user: str, peers: dict[str, str], **options: object) -> str:
        """The [bus] section of a gate on this broker (its password in a 0600 file beside it)."""
        password = directory / "bus.password"
        password.write_text(self.passwords.get(user, "wrong") + "\n")
        password.chmod(0o600)
        listed = ", ".join(f'{{id = "{device}", public_key = "{key}"}}' for device, key in peers.items())
        extra = "".join(f"{name} = {json.dumps(value)}\n" for name, value in options.items())
        return (
            f'\n[bus]\nhost = "127.0.0.1"\nport = {self.port}\nsite = "{SITE}"\nusername = "{user}"\n'
            f'password_file = "{password}"\nca_file = "{self.ca_file}"\npeers = [{listed}]\n{extra}'
        )
