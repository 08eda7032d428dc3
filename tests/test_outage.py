"""Verifiable outages: the verdict rule for each row of the procedure's table, and the journal's signed steps."""

from __future__ import annotations

import socket
import sqlite3
from datetime import timedelta

import pytest
from conftest import registration, run_sitegate
from helpers.dns_server import DnsServer

from sitegate.clock.timefmt import format_utc
from sitegate.domain.registration import append_registration
from sitegate.errors import VerificationError
from sitegate.paper_fallback import guidance
from sitegate.paper_fallback.outage import OutageJournal, current, episodes, outages, record_reference
from sitegate.paper_fallback.probes import Probe, Prober, verdict
from sitegate.queue import delivery
from sitegate.queue.database import immediate
from sitegate.queue.failures import Cause, Symptom, cause
from sitegate.queue.verify import verify
from sitegate.service.presence_rest_v1 import ItemResult
from sitegate.service.remarks import needing_action

AT = "2026-11-22T07:00:00.000000Z"


def probe(name: str, ok: bool = True, symptom: Symptom | None = None) -> Probe:
    return Probe(name, ok, "scripted", AT, None if ok else str(symptom))


def path(
    failed: str | None = None, symptom: Symptom | None = None, reference: bool | None = True, https: bool = True
) -> list[Probe]:
    """The probes as a round finds them when one hop fails: the chain to the service stops there, and the
    forwarder's own attempts fail as well; then the independent reference (None: not configured). A service
    reached over plain http has no TLS hop (a test service: the real one is https)."""
    if failed == "gateway":  # nothing gets out: the resolver cannot be reached either
        probes = [probe("gateway", False, symptom), probe("dns", False, Symptom.DNS)]
    else:
        probes = [probe("gateway")]
        for name in ("dns", "service_connect", "service_tls") if https else ("dns", "service_connect"):
            probes.append(probe(name, name != failed, symptom))
            if name == failed:
                break
    answer_symptom = symptom if failed == "service_answer" else Symptom.NO_CONNECTION
    probes.append(probe("service_answer", failed is None, answer_symptom))
    if reference is not None:
        probes.append(probe("reference", reference, None if reference else Symptom.NO_CONNECTION))
    return probes


@pytest.mark.parametrize(
    "probes, expected",
    [
        (path("gateway", Symptom.NO_ROUTE, reference=False), Cause.INFRASTRUCTURE),  # power or local network
        (path("dns", Symptom.DNS, reference=False), Cause.INFRASTRUCTURE),  # internet provider
        (path("dns", Symptom.NAME_UNKNOWN, reference=True), Cause.OURS),  # the configured host name is wrong
        (path("service_connect", Symptom.NO_CONNECTION, reference=False), Cause.INFRASTRUCTURE),
        (path("service_connect", Symptom.NO_CONNECTION, reference=True), Cause.SERVICE),
        (path("service_connect", Symptom.REFUSED, reference=True), Cause.SERVICE),  # the network answered
        (path("service_connect", Symptom.REFUSED, reference=False), Cause.INFRASTRUCTURE),
        (path("service_tls", Symptom.TLS_UNTRUSTED, reference=True), Cause.OURS),  # our trust settings
        (path("service_tls", Symptom.TLS_UNTRUSTED, reference=False), Cause.INFRASTRUCTURE),  # intercepted
        (path("service_tls", Symptom.TLS_UNTRUSTED, reference=None), Cause.UNKNOWN),  # cannot tell: no exemption
        (path("service_tls", Symptom.CONFIGURATION, reference=True), Cause.OURS),  # ca_file missing
        (path("service_answer", Symptom.SERVICE_ERROR), Cause.SERVICE),
        (path("service_answer", Symptom.PROXY_PAGE, reference=True), Cause.SERVICE),  # its maintenance page
        (path("service_answer", Symptom.PROXY_PAGE, reference=False, https=False), Cause.INFRASTRUCTURE),  # a portal
        (path("service_answer", Symptom.CREDENTIALS), Cause.OURS),
        # Issue 22, case 1: a refused token while the gateway ignores our probe and no reference answers.
        (
            [probe("gateway", False, Symptom.NO_ROUTE), *path("service_answer", Symptom.CREDENTIALS, False)[1:]],
            Cause.OURS,
        ),
        # Case 2: the resolver answers "no such name" for the service, and no reference host is configured.
        (path("dns", Symptom.NAME_UNKNOWN, reference=None), Cause.OURS),
        # Case 3: the service's own error page over its own certificate, no reference host: the service.
        (path("service_answer", Symptom.PROXY_PAGE, reference=None), Cause.SERVICE),
        (path("service_answer", Symptom.PROXY_PAGE, reference=False), Cause.SERVICE),  # a portal has no such cert
        (path("service_answer", Symptom.PROXY_PAGE, reference=None, https=False), Cause.UNKNOWN),  # cannot tell
        (path("service_answer", Symptom.SERVICE_ERROR, reference=False), Cause.SERVICE),  # it answered: 503
        ([probe("own", False, Symptom.DEVICE), *path("dns", Symptom.DNS, reference=False)], Cause.OURS),
    ],
)
def test_verdict_follows_the_procedure(probes, expected):
    found = verdict(probes)
    assert found.failing and found.cause == expected
    assert expected.exempt == (expected in (Cause.INFRASTRUCTURE, Cause.SERVICE))


