"""Two chronyd on loopback for the clock tests: a server answering NTP, and a client tracking it whose `chronyc`
answers on a command port of its own. Only their configuration files are here; each test starts them its way."""

from __future__ import annotations

import socket
from pathlib import Path


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def write_configs(folder: Path, client_extra: str = "") -> tuple[int, int]:
    """server.conf and client.conf in `folder`; the server's NTP port and the client's command port."""
    server_port, command_port = free_port(), free_port()
    (folder / "server.conf").write_text(
        f"port {server_port}\nbindaddress 127.0.0.1\ncmdport 0\nlocal stratum 1\nallow 127.0.0.1\n"
        f"pidfile {folder}/server.pid\n"
    )
    (folder / "client.conf").write_text(
        f"server 127.0.0.1 port {server_port} iburst minpoll -2 maxpoll -2\n{client_extra}port 0\n"
        f"cmdport {command_port}\nbindcmdaddress 127.0.0.1\ncmdallow 127.0.0.1\npidfile {folder}/client.pid\n"
    )
    return server_port, command_port
