"""A network namespace of the test's own, with a DNS server of its own inside it.

A process started through `prefix` (`ip netns exec NAME`) sees only the namespace's loopback, and its name lookups
(the system resolver: getaddrinfo, as `requests` does) go to the test's DNS server (tests/helpers/dns_server.py), for
`ip netns exec` bind-mounts /etc/netns/NAME/resolv.conf over /etc/resolv.conf. So a test can give the real daemon a
name the resolver does not know without asking the machine's resolver anything. Creating a namespace needs root.
"""

from __future__ import annotations

import contextlib
import itertools
import json
import os
import shutil
import signal
import subprocess
import sys
from pathlib import Path

import pytest

DNS_SERVER = Path(__file__).resolve().parent / "helpers" / "dns_server.py"
_numbers = itertools.count()


def needs_root() -> None:
    """Skip (with the reason) where a network namespace cannot be made."""
    if os.geteuid() != 0:
        pytest.skip("needs root: the test makes a network namespace of its own (ip netns add) for the daemon's DNS")


class NetworkNamespace:
    """`with NetworkNamespace({"service.test": "127.0.0.1"}) as namespace:` loopback up, the names answered by the
    namespace's own DNS server, every other name NXDOMAIN. On leaving, whatever still runs in it is killed (the
    test's own processes), then the namespace and its resolv.conf are removed."""

    def __init__(self, names: dict[str, str]) -> None:
        self.names = names
        self.name = f"sitegate-test-{os.getpid()}-{next(_numbers)}"
        self.etc = Path("/etc/netns") / self.name
        self.made_etc_netns = not self.etc.parent.exists()  # removed again at the end if this made it
        self.prefix = ("ip", "netns", "exec", self.name)
        self.dns: subprocess.Popen | None = None

    def __enter__(self) -> NetworkNamespace:
        subprocess.run(["ip", "netns", "add", self.name], check=True, capture_output=True)
        try:
            subprocess.run(["ip", "-n", self.name, "link", "set", "lo", "up"], check=True, capture_output=True)
            self.etc.mkdir(parents=True)
            (self.etc / "resolv.conf").write_text("nameserver 127.0.0.1\noptions timeout:2 attempts:1\n")
            pairs = [f"{name}={address}" for name, address in self.names.items()]
            self.dns = subprocess.Popen(
                [*self.prefix, sys.executable, str(DNS_SERVER), "53", *pairs], stdout=subprocess.PIPE, text=True
            )
            line = self.dns.stdout.readline()
            if not line or json.loads(line)["port"] != 53:
                raise RuntimeError(f"the namespace's DNS server did not start: {line!r}")
        except BaseException:
            self.__exit__()
            raise
        return self

    def __exit__(self, *_) -> None:
        if self.dns is not None:
            self.dns.terminate()
            self.dns.wait(10)
            self.dns.stdout.close()
        leftover = subprocess.run(["ip", "netns", "pids", self.name], capture_output=True, text=True).stdout.split()
        for pid in map(int, leftover):  # a process of the test's that failed before stopping it
            os.kill(pid, signal.SIGKILL)
            with contextlib.suppress(ChildProcessError):
                os.waitpid(pid, 0)
        subprocess.run(["ip", "netns", "delete", self.name], check=True, capture_output=True)
        shutil.rmtree(self.etc, ignore_errors=True)
        if self.made_etc_netns:
            with contextlib.suppress(OSError):  # another namespace's folder may be there by now
                self.etc.parent.rmdir()