def test_a_silent_gateway_does_not_hide_our_fault_when_the_internet_works():
    """A router that drops the gateway probe: our untrusted TLS is still ours, never an exempt infrastructure."""
    probes = [probe("gateway", False, Symptom.NO_ROUTE), *path("service_tls", Symptom.TLS_UNTRUSTED)[1:]]
    assert verdict(probes).cause == Cause.OURS


def test_a_failing_reference_or_gateway_alone_is_no_outage():
    """Registration works while the reference host or the gateway's port is down: evidence, not an unavailability."""
    assert not verdict(path(reference=False)).failing
    assert not verdict([probe("gateway", False, Symptom.NO_ROUTE), *path()[1:]]).failing


def test_forwarder_and_journal_use_the_one_rule():
    for symptom in Symptom:
        for internet_ok in (True, False, None):
            for https in (True, False):
                probes = path("service_answer", symptom, reference=internet_ok, https=https)
                assert verdict(probes).cause == cause(symptom, internet_ok, service_verified=https)


def summary(device, clock):
    return delivery.summary(device.db, clock.wall)


def delivered_once(device, clock):
    delivery.settle(device.ledger, [(0, ItemResult(True, "service-0"))], format_utc(clock.wall))  # no row: the note


def scripted(clock, failed=None, symptom=None, reference=True):
    return [Probe(p.name, p.ok, p.detail, format_utc(clock.wall), p.symptom) for p in path(failed, symptom, reference)]


def test_outage_suspected_opened_reclassified_summarised_closed(device, clock):
    delivered_once(device, clock)
    journal = OutageJournal(device.log, grace_s=300, summary_every_s=900)
    down = ("service_connect", Symptom.NO_CONNECTION, False)
    assert journal.observe(scripted(clock, *down), summary(device, clock), clock.wall) == "suspected"
    start = format_utc(clock.wall)
    clock.advance(299)
    assert journal.observe(scripted(clock, *down), summary(device, clock), clock.wall) == "suspected"
    assert [e.state for e in episodes(device.log)] == ["suspected"] and not outages(device.log)
    clock.advance(1)
    assert journal.observe(scripted(clock, *down), summary(device, clock), clock.wall) == "open"
    clock.advance(60)
    service_down = ("service_answer", Symptom.SERVICE_ERROR, True)
    journal.observe(scripted(clock, *service_down), summary(device, clock), clock.wall)  # internet back
    clock.advance(900)
    journal.observe(scripted(clock, *service_down), summary(device, clock), clock.wall)  # periodic evidence
    late = append_registration(device.log, registration(0))  # captured during the outage
    record_reference(device.log, "CC-2026-4711", clock.wall)
    clock.advance(60)
    assert journal.observe(scripted(clock), summary(device, clock), clock.wall) == "ok"
    events = [r.data["event"] for r in device.log.records(kind="outage")]
    assert events == ["suspected", "opened", "reclassified", "evidence", "closed"]
    [outage] = outages(device.log)
    assert outage.cause == Cause.SERVICE and outage.end_utc and outage.reference == "CC-2026-4711"
    assert outage.start_utc == start  # the first failure, not the round that opened it
    shown = outage.as_dict(clock.wall, "en")
    assert shown["exempt"] and "EXEMPT" in shown["what_to_do"]
    assert shown["duration_s"] == 300 + 60 + 900 + 60
    assert all("at_utc" in piece for piece in shown["evidence"])
    verify(device.log.records(), device.key.public_key_hex)
    # a late registration of that time is explained by the outage, not blamed on the clock
    delivery.take_batch(device.ledger, 10, format_utc(clock.wall), "gate-01", delivery.ClockHold.at(clock, 0))
    delivery.settle(device.ledger, [(late.seq, ItemResult(True, "X", "INVALID", (32,)))], format_utc(clock.wall))
    [item] = needing_action(device.db, outages(device.log))
    assert item.code == 32 and "outage" in item.cause and "CC-2026-4711" in item.cause


