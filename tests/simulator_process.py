"""The service simulator as a real separate process, and a config pointing the device at it."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import requests

from sitegate.clock import SYSTEM
from sitegate.service.credentials import make_self_signed


class SimulatorProcess:
    """`sitegate simulator` as a process; `prefix` runs it through a command that executes it in its place
    (`ip netns exec NAME`: then only a process in that namespace reaches it)."""

    def __init__(self, *args: str, prefix: tuple[str, ...] = ()) -> None:
        command = [*prefix, str(Path(sys.executable).parent / "sitegate"), "simulator", "--port", "0", *args]
        self.process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        line = self.process.stdout.readline()
        if not line:
            raise RuntimeError(f"simulator did not start: {self.process.stderr.read()}")
        info = json.loads(line)
        self.url, self.ca_file = info["url"], info["ca_file"]
        self.base_url, self.token_url = info["base_url"], info["token_url"]
        self.http = requests.Session()

    def fault(self, fault: str | None, count: int | None = None, seconds: float | None = None) -> None:
        answer = self.http.post(
            f"{self.url}/_sim/fault",
            json={"fault": fault, "count": count, "seconds": seconds},
            verify=self.ca_file or True,
        )
        answer.raise_for_status()

    def summary(self) -> dict:
        return self.http.get(f"{self.url}/_sim/summary", timeout=10, verify=self.ca_file or True).json()

    def received(self) -> dict:
        return self.http.get(f"{self.url}/_sim/received", timeout=30, verify=self.ca_file or True).json()

    def stop(self) -> None:
        if self.process.poll() is None:
            os.kill(self.process.pid, signal.SIGTERM)
            self.process.wait(10)


def service_section(
    base_url: str,
    token_url: str,
    credentials: tuple[Path, Path],
    ca_file: str | None = None,
    read_timeout_s: float = 2.0,
    batch_size: int = 200,
) -> str:
    ca = f'ca_file = "{ca_file}"\n' if ca_file else ""
    return (
        "\n[service]\n"
        f'base_url = "{base_url}"\n'
        f'token_url = "{token_url}"\n'
        'client_id = "sitegate-test-client"\n'
        f'key_file = "{credentials[0]}"\n'
        f'cert_file = "{credentials[1]}"\n'
        f"{ca}"
        f"batch_size = {batch_size}\n"
        "connect_timeout_s = 2.0\n"
        f"read_timeout_s = {read_timeout_s}\n"
    )


def client_credentials(directory: Path) -> tuple[Path, Path]:
    key, cert = directory / "client.key", directory / "client.crt"
    if key.exists():
        return key, cert
    return make_self_signed(directory, SYSTEM.now(), "client")
