"""A DNS server of the test's own (dnslib): the names it is given answer with their address, every other name is
NXDOMAIN, so it is a resolver that works and knows no such name. In the test's process (`DnsServer`, a thread) or
as a process of its own in a network namespace (`python dns_server.py PORT [NAME=ADDRESS ...]`, which prints
`{"port": N}` once it listens)."""

from __future__ import annotations

import json
import signal
import sys

from dnslib import QTYPE, RCODE, RR, A
from dnslib.server import BaseResolver, DNSLogger, DNSServer

QUIET = DNSLogger("-recv,-send,-request,-reply,-truncated,-error,-data")


class KnownNames(BaseResolver):
    """A for the names given (IPv4 only: other types of a known name have no record), NXDOMAIN for the rest."""

    def __init__(self, names: dict[str, str]) -> None:
        self.names = {name.rstrip(".").lower(): address for name, address in names.items()}

    def resolve(self, request, handler):
        reply = request.reply()
        name = str(request.q.qname).rstrip(".").lower()
        if name not in self.names:
            reply.header.rcode = RCODE.NXDOMAIN
        elif request.q.qtype == QTYPE.A:
            reply.add_answer(RR(request.q.qname, QTYPE.A, rdata=A(self.names[name]), ttl=1))
        return reply


class DnsServer:
    """Listens on UDP at `address:port` (port 0: any free one, then `self.port`) until stop()."""

    def __init__(self, names: dict[str, str] | None = None, address: str = "127.0.0.1", port: int = 0) -> None:
        self.server = DNSServer(KnownNames(names or {}), address=address, port=port, logger=QUIET)
        self.port = self.server.server.server_address[1]
        self.server.start_thread()

    def stop(self) -> None:
        self.server.stop()
        self.server.server.server_close()


def main(argv: list[str]) -> None:
    port, pairs = int(argv[0]), dict(pair.split("=", 1) for pair in argv[1:])
    server = DnsServer(pairs, port=port)
    print(json.dumps({"port": server.port}), flush=True)
    signal.sigwait({signal.SIGTERM, signal.SIGINT})
    server.stop()


if __name__ == "__main__":
    signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGTERM, signal.SIGINT})
    main(sys.argv[1:])