def test_the_registration_whose_failed_send_opened_the_outage_belongs_to_it(device, clock):
    """Issue 22, case 6: captured half a second before the outage's start (its own failed send is the start), its
    remark 32 is the outage's, not "the clock is not set correctly"; one delivered before the outage keeps it."""
    delivered_once(device, clock)
    on_time = append_registration(device.log, registration(1))
    delivery.take_batch(device.ledger, 10, format_utc(clock.wall), "gate-01", delivery.ClockHold.at(clock, 0))
    delivery.settle(device.ledger, [(on_time.seq, ItemResult(True, "A", "INVALID", (32,)))], format_utc(clock.wall))
    clock.advance(10)
    opener = append_registration(device.log, registration(0))
    clock.advance(0.5)
    taken = delivery.take_batch(device.ledger, 10, format_utc(clock.wall), "gate-01", delivery.ClockHold.at(clock, 0))
    delivery.release(
        device.ledger, [p.seq for p in taken], "no connection", Symptom.NO_CONNECTION, format_utc(clock.wall)
    )
    journal = OutageJournal(device.log, grace_s=0)
    down = ("service_connect", Symptom.NO_CONNECTION, True)
    journal.observe(scripted(clock, *down), summary(device, clock), clock.wall)
    clock.advance(1)
    assert journal.observe(scripted(clock, *down), summary(device, clock), clock.wall) == "open"
    [outage] = outages(device.log)
    assert opener.wall_utc < outage.start_utc  # captured before the episode's start
    clock.advance(600)
    journal.observe(scripted(clock), summary(device, clock), clock.wall)
    delivery.take_batch(device.ledger, 10, format_utc(clock.wall), "gate-01", delivery.ClockHold.at(clock, 0))
    delivery.settle(device.ledger, [(opener.seq, ItemResult(True, "B", "INVALID", (32,)))], format_utc(clock.wall))
    items = {item.seq: item for item in needing_action(device.db, outages(device.log))}
    assert "outage" in items[opener.seq].cause and "not the clock" in items[opener.seq].cause
    assert "outage" not in items[on_time.seq].cause  # delivered before the outage: the remark's own cause


def test_a_blip_within_the_grace_is_cleared_not_an_outage(device, clock):
    delivered_once(device, clock)
    journal = OutageJournal(device.log, grace_s=300)
    journal.observe(scripted(clock, "service_answer", Symptom.SERVICE_ERROR), summary(device, clock), clock.wall)
    clock.advance(60)
    assert journal.observe(scripted(clock), summary(device, clock), clock.wall) == "ok"
    assert [e.state for e in episodes(device.log)] == ["cleared"] and not outages(device.log)
    assert current(device.log) is None


def test_never_connected_is_signed_evidence_not_an_outage(device, clock, config_file):
    journal = OutageJournal(device.log, grace_s=0)
    append_registration(device.log, registration(0))
    assert journal.observe(scripted(clock, "gateway", Symptom.NO_ROUTE, False), summary(device, clock), clock.wall)
    clock.advance(1)
    state = journal.observe(scripted(clock, "gateway", Symptom.NO_ROUTE, False), summary(device, clock), clock.wall)
    assert state == "never_connected" and not outages(device.log)
    assert [r.data["event"] for r in device.log.records(kind="outage")] == ["suspected", "never_connected"]
    assert "NO exemption" in current(device.log).what_to_do("en")


def test_power_loss_seen_as_a_heartbeat_gap(device, clock):
    with immediate(device.db):
        delivery.note_heartbeat(device.db, format_utc(clock.wall), [])
    clock.advance(3600)
    seq = OutageJournal(device.log, grace_s=300).power_gap(clock.wall, heartbeat_s=60)
    assert seq is not None
    [outage] = outages(device.log)
    assert outage.cause == Cause.INFRASTRUCTURE and outage.as_dict(clock.wall)["duration_s"] == 3600
    # a clean stop is no power loss
    with immediate(device.db):
        delivery.note_heartbeat(device.db, format_utc(clock.wall), [])
        delivery.note_stopped(device.db, format_utc(clock.wall))
    clock.advance(3600)
    assert OutageJournal(device.log, grace_s=300).power_gap(clock.wall, heartbeat_s=60) is None


