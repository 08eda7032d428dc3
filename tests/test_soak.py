"""An accelerated day: 24 simulated hours, faults switching every few minutes, registrations arriving all along.

The clock and every sleep are injected: the forwarder's backoff sleeps and idle waits move simulated time
forward, and the world (new badges, new faults) happens as that time passes. Real HTTP, real SQLite.
"""

from __future__ import annotations

import json
import random
from datetime import timedelta

import pytest
from inprocess import simulated_site
from simulator_process import client_credentials

from sitegate.domain.identifiers import WorkerId
from sitegate.domain.registration import Registration, append_registration
from sitegate.queue import delivery

# Faults that say nothing about the items (partial success rejects items for good: tested on its own;
# slow and timeout cost real seconds: tested on their own).
SOAK_FAULTS = [None, None, None, "refuse", "500", "503", "503_retry_after", "429", "html", "malformed", "expire_token"]
WORKERS = 300


class World:
    def __init__(self, device, service, clock, seed: int) -> None:
        self.device, self.service, self.clock = device, service, clock
        self.rng = random.Random(seed)
        self.end = clock.wall + timedelta(hours=24)
        self.next_fault_switch = clock.wall
        self.direction = {}
        self.appended = 0
        self.faults_seen = set()

    def advance(self, seconds: float) -> None:
        """Let simulated time pass in steps of at most a minute, with badges and fault switches on the way."""
        remaining = seconds
        while remaining > 0:
            step = min(60.0, remaining)
            self.clock.advance(step)
            remaining -= step
            if self.clock.wall >= self.end:
                self.service.set_fault(None)
                continue
            if self.clock.wall >= self.next_fault_switch:
                fault = self.rng.choice(SOAK_FAULTS)
                self.faults_seen.add(fault)
                # A whole-batch refusal that persisted would mean our contract is wrong: here it is a one-off.
                self.service.set_fault(fault, count=1 if fault == "reject_batch" else None)
                self.next_fault_switch = self.clock.wall + timedelta(minutes=self.rng.randint(2, 9))
            for _ in range(self.rng.choice([0, 0, 0, 1, 1, 2])):
                self.badge()

    def badge(self) -> None:
        worker = self.rng.randrange(WORKERS)
        direction = "OUT" if self.direction.get(worker) == "IN" else "IN"
        self.direction[worker] = direction
        append_registration(
            self.device.log,
            Registration(WorkerId("limosa", f"{worker + 10**16:017d}"), "0403170701", direction, "1Y101DRUNWB5Z"),
        )
        self.appended += 1
        self.clock.advance(1.0)  # two badges never share a second


@pytest.mark.slow
def test_a_day_of_faults_delivers_everything_exactly_once(tmp_path, clock, tmp_path_factory):
    credentials = client_credentials(tmp_path_factory.mktemp("credentials"))
    with simulated_site(tmp_path, clock, credentials, batch_size=50) as (device, service, forwarder):
        world = World(device, service, clock, seed=24)

        def idle(seconds):
            if clock.wall >= world.end and delivery.summary(device.db, clock.wall).undelivered == 0:
                forwarder.stop()
            else:
                world.advance(seconds)

        forwarder.sleep, forwarder.idle, forwarder.gather = world.advance, idle, world.advance
        forwarder.run(idle_s=30)

        summary = delivery.summary(device.db, clock.wall)
        counted = service.summary()
        assert world.appended > 1500 and len(world.faults_seen) == len(set(SOAK_FAULTS))
        assert summary.delivered == world.appended and summary.rejected == 0 and summary.undelivered == 0
        assert counted["created"] == world.appended == counted["distinct"]
        assert counted["resent"] == 0 and summary.resends == 0
        # Every remark 32 the service made was expected by the device before sending.
        flagged = {
            seq
            for seq, expected in device.db.execute("SELECT seq, expected_remarks FROM delivery")
            if 32 in json.loads(expected or "[]")
        }
        late = {
            seq
            for seq, remarks in device.db.execute("SELECT seq, remarks FROM delivery")
            if 32 in json.loads(remarks or "[]")
        }
        assert late <= flagged
