"""The retry policy, with injected sleep: Retry-After honoured, exponential backoff capped, nothing dropped."""

from __future__ import annotations

import pytest
from conftest import registration
from inprocess import simulated_site

from sitegate.domain.registration import append_registration
from sitegate.queue import delivery
from sitegate.queue.forwarder import MAX_BACKOFF_S


def run_until_drained(device, forwarder, clock, waits):
    """Run the daemon loop; every backoff sleep advances the test clock; stop once nothing is pending."""

    def sleep(seconds):
        waits.append(seconds)
        clock.advance(seconds)

    def idle(seconds):
        if delivery.summary(device.db, clock.wall).undelivered == 0:
            forwarder.stop()

    forwarder.sleep, forwarder.idle = sleep, idle
    forwarder.run()


def test_retry_after_is_honoured(tmp_path, clock, credentials):
    with simulated_site(tmp_path, clock, credentials) as (device, service, forwarder):
        append_registration(device.log, registration(0))
        service.set_fault("503_retry_after", count=3)
        waits: list[float] = []
        run_until_drained(device, forwarder, clock, waits)
        assert waits == [7.0, 7.0, 7.0]
        assert delivery.summary(device.db, clock.wall).delivered == 1


def test_backoff_grows_and_is_capped_with_no_retry_limit(tmp_path, clock, credentials):
    with simulated_site(tmp_path, clock, credentials) as (device, service, forwarder):
        append_registration(device.log, registration(0))
        service.set_fault("500", count=15)
        waits: list[float] = []
        run_until_drained(device, forwarder, clock, waits)
        assert len(waits) == 15
        assert waits[0] <= 2.0 and waits[5] > waits[0]
        assert max(waits) == MAX_BACKOFF_S and all(w <= MAX_BACKOFF_S for w in waits)
        assert delivery.summary(device.db, clock.wall).delivered == 1


@pytest.mark.parametrize(("fault", "cut_short"), [("500", True), ("503_retry_after", False)])
def test_the_probes_end_a_backoff_but_never_a_wait_the_service_asked_for(
    tmp_path, clock, credentials, fault, cut_short
):
    """A probe round that sees the service's way open asks for a retry now (issue 22, case 4); a Retry-After the
    service sent is honoured all the same."""
    with simulated_site(tmp_path, clock, credentials) as (device, service, forwarder):
        append_registration(device.log, registration(0))
        service.set_fault(fault, count=1)
        asked: list[bool] = []

        def idle(seconds):
            if delivery.summary(device.db, clock.wall).undelivered == 0:
                forwarder.stop()

        def backoff(seconds):
            forwarder.retry_soon()  # the probes, during the wait
            asked.append(forwarder.retry_now.is_set())
            forwarder.retry_now.clear()

        forwarder.sleep, forwarder.idle = backoff, idle
        forwarder.run()
        assert asked == [cut_short]
        assert delivery.summary(device.db, clock.wall).delivered == 1