def test_tampered_outage_record_is_caught(device, clock):
    delivered_once(device, clock)
    journal = OutageJournal(device.log, grace_s=0)
    journal.observe(scripted(clock, "dns", Symptom.DNS, False), summary(device, clock), clock.wall)
    clock.advance(timedelta(hours=2).total_seconds())
    journal.observe(scripted(clock), summary(device, clock), clock.wall)
    device.close()
    conn = sqlite3.connect(device.config.database_path)
    conn.execute("DROP TRIGGER records_no_update")
    seq, payload = conn.execute("SELECT seq, payload FROM records WHERE kind='outage' ORDER BY seq").fetchone()
    tampered = payload.replace(Cause.INFRASTRUCTURE, Cause.SERVICE)
    assert tampered != payload
    conn.execute("UPDATE records SET payload = ? WHERE seq = ?", [tampered, seq])
    conn.commit()
    conn.close()
    from sitegate.device import Device

    reopened = Device.open(device.config, clock)
    with pytest.raises(VerificationError) as caught:
        verify(reopened.log.records(), reopened.key.public_key_hex)
    assert caught.value.seq == seq


def test_real_probes_name_the_hop_that_failed(config, tmp_path):
    """A refused port, a resolver answering NXDOMAIN, a missing CA file: all on loopback."""
    import dataclasses
    from datetime import UTC, datetime

    resolver = DnsServer()  # knows no name: NXDOMAIN for every question
    try:
        outage = dataclasses.replace(
            config.outage, gateway="127.0.0.1:9", dns_resolver=f"127.0.0.1:{resolver.port}", probe_timeout_s=2
        )
        refused = dataclasses.replace(config.service, base_url="http://127.0.0.1:9/REST")
        prober = Prober(dataclasses.replace(config, outage=outage, service=refused), lambda: datetime.now(UTC))
        probes = {p.name: p for p in prober.service_path() + [prober.gateway()]}
        assert probes["gateway"].ok  # a refused connection proves the gateway answers
        assert not probes["service_connect"].ok and probes["service_connect"].symptom == Symptom.REFUSED
        unknown = dataclasses.replace(config.service, base_url="https://service.sitegate.test/REST")
        prober = Prober(dataclasses.replace(config, outage=outage, service=unknown), lambda: datetime.now(UTC))
        [dns] = prober.service_path()
        assert dns.name == "dns" and dns.symptom == Symptom.NAME_UNKNOWN and "answered" in dns.detail
        listener = socket.create_server(("127.0.0.1", 0))  # accepts the connection: the TLS step is reached
        missing_ca = dataclasses.replace(
            config.service,
            base_url=f"https://127.0.0.1:{listener.getsockname()[1]}/REST",
            ca_file=tmp_path / "nope.pem",
        )
        no_route = dataclasses.replace(outage, gateway="auto")
        prober = Prober(
            dataclasses.replace(config, outage=no_route, service=missing_ca),
            lambda: datetime.now(UTC),
            route_file=tmp_path / "no-such-route-table",
        )
        assert prober.gateway().symptom == Symptom.NO_ROUTE
        tls = prober.service_path()[-1]
        assert tls.name == "service_tls" and tls.symptom == Symptom.CONFIGURATION and "nope.pem" in tls.detail
        assert verdict([tls, probe("reference")]).cause == Cause.OURS
        listener.close()
    finally:
        resolver.stop()


def test_guidance_for_a_foreman_in_three_languages():
    for language, words in (
        ("fr", ("autre canal", "02 511 51 51", "tapez 2", "6 pour un agent", "formulaire de contact", "référence")),
        ("nl", ("ander kanaal", "02 511 51 51", "6 voor een medewerker", "contactformulier", "referentienummer")),
        ("en", ("another channel", "02 511 51 51", "press 2", "6 for an agent", "contact form", "reference number")),
    ):
        text = guidance.what_to_do(Cause.OURS, language)
        for word in words:
            assert word in text, (language, word)
        assert "`" not in text and "sitegate" not in text  # no shell command for a foreman
        assert "1." in text and "4." in text
    assert "sitegate outage reference" in guidance.TECHNICIAN


