"""The mirror's verification (pinned keys, chain per peer, gaps, forgeries) and the gate deciding with the site."""

from __future__ import annotations

import dataclasses
from datetime import UTC, datetime, timedelta

import pytest
from conftest import registration
from test_gate import Reads, make_gate, roster  # noqa: F401 - the roster fixture

from sitegate.clock import ManualClock
from sitegate.device import Device
from sitegate.domain.registration import Registration, append_registration
from sitegate.queue.records import Kind
from sitegate.site.mirror import Mirror, Verdict
from sitegate.site.mirror import connect as connect_mirror


@pytest.fixture
def peer(tmp_path, config):
    """Another gate's device (its own folder, key and log), on its own clock."""
    other = dataclasses.replace(config, device=dataclasses.replace(config.device, id="gate-b", data_dir=tmp_path / "b"))
    opened = Device.open(other, ManualClock(datetime(2026, 11, 22, 6, 0, tzinfo=UTC)))
    yield opened
    opened.close()


@pytest.fixture
def mirror(tmp_path, peer):
    opened = Mirror(connect_mirror(tmp_path / "site.db"), "gate-01", {"gate-b": peer.key.public_key_hex})
    yield opened
    opened.db.close()


def peer_records(peer, count: int, direction: str = "IN"):
    return [append_registration(peer.log, registration(i, direction)) for i in range(count)]


def test_records_in_order_are_kept_and_repeats_change_nothing(mirror, peer, clock):
    records = peer_records(peer, 3)
    assert [mirror.accept("gate-b", r, clock.now()).verdict for r in records] == [Verdict.STORED] * 3
    assert mirror.accept("gate-b", records[1], clock.now()).verdict == Verdict.DUPLICATE
    assert mirror.next_seq("gate-b") == 4
    assert [r.seq for r in mirror.records_of("gate-b", 1)] == [1, 2, 3]


def test_a_gap_is_seen_asked_for_and_filled(mirror, peer, clock):
    records = peer_records(peer, 4)
    mirror.accept("gate-b", records[0], clock.now())
    gap = mirror.accept("gate-b", records[3], clock.now())
    assert (gap.verdict, gap.next_seq) == (Verdict.GAP, 2)
    assert mirror.peer_states()[0].missing == 3  # 2, 3 and 4 are not held yet
    for record in records[1:]:
        assert mirror.accept("gate-b", record, clock.now()).verdict == Verdict.STORED
    assert mirror.peer_states()[0].missing == 0


def test_forged_altered_and_unknown_records_are_rejected_and_counted(mirror, peer, clock, device):
    record = peer_records(peer, 1)[0]
    signed_by_another = append_registration(device.log, registration(0))  # gate-01's key, claimed as gate-b's
    altered = dataclasses.replace(record, payload=record.payload.replace('"IN"', '"OUT"'))
    assert mirror.accept("gate-b", signed_by_another, clock.now()).verdict == Verdict.REJECTED
    assert mirror.accept("gate-b", altered, clock.now()).verdict == Verdict.REJECTED
    assert mirror.accept("gate-x", record, clock.now()).verdict == Verdict.REJECTED
    assert mirror.rejected_count() == 3
    assert list(mirror.registrations_since("2000")) == []
    # Issue 23 §3: they warn while recent; an hour later the total is still shown, and nobody stays amber for ever.
    from sitegate import health
    from sitegate.clock.timefmt import format_utc

    assert mirror.rejected_since(format_utc(clock.now() - timedelta(hours=1))) == 3
    assert health.site_bus(True, [], 3, 3)[0].text.startswith("3 message(s) from the bus failed verification")
    later = clock.now() + timedelta(hours=1, seconds=1)
    assert mirror.rejected_since(format_utc(later - timedelta(hours=1))) == 0
    assert health.site_bus(True, [], 0, 3) == []
    assert mirror.accept("gate-01", signed_by_another, clock.now()).verdict == Verdict.OWN  # our own: never mirrored


def test_a_late_mirror_starts_only_at_an_offered_anchor(mirror, peer, clock):
    records = peer_records(peer, 5)
    assert mirror.accept("gate-b", records[3], clock.now()).verdict == Verdict.GAP  # live, mid-chain: ask first
    assert mirror.accept("gate-b", records[2], clock.now(), anchor=True).verdict == Verdict.STORED
    assert mirror.accept("gate-b", records[3], clock.now()).verdict == Verdict.STORED
    assert mirror.accept("gate-b", records[0], clock.now()).verdict == Verdict.DUPLICATE  # before the window
    assert mirror.next_seq("gate-b") == 5


