"""Draining a backlog to the simulator on loopback: in bulk against one request per registration, and the SOAP
channel (signed envelopes of 200 presences, each body checked against the XSD and each signature verified by the
simulator) against the REST bulk drain of the same run."""

from __future__ import annotations

import dataclasses
import sys
import time
from datetime import UTC, datetime
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from conftest import CONFIG_TEXT  # noqa: E402
from simulator_process import SimulatorProcess, client_credentials, service_section  # noqa: E402

from sitegate import config as configuration  # noqa: E402
from sitegate.clock import (
    SYSTEM,  # noqa: E402
    ManualClock,  # noqa: E402
)
from sitegate.device import Device  # noqa: E402
from sitegate.domain.identifiers import WorkerId  # noqa: E402
from sitegate.domain.registration import Registration, append_registration  # noqa: E402
from sitegate.queue.forwarder import Forwarder  # noqa: E402
from sitegate.service.channels import channel_for  # noqa: E402
from sitegate.service.presence_soap_v1 import PATH  # noqa: E402

BULK = 10_000
ONE_BY_ONE = 1_000
SOAP = 10_000


def backlog(
    directory: Path,
    simulator: SimulatorProcess,
    count: int,
    batch_size: int,
    credentials: tuple[Path, Path],
    channel: str = "rest",
) -> Device:
    """`count` registrations of `count` workers (each its own presence of the day on the SOAP channel)."""
    directory = directory.resolve()
    directory.mkdir(parents=True)
    path = directory / "sitegate.toml"
    path.write_text(CONFIG_TEXT + service_section(simulator.base_url, simulator.token_url, credentials))
    config = configuration.load(path)
    service = dataclasses.replace(config.service, batch_size=batch_size, channel=channel, soap_url=simulator.url + PATH)
    config = dataclasses.replace(config, service=service)
    clock = ManualClock(datetime.now(UTC))
    device = Device.open(config, clock)
    device.db.execute("PRAGMA synchronous=OFF")  # only to build the backlog quickly
    for index in range(count):
        append_registration(
            device.log, Registration(WorkerId("limosa", f"{index + 10**16:017d}"), "0403170701", "IN", "1Y101DRUNWB5Z")
        )
        clock.advance(1)
    device.db.execute("PRAGMA synchronous=FULL")
    return device


def rate(device: Device) -> float:
    forwarder = Forwarder(device.ledger, device.config, channel_for(device.config, SYSTEM), SYSTEM)
    start = time.perf_counter()
    report = forwarder.drain()
    elapsed = time.perf_counter() - start
    assert not report.failures and report.delivered == report.sent, report
    return report.delivered / elapsed


def bench_drain(scratch: Path, result) -> list[dict]:
    credentials = client_credentials((scratch / "credentials").resolve())
    simulator = SimulatorProcess("--delay", "864000", "--trust", str(credentials[1]))
    try:
        bulk = rate(backlog(scratch / "bulk", simulator, BULK, 200, credentials))
        single = rate(backlog(scratch / "single", simulator, ONE_BY_ONE, 1, credentials))
        soap = rate(backlog(scratch / "soap", simulator, SOAP, 200, credentials, channel="soap"))
    finally:
        simulator.stop()
    return [
        result("drain_bulk_per_s", bulk, "/s", single, ">= 2000 /s and ratio >= 10"),
        result("drain_soap_per_s", soap, "/s", bulk, ">= 1000 /s (signed, XSD-checked; reference: REST bulk)"),
    ]