def test_no_episode_is_said_in_the_reader_s_language_not_an_empty_table(config_file):
    shown = run_sitegate("outage", "--lang", "fr", config=config_file)
    assert shown.returncode == 0 and "En service" in shown.stdout and "duration" not in shown.stdout


def test_an_episode_signed_while_the_command_reads_is_never_half_seen(device, clock, config_file, monkeypatch):
    """The daemon signs a suspected episode between the command's reads of the log: the command answers from one
    reading (before, it saw no episode row and an ongoing suspicion, and stopped on a KeyError in the real-daemon
    verdict test)."""
    from sitegate.commands import outage as command

    read_once = command.episodes

    def then_the_daemon_signs(log):
        found = read_once(log)
        journal = OutageJournal(device.log, grace_s=300)
        journal.observe([probe("service_connect", False, Symptom.REFUSED)], summary(device, clock), clock.now())
        return found

    monkeypatch.setattr(command, "episodes", then_the_daemon_signs)
    shown = run_sitegate("outage", config=config_file)
    assert shown.returncode == 0 and "En service" in shown.stdout, shown.stdout + shown.stderr
    assert current(device.log) is not None  # the episode was signed meanwhile: the next reading shows it


def test_outage_reference_command(config_file):
    result = run_sitegate("outage", "reference", "CC-1", config=config_file)
    assert result.returncode == 0 and "CC-1" in result.stdout
    shown = run_sitegate("outage", config=config_file)  # recorded with no episode open: still shown
    assert "references recorded with no episode open: CC-1" in shown.stdout
    per_employer = run_sitegate("outage", "reference", "CC-2", "--employer", "0403.170.701", config=config_file)
    assert per_employer.returncode == 0 and "0403170701" in per_employer.stdout
    assert run_sitegate("outage", "bogus", config=config_file).returncode == 2


def test_each_reference_stays_with_its_episode_and_none_is_left_off_the_paper(device, clock):
    """Issue 22, case 8: REF-1 then REF-2 in one outage both reach the paper; a second outage's listing does not
    carry the first one's reference before anyone called about it; a reference with no episode open is shown."""
    from sitegate.paper_fallback.listing import build
    from sitegate.paper_fallback.outage import loose_references

    delivered_once(device, clock)
    day = clock.wall.date()
    journal = OutageJournal(device.log, grace_s=0)
    down = ("service_answer", Symptom.SERVICE_ERROR, True)
    journal.observe(scripted(clock, *down), summary(device, clock), clock.wall)
    clock.advance(1)
    assert journal.observe(scripted(clock, *down), summary(device, clock), clock.wall) == "open"
    clock.advance(60)
    record_reference(device.log, "REF-1", clock.wall)
    clock.advance(60)
    record_reference(device.log, "REF-2", clock.wall)
    assert build(device, day, now=clock.wall).reference == "REF-2"
    clock.advance(60)
    journal.observe(scripted(clock), summary(device, clock), clock.wall)  # closed
    clock.advance(600)
    journal.observe(scripted(clock, *down), summary(device, clock), clock.wall)  # a second outage
    clock.advance(1)
    assert journal.observe(scripted(clock, *down), summary(device, clock), clock.wall) == "open"
    second = build(device, day, now=clock.wall)
    assert second.reference is None  # nobody has called about this one yet
    assert [r.split(" ")[0] for r in second.earlier_references] == ["REF-1", "REF-2"]
    clock.advance(60)
    record_reference(device.log, "REF-3", clock.wall)
    assert build(device, day, now=clock.wall).reference == "REF-3"
    clock.advance(60)
    journal.observe(scripted(clock), summary(device, clock), clock.wall)  # closed again
    clock.advance(60)
    record_reference(device.log, "REF-4", clock.wall)  # the gate judged no outage, the foreman called anyway
    assert [r["reference"] for r in loose_references(device.log)] == ["REF-4"]


def test_send_counts_of_an_idle_gate_age_out_of_the_last_hour(device, clock):
    """The forwarder writes its counts at a call: with no call since, counts older than the hour warn no more."""
    from sitegate.status import sends_last_hour

    with immediate(device.ledger):
        delivery.note_sends(device.ledger, 10, 5, format_utc(clock.wall))
    assert sends_last_hour(device.db, clock.wall)[:2] == (10, 5)
    clock.advance(3601)
    assert sends_last_hour(device.db, clock.wall)[:2] == (0, 0)