def test_in_at_another_gate_makes_the_next_toggle_an_out(device, clock, roster, peer):  # noqa: F811
    gate, read = make_gate(device), Reads(clock)
    worker = device.roster.lookup("04A1B2C3")
    peer.roster.replace([worker])
    peer.log.clock.wall = clock.now()
    made = append_registration(
        peer.log,
        Registration(worker.worker, worker.employer, "IN", "1Y101DRUNWB5Z", "04A1B2C3", "gate", worker.last_name),
    )
    gate.observe(made)
    clock.advance(120)
    outcome = gate.badge(read())
    assert (outcome.direction, outcome.expected_remarks) == ("OUT", ())


def test_the_same_badge_window_spans_the_site(device, clock, roster, peer):  # noqa: F811
    gate, read = make_gate(device, same_badge_window_s=60), Reads(clock)
    worker = device.roster.lookup("04A1B2C3")
    peer.log.clock.wall = clock.now()
    made = append_registration(
        peer.log, Registration(worker.worker, worker.employer, "IN", "1Y101DRUNWB5Z", "04A1B2C3", "gate")
    )
    gate.observe(made)
    clock.advance(10)
    assert gate.badge(read()).outcome == "duplicate_suppressed"


def test_exit_after_an_in_elsewhere_anticipates_no_remark_24(device, clock, roster, peer):  # noqa: F811
    gate, read = make_gate(device, direction="exit"), Reads(clock)
    worker = device.roster.lookup("04A1B2C3")
    peer.log.clock.wall = clock.now()
    alone = make_gate(device, direction="exit")
    assert 24 in alone._direction(alone._reader("gate"), None, clock.now())[1]  # alone, an OUT with no IN: 24
    made = append_registration(
        peer.log, Registration(worker.worker, worker.employer, "IN", "1Y101DRUNWB5Z", "04A1B2C3", "gate")
    )
    gate.observe(made)
    clock.advance(3600)
    outcome = gate.badge(read())
    assert outcome.direction == "OUT" and outcome.expected_remarks == ()
    assert device.log.count_kind(Kind.REGISTRATION) == 1


def test_a_gate_unheard_for_too_long_is_named_stale(mirror, device, clock, peer):
    from sitegate.site.view import gate_states

    mirror.accept("gate-b", peer_records(peer, 1)[0], clock.now())
    assert [g.stale for g in gate_states(device, mirror, clock.now())] == [False, False]
    clock.advance(device.config.bus.stale_after_s + 1)
    states = gate_states(device, mirror, clock.now())
    assert [(g.device, g.stale) for g in states] == [("gate-01", False), ("gate-b", True)]
    mirror.heard("gate-b", clock.now())  # its health message
    assert not gate_states(device, mirror, clock.now())[1].stale


def test_two_ins_decided_apart_are_reported_and_nothing_is_rewritten(device, peer, clock):
    from sitegate.site.view import conflicts

    ours = append_registration(device.log, registration(0, "IN"))
    peer.log.clock.wall = clock.now()
    peer.log.clock.advance(60)
    theirs = append_registration(peer.log, registration(0, "IN"))  # the same worker, IN again, at the other gate
    found = conflicts([("gate-01", ours), ("gate-b", theirs)])
    assert len(found) == 1 and found[0].direction == "IN"
    assert found[0].first.startswith("gate-01 @") and found[0].second.startswith("gate-b @")
    assert "85073003328" not in repr(found)  # masked
    assert conflicts([("gate-01", ours)]) == []


def test_an_in_here_and_an_in_there_are_reported_as_a_conflict(device, clock, roster, peer, monkeypatch):  # noqa: F811
    import sitegate.domain.gate

    said = []
    monkeypatch.setattr(
        sitegate.domain.gate, "event", lambda logger, name, *args, **fields: said.append((name, fields))
    )
    gate, read = make_gate(device, direction="entry"), Reads(clock)
    assert gate.badge(read()).direction == "IN"
    worker = device.roster.lookup("04A1B2C3")
    peer.log.clock.wall = clock.now()
    peer.log.clock.advance(30)
    made = append_registration(  # made at the other gate while the two could not hear each other
        peer.log, Registration(worker.worker, worker.employer, "IN", "1Y101DRUNWB5Z", "04A1B2C3", "gate")
    )
    gate.observe(made, "gate-b")
    conflicts = [fields for name, fields in said if name == "site_conflict"]
    assert len(conflicts) == 1 and conflicts[0]["gate"] == "gate-b" and conflicts[0]["direction"] == "IN"
    assert worker.worker.number not in repr(conflicts)
    assert device.log.count_kind(Kind.REGISTRATION) == 1  # nothing rewritten, nothing added


