"""`sitegate simulator`: the local service simulator, as a process of its own."""

from __future__ import annotations

import json
import signal
import sys
import tempfile
from pathlib import Path

from sitegate.clock import SYSTEM
from sitegate.output import OK
from sitegate.service.credentials import make_self_signed
from sitegate.simulator import SimulatedService, SimulatorServer


def simulator(args) -> int:
    persons = set(Path(args.persons).read_text().split()) if args.persons else None
    tls, ca_file, scratch = None, None, None
    if args.tls:
        if not args.tls_dir:  # a certificate of its own, removed when the simulator stops
            scratch = tempfile.TemporaryDirectory(prefix="sitegate-sim-tls-")
        directory = Path(args.tls_dir or scratch.name)
        tls = make_self_signed(directory, SYSTEM.now(), "simulator", hosts=(args.host, "localhost"))
        ca_file = str(tls[1])
    service = SimulatedService(SYSTEM, reception_delay_s=args.delay, persons=persons)
    if args.trust:
        service.presences.trust(Path(args.trust))
    server = SimulatorServer(service, args.host, args.port, tls)
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    print(
        json.dumps(
            {
                "url": server.url,
                "ca_file": ca_file,
                "base_url": server.base_url,
                "token_url": server.token_url,
            }
        ),
        flush=True,
    )
    try:
        server.serve_forever()
    finally:
        server.server_close()
        if scratch:
            scratch.cleanup()
    return OK
