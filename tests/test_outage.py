"""Verifiable outages: scripted probe results for each row of the procedure's table, all in the signed chain."""

from __future__ import annotations

import json
import sqlite3
from datetime import timedelta

import pytest
from conftest import registration, run_sitegate
from simulator_process import SimulatorProcess

from sitegate.errors import VerificationError
from sitegate.paper_fallback.outage import (
    INFRASTRUCTURE,
    OUR_SIDE,
    SERVICE,
    UNKNOWN,
    OutageJournal,
    Probe,
    classify,
    network_probes,
    outages,
    record_reference,
)
from sitegate.queue import delivery
from sitegate.queue.database import immediate
from sitegate.queue.presence_rest_v1 import ItemResult
from sitegate.queue.remarks import needing_action
from sitegate.queue.verify import verify
from sitegate.registration import append_registration
from sitegate.timefmt import format_utc

PATH_OK = [Probe("link", True), Probe("dns", True), Probe("tcp", True), Probe("tls", True)]


def fail(name: str) -> list[Probe]:
    return [Probe(p.name, p.name != name, "scripted") for p in PATH_OK] + [Probe("service", True)]


@pytest.mark.parametrize(
    "probes, own, expected",
    [
        (fail("link"), [], INFRASTRUCTURE),  # power or local network
        (fail("dns"), [], INFRASTRUCTURE),
        (fail("tcp"), [], INFRASTRUCTURE),  # internet provider
        (fail("tls"), [], INFRASTRUCTURE),
        (PATH_OK + [Probe("service", False, "[service] 503")], [], SERVICE),
        (PATH_OK + [Probe("service", False, "[ours] 401")], ["credentials: refused"], OUR_SIDE),
        (fail("dns"), ["reader gate offline"], OUR_SIDE),  # our fault wins: no exemption may be claimed
        (PATH_OK + [Probe("service", True)], [], UNKNOWN),
    ],
)
def test_classification_follows_the_procedure(probes, own, expected):
    assert classify(probes, own) == expected


def delivered_once(device, clock):
    with immediate(device.ledger):
        delivery.set_meta(device.ledger, delivery.DELIVERY_META, last_delivery_utc=format_utc(clock.wall))


def test_outage_opens_after_grace_reclassifies_summarises_and_closes(device, clock):
    delivered_once(device, clock)
    journal = OutageJournal(device.log, grace_s=300, summary_every_s=900)
    assert journal.observe(fail("tcp"), [], clock.wall) == "failing"
    clock.advance(299)
    assert journal.observe(fail("tcp"), [], clock.wall) == "failing" and not list(device.log.records(kind="outage"))
    clock.advance(1)
    assert journal.observe(fail("tcp"), [], clock.wall) == "open"
    clock.advance(60)
    journal.observe(PATH_OK + [Probe("service", False, "503")], [], clock.wall)  # internet back, service down
    clock.advance(900)
    journal.observe(PATH_OK + [Probe("service", False, "503")], [], clock.wall)  # periodic evidence
    late = append_registration(device.log, registration(0))  # captured during the outage
    record_reference(device.log, "CC-2026-4711", clock.wall)
    clock.advance(60)
    assert journal.observe(PATH_OK + [Probe("service", True)], [], clock.wall) == "ok"
    events = [r.data["event"] for r in device.log.records(kind="outage")]
    assert events == ["opened", "reclassified", "evidence", "closed"]
    [outage] = outages(device.log)
    assert outage.classification == SERVICE and outage.end_utc and outage.reference == "CC-2026-4711"
    assert "exempt" in outage.what_to_do
    assert outage.as_dict(clock.wall)["duration_s"] == 300 + 60 + 900 + 60
    verify(device.log.records(), device.key.public_key_hex)
    # a late registration of that time is explained by the outage, not blamed on the clock
    delivery.take_batch(device.ledger, 10, format_utc(clock.wall), "gate-01")
    delivery.settle(device.ledger, [(late.seq, ItemResult(True, "X", "INVALID", (32,)))], format_utc(clock.wall))
    [item] = needing_action(device.db, outages(device.log))
    assert item.code == 32 and "outage" in item.cause and "CC-2026-4711" in item.cause


def test_never_connected_site_is_not_an_outage(device, clock, config_file):
    journal = OutageJournal(device.log, grace_s=0)
    append_registration(device.log, registration(0))
    assert journal.observe(fail("link"), [], clock.wall) == "never_connected"
    assert not outages(device.log)
    shown = run_sitegate("outage", "--json", config=config_file)
    assert json.loads(shown.stdout)["never_connected"] is True and shown.returncode == 1


def test_power_loss_seen_as_a_heartbeat_gap(device, clock):
    with immediate(device.db):
        delivery.set_meta(device.db, heartbeat_utc=format_utc(clock.wall))
    clock.advance(3600)
    seq = OutageJournal(device.log, grace_s=300).power_gap(clock.wall, heartbeat_s=60)
    assert seq is not None
    [outage] = outages(device.log)
    assert outage.classification == INFRASTRUCTURE and outage.as_dict(clock.wall)["duration_s"] == 3600
    # a clean stop is no power loss
    with immediate(device.db):
        delivery.set_meta(device.db, heartbeat_utc=format_utc(clock.wall), stopped_utc=format_utc(clock.wall))
    clock.advance(3600)
    assert OutageJournal(device.log, grace_s=300).power_gap(clock.wall, heartbeat_s=60) is None


def test_tampered_outage_record_is_caught(device, clock):
    delivered_once(device, clock)
    journal = OutageJournal(device.log, grace_s=0)
    journal.observe(fail("dns"), [], clock.wall)
    clock.advance(timedelta(hours=2).total_seconds())
    journal.observe(PATH_OK + [Probe("service", True)], [], clock.wall)
    device.close()
    conn = sqlite3.connect(device.config.database_path)
    conn.execute("DROP TRIGGER records_no_update")
    seq, payload = conn.execute("SELECT seq, payload FROM records WHERE kind='outage' ORDER BY seq").fetchone()
    conn.execute("UPDATE records SET payload = ? WHERE seq = ?", [payload.replace(INFRASTRUCTURE, SERVICE), seq])
    conn.commit()
    conn.close()
    from sitegate.device import Device

    reopened = Device.open(device.config, clock)
    with pytest.raises(VerificationError) as caught:
        verify(reopened.log.records(), reopened.key.public_key_hex)
    assert caught.value.seq == seq


def test_real_probes_against_a_local_service_and_a_dead_port():
    simulator = SimulatorProcess()
    try:
        alive = {p.name: p.ok for p in network_probes(simulator.base_url)}
        assert alive["dns"] and alive["tcp"]
        dead = network_probes("http://127.0.0.1:9/REST")
        assert classify(dead, []) == INFRASTRUCTURE and not dead[-1].ok and dead[-1].name == "tcp"
        unresolvable = network_probes("https://sitegate-no-such-host.invalid/REST")
        assert unresolvable[-1].name == "dns" and not unresolvable[-1].ok
    finally:
        simulator.stop()


def test_outage_reference_command(config_file):
    result = run_sitegate("outage", "reference", "CC-1", config=config_file)
    assert result.returncode == 0 and "CC-1" in result.stdout
    assert run_sitegate("outage", "bogus", config=config_file).returncode == 2