def test_the_foremans_headcount_counts_the_workers_of_every_gate(tmp_path, config, device, peer, clock):
    """The page's "who is on site": this gate's own registrations and, with the bus on, the mirrored peers'."""
    from sitegate.web.views import who_is_on_site

    append_registration(device.log, registration(0, "IN"))
    with_bus = dataclasses.replace(
        config,
        bus=dataclasses.replace(config.bus, host="127.0.0.1", peers=(("gate-b", peer.key.public_key_hex),)),
    )
    site = Mirror(connect_mirror(with_bus.mirror_path), "gate-01", with_bus.bus.peer_keys)
    try:
        peer_records(peer, 2, "IN")  # Worker0 and Worker1 at gate B; Worker0's IN at gate B is not newer
        for record in peer.log.records():
            assert site.accept("gate-b", record, clock.now()).verdict == Verdict.STORED
    finally:
        site.db.close()
    own_only = who_is_on_site(device.db, config, clock.now())
    whole_site = who_is_on_site(device.db, with_bus, clock.now())
    assert [(p.last_name, p.gate) for p in own_only] == [("Worker0", "gate-01")]
    assert sorted((p.last_name, p.gate) for p in whole_site) == [("Worker0", "gate-01"), ("Worker1", "gate-b")]


def test_two_ins_decided_at_two_peers_are_reported_at_a_third_gate_too(device, clock, roster, peer, monkeypatch):  # noqa: F811
    """Issue 23 §6: `site_conflict` was logged only by the two gates involved; every gate of the site says it."""
    import sitegate.domain.gate

    said = []
    monkeypatch.setattr(
        sitegate.domain.gate, "event", lambda logger, name, *args, **fields: said.append((name, fields))
    )
    gate = make_gate(device, direction="entry")
    worker = device.roster.lookup("04A1B2C3")
    peer.log.clock.wall = clock.now()
    made = []
    for seconds in (10, 20):  # the same IN at gate-b, then at gate-c, while the two could not hear each other
        peer.log.clock.advance(seconds)
        made.append(append_registration(
            peer.log, Registration(worker.worker, worker.employer, "IN", "1Y101DRUNWB5Z", "04A1B2C3", "gate")
        ))  # fmt: skip
    gate.observe(made[0], "gate-b")
    gate.observe(made[1], "gate-c")
    conflicts = [fields for name, fields in said if name == "site_conflict"]
    assert len(conflicts) == 1 and (conflicts[0]["first_gate"], conflicts[0]["gate"]) == ("gate-b", "gate-c")
    assert worker.worker.number not in repr(conflicts)


def test_pruning_keeps_the_horizon_and_each_peers_newest_and_the_chain_goes_on(mirror, peer, clock):
    """Issue 23 §1: the mirror was never pruned (≈ 725 B a row, 200 MB a year per gate at 300 workers). It keeps
    what the decisions read (48 h) and each peer's newest record; the peer's own signed log keeps the rest."""
    old = peer_records(peer, 3)
    peer.log.clock.advance(timedelta(hours=50).total_seconds())
    recent = [append_registration(peer.log, registration(i, "OUT")) for i in range(3, 5)]
    for record in old + recent:
        assert mirror.accept("gate-b", record, clock.now()).verdict == Verdict.STORED
    rows_before, bytes_before = mirror.size()
    assert mirror.prune(peer.log.clock.now() - timedelta(hours=48)) == 3
    assert [r.seq for r in mirror.records_of("gate-b", 1)] == [4, 5]
    assert mirror.size()[0] == rows_before - 3 and bytes_before > 0
    assert mirror.prune(peer.log.clock.now() + timedelta(days=30)) == 1  # all older: the newest stays
    assert [r.seq for r in mirror.records_of("gate-b", 1)] == [5]
    after = append_registration(peer.log, registration(5, "IN"))
    assert mirror.accept("gate-b", after, clock.now()).verdict == Verdict.STORED  # the chain goes on
    assert mirror.accept("gate-b", old[0], clock.now()).verdict == Verdict.DUPLICATE  # pruned, not taken again
