"""A gate as a foreman meets it: the real `sitegate run` with fifo readers, probes and faults all on loopback.

Each site writes its own configuration (service, outage probes, clock, employers), starts the daemon as a process
and reads what people read: `sitegate outage --json`, `sitegate status --json`, the printed listing.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import socket
import time
from collections.abc import Callable, Iterator
from pathlib import Path

from conftest import run_sitegate
from gate_site import ROSTER_HEADER, DaemonProcess, wait_until
from simulator_process import client_credentials

SITE = """
[site]
{works}
employers = [{{number = "0403.170.701", name = "Bouw Peeters NV"}}, {{number = "0202.239.951", name = "Clean Star BV"}}]
language = "{language}"

[site.place_of_work.coordinates]
latitude = 50.8466
longitude = 4.3528
"""


DEFAULTS = {
    "ca_file": None,
    "reference_url": "",
    "grace_s": 1,
    "probe_interval_s": 1,
    "summary_every_s": 60,
    "trusted_clock": True,
    "first_sync_wait_s": 120,  # the product's default
    "works_declaration": "1Y101DRUNWB5Z",
    "language": "en",
    "gateway": "127.0.0.1",
    "probe_timeout_s": 5,
}


def trusting(directory: Path, ca_file) -> dict:
    """The daemon's environment: the system trust store is this CA only (as a Pi trusts the public CAs)."""
    empty = directory / "no-certs"
    empty.mkdir(parents=True, exist_ok=True)
    return {"SSL_CERT_FILE": str(ca_file), "SSL_CERT_DIR": str(empty)}


@contextlib.contextmanager
def silent_gateway() -> Iterator[str]:
    """A gateway that ignores our probe (a router dropping its DNS port): a listener on loopback whose accept
    queue is full, so a new connection is never answered and times out."""
    listener = socket.create_server(("127.0.0.1", 0), backlog=0)
    address = listener.getsockname()
    waiting = [socket.socket() for _ in range(3)]
    try:
        for client in waiting:
            client.setblocking(False)
            client.connect_ex(address)
        yield f"{address[0]}:{address[1]}"
    finally:
        for client in waiting:
            client.close()
        listener.close()


def closed_port_url(path: str = "") -> str:
    """An address on this machine where nothing listens: a connection there is refused at once."""
    return f"https://127.0.0.1:9{path}"


class Site:
    """One gate in its own folder; stop() kills the daemon (and nothing else is left running)."""

    def __init__(self, directory: Path, base_url: str, token_url: str, env: dict | None = None, **options) -> None:
        self.directory = directory
        directory.mkdir(parents=True, exist_ok=True)
        self.credentials = client_credentials(directory)
        self.config = directory / "sitegate.toml"
        self.options = {**DEFAULTS, "base_url": base_url, "token_url": token_url, **options}
        self.write()
        self.env = env or {}
        self.daemon: DaemonProcess | None = None
        self.handled = 0  # badges the daemon has logged so far
        self.prefix: tuple[str, ...] = ()  # the daemon run through it: `ip netns exec NAME` (network_namespace.py)

    def write(self) -> None:
        o = self.options
        works = f'works_declaration = "{o["works_declaration"]}"' if o["works_declaration"] else ""
        ca = f'ca_file = "{o["ca_file"]}"\n' if o["ca_file"] else ""
        clock = "trust_system_clock = true" if o["trusted_clock"] else 'ntp_server = "127.0.0.1"'
        key, cert = self.credentials
        self.config.write_text(
            '[device]\nid = "gate-01"\ndata_dir = "data"\n'
            + SITE.format(works=works, language=o["language"])
            + '\n[[reader]]\nname = "gate"\nsource = "fifo"\nfifo_path = "badges.fifo"\n'
            + '\n[[reader]]\nname = "exit"\nsource = "fifo"\ndirection = "exit"\nfifo_path = "exit.fifo"\n'
            + f'\n[service]\nbase_url = "{o["base_url"]}"\ntoken_url = "{o["token_url"]}"\nclient_id = "test"\n'
            + f'key_file = "{key}"\ncert_file = "{cert}"\n{ca}connect_timeout_s = 2.0\nread_timeout_s = 2.0\n'
            + f'\n[outage]\ngateway = "{o["gateway"]}"\nreference_url = "{o["reference_url"]}"\n'
            + f"grace_s = {o['grace_s']}\nprobe_interval_s = {o['probe_interval_s']}\n"
            + f"summary_every_s = {o['summary_every_s']}\nprobe_timeout_s = {o['probe_timeout_s']}\n"
            + f"\n[clock]\n{clock}\nfirst_sync_wait_s = {o['first_sync_wait_s']}\n",
            encoding="utf-8",
        )

    def restart(self, **changes) -> Site:
        """Stop, change the configuration (a gate moved to another network, say), start again."""
        self.stop()
        self.options.update(changes)
        self.write()
        self.handled = 0
        return self.start()

    def roster(self, rows: list[str]) -> None:
        path = self.directory / f"roster-{time.monotonic_ns()}.csv"
        path.write_text(ROSTER_HEADER + "\n".join(rows) + "\n", encoding="utf-8")
        result = self.sitegate("roster", "import", str(path))
        assert result.returncode in (0, 1), result.stderr

    def start(self) -> Site:
        self.daemon = DaemonProcess(self.config, env=self.env, prefix=self.prefix)
        self.daemon.wait_ready()
        return self

    def badge(self, *uids: str, reader: str = "gate") -> None:
        with open(self.directory / "badges.fifo", "w") as pipe:
            for uid in uids:
                pipe.write(f"{uid} {reader}\n")
        self.wait(lambda: len(self.badges()) >= self.handled + len(uids), f"{len(uids)} badge(s) handled")
        self.handled = len(self.badges())

    def badges(self) -> list[dict]:
        return [e for e in list(self.daemon.lines) if e.get("event") == "badge"]

    def sitegate(self, *args: str, **kwargs):
        env = {**os.environ, **self.env}
        return run_sitegate(*args, config=self.config, env=env, **kwargs)

    def json(self, *args: str) -> dict:
        result = self.sitegate(*args, "--json")
        assert result.stdout, result.stderr
        return json.loads(result.stdout)

    def outage(self, *args: str) -> dict:
        return self.json("outage", *args)

    def wait(self, ready: Callable[[], object], what: str, timeout: float = 30) -> object:
        return wait_until(ready, what, timeout, lambda: f"daemon said {self.daemon.lines[-5:]}")

    def wait_outage(self, state: str, timeout: float = 30) -> dict:
        return self.wait(lambda: (shown := self.outage())["state"] == state and shown, f"outage {state}", timeout)

    def stop(self) -> None:
        if self.daemon and self.daemon.process.poll() is None:
            self.daemon.kill(signal.SIGTERM)
