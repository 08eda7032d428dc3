"""qemu's guestfwd `cmd:` end: one guest connection, relayed to a TCP port on the host's loopback (never elsewhere).

qemu runs this once per connection the guest opens to the forwarded address, with the connection on stdin/stdout."""

from __future__ import annotations

import os
import selectors
import socket
import sys


def relay(port: int) -> None:
    upstream = socket.create_connection(("127.0.0.1", port), timeout=10)
    upstream.settimeout(None)
    selector = selectors.DefaultSelector()
    selector.register(sys.stdin.fileno(), selectors.EVENT_READ, "guest")
    selector.register(upstream, selectors.EVENT_READ, "host")
    while True:
        for key, _ in selector.select():
            if key.data == "guest":
                data = os.read(sys.stdin.fileno(), 65536)
                if not data:
                    upstream.shutdown(socket.SHUT_WR)
                    selector.unregister(sys.stdin.fileno())
                    continue
                upstream.sendall(data)
            else:
                data = upstream.recv(65536)
                if not data:
                    return
                while data:
                    data = data[os.write(sys.stdout.fileno(), data) :]


if __name__ == "__main__":
    relay(int(sys.argv[1]))
