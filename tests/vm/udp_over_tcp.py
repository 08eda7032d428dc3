"""NTP (UDP) for the guest through qemu's guestfwd, which carries TCP only: each datagram goes as one TCP connection,
a 2-byte length before it and before the answer.

Both ends are here. `guest PORT ADDRESS:PORT` runs in the guest (a unit): it answers UDP on 127.0.0.1:PORT (chrony's
server) by a TCP connection to the guestfwd address. `host PORT` is qemu's guestfwd `cmd:` end, one per connection
(the connection on stdin/stdout): it passes the datagram to the NTP server on the host's 127.0.0.1:PORT (never
elsewhere) and the answer back. No answer within 2 s (the host's server not started yet): the connection is closed
and the guest's chrony, like any NTP client, sees a lost packet."""

from __future__ import annotations

import os
import socket
import struct
import sys

ANSWER_TIMEOUT_S = 2.0


def read_exactly(read, count: int) -> bytes:
    data = b""
    while len(data) < count:
        chunk = read(count - len(data))
        if not chunk:
            raise EOFError("the other end closed the connection")
        data += chunk
    return data


def framed(datagram: bytes) -> bytes:
    return struct.pack("!H", len(datagram)) + datagram


def read_frame(read) -> bytes:
    (length,) = struct.unpack("!H", read_exactly(read, 2))
    return read_exactly(read, length)


def host_end(port: int) -> None:
    datagram = read_frame(lambda n: os.read(sys.stdin.fileno(), n))
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as server:
        server.settimeout(ANSWER_TIMEOUT_S)
        server.sendto(datagram, ("127.0.0.1", port))
        try:
            answer = server.recv(65536)
        except (TimeoutError, ConnectionRefusedError):
            return
    os.write(sys.stdout.fileno(), framed(answer))


def guest_end(port: int, upstream: tuple[str, int]) -> None:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as listener:
        listener.bind(("127.0.0.1", port))
        while True:
            datagram, client = listener.recvfrom(65536)
            try:
                with socket.create_connection(upstream, timeout=ANSWER_TIMEOUT_S + 1) as connection:
                    connection.sendall(framed(datagram))
                    answer = read_frame(connection.recv)
            except (OSError, EOFError):
                continue  # a lost packet, as UDP would have it
            listener.sendto(answer, client)


if __name__ == "__main__":
    if sys.argv[1] == "host":
        host_end(int(sys.argv[2]))
    else:
        address, upstream_port = sys.argv[3].rsplit(":", 1)
        guest_end(int(sys.argv[2]), (address, int(upstream_port)))
