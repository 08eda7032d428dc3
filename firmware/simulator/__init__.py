"""A local stand-in for Check In and Out at Work: token endpoint, bulk call, remarks, and switchable faults.

A tool beside the flow, not a part of it: nothing in the gate or the queue imports it. It speaks the contract of
`sitegate.service.presence_rest_v1` (paths, bulk limit) and takes them from there, so a correction made in the
contract module reaches the simulator too.

`sitegate simulator` runs it as a real HTTP(S) server for the demo, the tests and site acceptance. It keeps
what it received (GET /_sim/received), computes from registrations alone the remarks 14, 15, 21, 22, 24, 25,
32, 36 and 37, and can misbehave on demand (POST /_sim/fault): refuse, 500/503 (with or without Retry-After),
429, slow, timeout, an HTML page as a proxy sends, malformed JSON, partial bulk success, expired tokens,
revoked tokens (every bulk call answered 401, even after a fresh token); and, for the bulk call,
registering the items and then losing the answer (answer_timeout, answer_reset, answer_malformed).
"""

from __future__ import annotations

from sitegate.simulator.server import SimulatorServer
from sitegate.simulator.service import SimulatedService

__all__ = ["SimulatedService", "SimulatorServer"]
