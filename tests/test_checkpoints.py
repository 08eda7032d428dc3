"""Truncation and rollback are caught: an attacker with `sqlite3` cuts the log's end or puts back an older copy, and
every witness that still holds the real head says so, by name, with both seqs (issue 12)."""

from __future__ import annotations

import json
import os
import pwd
import shutil
import signal
import sqlite3
import threading
from datetime import UTC, datetime
from itertools import pairwise

import pytest
from conftest import cut_log, registration, run_sitegate
from gate_site import DaemonProcess, uid, wait_until, write_site
from test_daemon import feed

from sitegate.clock.timefmt import BRUSSELS, format_utc
from sitegate.device import Device
from sitegate.domain.registration import append_registration
from sitegate.paper_fallback import listing
from sitegate.queue import checkpoints, database, delivery
from sitegate.queue.records import Kind
from sitegate.service.presence_rest_v1 import ItemResult

COUNT = 12
DELIVERED = 10  # the service accepted registrations 1..10


def append(device, clock, count: int, start: int = 0) -> None:
    for index in range(start, start + count):
        append_registration(device.log, registration(index))
        clock.advance(30)


def take(device, clock) -> checkpoints.Checkpoint:
    """A checkpoint as the daemon takes it."""
    head_file = database.head_path(device.config.database_path)
    now = format_utc(clock.now())
    taken, verdicts = checkpoints.checkpoint(
        device.log, device.ledger, device.key, head_file, now, checkpoints.Reason.PERIODIC
    )
    assert taken is not None and not [v for v in verdicts if v.broken]
    return taken


def deliver(device, up_to: int) -> None:
    """The forwarder's own ledger functions: taken in, sent, accepted with a service id."""
    batch = delivery.take_batch(
        device.ledger, up_to, format_utc(datetime.now(UTC)), "gate-01", delivery.ClockHold.at(device.log.clock, 0)
    )
    outcomes = [(p.seq, ItemResult(True, f"svc-{p.seq}", "valid")) for p in batch if p.seq <= up_to]
    delivery.settle(device.ledger, outcomes, format_utc(datetime.now(UTC)))


@pytest.fixture
def site(device, clock):
    """A log of COUNT registrations, DELIVERED of them accepted by the service, the head checkpointed."""
    append(device, clock, COUNT)
    deliver(device, DELIVERED)
    take(device, clock)
    return device


def files(device) -> list:
    path = device.config.database_path
    return [path, database.ledger_path(path)]


def cut(device, keep: int) -> None:
    device.close()
    cut_log(device.config.database_path, keep)


def snapshot(device, where) -> None:
    """An older copy of each database file, as `sqlite3 FILE .backup COPY` makes it."""
    where.mkdir()
    for file in files(device):
        source, copy = sqlite3.connect(file), sqlite3.connect(where / file.name)
        source.backup(copy)
        source.close()
        copy.close()


def restore(device, where, *names: str) -> None:
    for file in files(device):
        if file.name in names:
            for suffix in ("-wal", "-shm"):
                file.with_name(file.name + suffix).unlink(missing_ok=True)
            shutil.copy(where / file.name, file)


def verified(config_file, *args: str):
    result = run_sitegate("verify", *args, config=config_file)
    return result.returncode, result.stdout + result.stderr


def status_problems(config_file) -> tuple[list[str], list[str]]:
    data = json.loads(run_sitegate("status", "--json", config=config_file).stdout)
    return data["critical"], data["warnings"]


def test_an_untouched_log_extends_every_witness(site, config_file):
    code, out = verified(config_file)
    assert code == 0, out
    assert f"extends checkpoint {COUNT} of 2026-11-22 (ledger)" in out
    assert f"extends checkpoint {COUNT} of 2026-11-22 (head file)" in out
    assert f"extends seq {DELIVERED} delivered (ledger)" in out
    critical, warnings = status_problems(config_file)
    assert not [line for line in critical + warnings if "TRUNCATED" in line or "head file" in line]


def test_last_record_deleted(site, config_file):
    cut(site, COUNT - 1)
    code, out = verified(config_file)
    assert code == 2
    assert f"TRUNCATED: the ledger holds checkpoint {COUNT} of 2026-11-22, the log ends at {COUNT - 1}" in out
    assert f"TRUNCATED: the head file holds checkpoint {COUNT} of 2026-11-22, the log ends at {COUNT - 1}" in out
    critical, _ = status_problems(config_file)
    assert any(f"the head file holds checkpoint {COUNT}" in line for line in critical)


def test_last_n_deleted_below_a_delivered_registration(site, config_file):
    cut(site, 7)
    code, out = verified(config_file)
    assert code == 2
    assert f"TRUNCATED: the ledger holds seq {DELIVERED} delivered, the log ends at 7" in out
    critical, _ = status_problems(config_file)
    assert any(f"the ledger holds seq {DELIVERED} delivered, the log ends at 7" in line for line in critical)


def six_then_four_more(device, clock, older) -> Device:
    """Six records checkpointed, a copy of the files taken, four more checkpointed: the device, closed."""
    append(device, clock, 6)
    take(device, clock)
    device.close()
    snapshot(device, older)
    later = Device.open(device.config, clock)
    append(later, clock, 4, start=6)
    take(later, clock)
    later.close()
    return later


def test_database_replaced_by_an_older_copy(device, clock, config_file, tmp_path):
    later = six_then_four_more(device, clock, tmp_path / "older")
    restore(later, tmp_path / "older", "sitegate.db")
    code, out = verified(config_file)
    assert code == 2
    assert "TRUNCATED: the ledger holds checkpoint 10 of 2026-11-22, the log ends at 6" in out
    critical, _ = status_problems(config_file)
    assert any("the ledger holds checkpoint 10" in line for line in critical)


def test_ledger_rolled_back_with_the_log_is_caught_by_the_head_file(device, clock, config_file, tmp_path):
    later = six_then_four_more(device, clock, tmp_path / "older")
    restore(later, tmp_path / "older", "sitegate.db", "sitegate-delivery.db")
    code, out = verified(config_file)
    assert code == 2
    assert "extends checkpoint 6 of 2026-11-22 (ledger)" in out  # the ledger was rolled back too: it agrees
    assert "TRUNCATED: the head file holds checkpoint 10 of 2026-11-22, the log ends at 6" in out
    critical, _ = status_problems(config_file)
    assert any("the head file holds checkpoint 10" in line for line in critical)


def test_head_file_deleted_is_reported_not_fatal(site, config_file):
    database.head_path(site.config.database_path).unlink()
    code, out = verified(config_file)
    assert code == 1
    assert "head file:" in out and "is missing" in out
    assert f"extends checkpoint {COUNT} of 2026-11-22 (ledger)" in out
    critical, warnings = status_problems(config_file)
    assert any("is missing" in line for line in warnings)
    assert not [line for line in critical if "TRUNCATED" in line]


def test_a_damaged_head_file_is_reported(site, config_file):
    database.head_path(site.config.database_path).write_text("{not json")
    code, out = verified(config_file)
    assert code == 1 and "head file:" in out and "cannot be read" in out


@pytest.mark.parametrize(
    "change",
    [{"seq": "12"}, {"signature": None}, {"seq": True}, {"hash": 7}, {"extra": 1}],
    ids=["seq-text", "signature-null", "seq-bool", "hash-number", "extra-field"],
)
def test_a_head_file_of_the_wrong_form_is_damaged_not_a_crash(site, config_file, change):
    head_file = database.head_path(site.config.database_path)
    head_file.write_text(json.dumps({**json.loads(head_file.read_text()), **change}))
    code, out = verified(config_file)
    assert code == 1 and "head file:" in out and "cannot be read: not a checkpoint" in out, out
    critical, warnings = status_problems(config_file)
    assert not [line for line in critical if "head file" in line]
    assert any("cannot be read" in line for line in warnings)


def test_head_file_rewritten_by_hand_is_not_signed(site, config_file):
    head_file = database.head_path(site.config.database_path)
    forged = {**json.loads(head_file.read_text()), "seq": COUNT - 2}
    head_file.write_text(json.dumps(forged))
    code, out = verified(config_file)
    assert code == 2 and f"the head file holds a checkpoint {COUNT - 2} not signed by the device key" in out


def test_a_log_replaced_and_grown_past_the_checkpoint_is_rewritten(site, clock, config_file):
    cut(site, 8)
    regrown = Device.open(site.config, clock)
    append(regrown, clock, 6, start=20)  # seq 9..14: past the checkpoint of 12, but not the same records
    regrown.close()
    code, out = verified(config_file)
    assert code == 2
    assert f"REWRITTEN: the ledger holds checkpoint {COUNT} of 2026-11-22" in out
    assert "the log was replaced or rewritten" in out


def test_listing_printed_then_log_truncated(device, clock, config_file, tmp_path):
    """Printed at 10:00, cut at 11:00: the inspector's QR text proves the log no longer extends the paper."""
    append(device, clock, 8)
    day = clock.now().astimezone(BRUSSELS).date()
    qr = listing.build(device, day, now=clock.now()).checkpoint
    result = run_sitegate("paper", "print", "--out", str(tmp_path / "listing.pdf"), config=config_file)
    assert result.returncode == 0, result.stderr
    code, out = verified(config_file, "--checkpoint", qr)
    assert code == 0 and "extends checkpoint 8 (printed listing)" in out
    # Both files rolled back and the head file deleted: only the paper is left to tell.
    database.head_path(device.config.database_path).unlink()
    cut(device, 5)
    ledger = sqlite3.connect(database.ledger_path(device.config.database_path), isolation_level=None)
    ledger.execute("DELETE FROM checkpoints")
    ledger.close()
    code, out = verified(config_file, "--checkpoint", qr)
    assert code == 2
    assert "TRUNCATED: the printed listing holds checkpoint 8, the log ends at 5" in out


def test_a_checkpoint_seq_hash_from_another_log_is_refused(site, config_file):
    code, out = verified(config_file, "--checkpoint", f"3:{'ab' * 8}")
    assert code == 2 and "REWRITTEN: the given checkpoint holds checkpoint 3" in out
    code, out = verified(config_file, "--checkpoint", "3:abc")
    assert code == 2 and "at least 16 hex digits" in out


def test_export_carries_the_witnesses_and_catches_a_truncated_export(site, config_file, tmp_path):
    whole = tmp_path / "whole.jsonl"
    assert run_sitegate("export", "--out", str(whole), config=config_file).returncode == 0
    code, out = verified(config_file, "--export", str(whole))
    assert code == 0 and f"extends checkpoint {COUNT} of 2026-11-22 (head file (in the export))" in out
    lines = whole.read_text().splitlines()
    short = tmp_path / "short.jsonl"
    short.write_text("\n".join(lines[:-3]) + "\n")  # the export's last 3 records dropped
    code, out = verified(config_file, "--export", str(short))
    assert code == 2
    assert f"TRUNCATED: the ledger (in the export) holds checkpoint {COUNT} of 2026-11-22, the log ends at 9" in out


def test_a_typo_in_the_checkpoint_is_a_usage_error_not_tampering(site, config_file):
    code, out = verified(config_file, "--checkpoint", "37:a064cd16697275a8:junk")
    assert code == 2 and "copy it again" in out and "evidence" not in out


def test_a_listing_qr_of_another_gate_is_refused(site, config_file):
    last = site.log.last()
    fingerprint = site.key.fingerprint
    ours = f"sitegate:gate-01:{last.seq}:{last.hash[:16]}:{fingerprint}"
    assert verified(config_file, "--checkpoint", ours)[0] == 0
    code, out = verified(config_file, "--checkpoint", ours.replace("gate-01", "gate-02"))
    assert code == 2 and "the listing's QR code is gate gate-02's; this log is gate gate-01's" in out


def test_an_export_header_with_a_witness_of_the_wrong_form_fails_cleanly(site, config_file, tmp_path):
    export = tmp_path / "export.jsonl"
    assert run_sitegate("export", "--out", str(export), config=config_file).returncode == 0
    header, *records = export.read_text().splitlines()
    for change in ({"seq": "12"}, {"comment": "added by hand"}):
        altered = json.loads(header)
        altered["witnesses"][0].update(change)
        export.write_text("\n".join([json.dumps(altered), *records]) + "\n")
        code, out = verified(config_file, "--export", str(export))
        assert code == 2 and "the export's header holds a witness that is not one" in out, out


def test_a_cut_stays_critical_after_the_log_grows_past_it_until_acknowledged(site, clock, config_file):
    """The gate registered past the old end; the ledger's rows set aside still prove the cut. A technician who
    looked into it acknowledges it (a signed record naming them); checkpoints then resume."""
    cut(site, 5)
    regrown = Device.open(site.config, clock)
    append(regrown, clock, 9, start=30)  # seqs 6..14: past every seq the ledger delivered
    deliver(regrown, 14)
    set_aside = regrown.ledger.execute("SELECT count(*), sum(state = 'delivered') FROM superseded").fetchone()
    assert set_aside == (COUNT - 5, DELIVERED - 5)
    regrown.close()
    code, out = verified(config_file)
    assert code == 2 and f"TRUNCATED: the ledger holds registrations up to seq {COUNT} that the log lost" in out
    critical, _ = status_problems(config_file)
    assert any("that the log lost" in line and "--acknowledge" in line for line in critical)

    code, out = verified(config_file, "--acknowledge")
    assert "acknowledged (signed record" in out
    critical, _ = status_problems(config_file)
    assert not [line for line in critical if "TRUNCATED" in line or "REWRITTEN" in line], critical
    code, out = verified(config_file)
    assert code == 0 and "acknowledged by" in out, out
    again = Device.open(site.config, clock)
    try:
        record = next(again.log.newest(Kind.WITNESS_ACK))
        assert record.data["by"] == pwd.getpwuid(os.getuid()).pw_name
        assert take(again, clock).seq == again.log.last().seq  # checkpoints resume
    finally:
        again.close()


def test_writing_the_head_file_on_a_full_disk_leaves_no_partial_file(tmp_path, monkeypatch):
    head = tmp_path / "sitegate-head.json"

    def no_space(descriptor):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(checkpoints.os, "fsync", no_space)
    with pytest.raises(OSError):
        checkpoints._write_durably(head, "{}")
    assert list(tmp_path.iterdir()) == []


def test_the_daemon_catches_a_truncation_at_start_records_it_and_keeps_registering(tmp_path):
    config = write_site(tmp_path, workers=12)
    run_sitegate("roster", "import", str(tmp_path / "roster.csv"), config=config, check=True)
    daemon = DaemonProcess(config)
    daemon.wait_ready()
    feed(tmp_path / "badges.fifo", [uid(i) for i in range(8)], threading.Event())
    wait_until(lambda: len(daemon.registered()) == 8, "8 registrations", 10, lambda: daemon.lines)
    daemon.kill(signal.SIGTERM)
    head_file = database.head_path(tmp_path / "data" / "sitegate.db")
    stopped_at = json.loads(head_file.read_text())
    assert stopped_at["reason"] == "stop" and stopped_at["seq"] == max(daemon.registered())
    assert [e["seq"] for e in daemon.lines if e.get("event") == "checkpoint"][-1] == stopped_at["seq"]

    cut_log(tmp_path / "data" / "sitegate.db", stopped_at["seq"] - 3)

    daemon = DaemonProcess(config)
    daemon.wait_ready()
    feed(tmp_path / "badges.fifo", [uid(10)], threading.Event())
    wait_until(lambda: len(daemon.registered()) == 1, "the gate keeps registering", 10, lambda: daemon.lines)
    status = run_sitegate("status", "--json", config=config)
    assert status.returncode == 2
    assert any(
        f"the head file holds checkpoint {stopped_at['seq']}" in line for line in json.loads(status.stdout)["critical"]
    )
    daemon.kill(signal.SIGTERM)
    alarms = [e for e in daemon.lines if e.get("event") == "log_witness_mismatch"]
    assert alarms and alarms[0]["level"] == "critical" and "TRUNCATED" in alarms[0]["problem"]
    assert json.loads(head_file.read_text()) == stopped_at  # the evidence is not overwritten
    conn = sqlite3.connect(tmp_path / "data" / "sitegate.db")
    recorded = [
        json.loads(row[0]) for row in conn.execute("SELECT payload FROM records WHERE kind = 'witness_mismatch'")
    ]
    conn.close()
    # Once per finding, not at every heartbeat: truncated at start, "rewritten" once the gate's new records pass seq 9.
    assert len(recorded) <= 2 and all(a["findings"] != b["findings"] for a, b in pairwise(recorded))
    first = {"witness": "head file", "holds": "checkpoint", "seq": stopped_at["seq"], "state": "truncated"}
    assert first in recorded[0]["findings"]
    assert run_sitegate("verify", config=config).returncode == 2


def test_a_checkpoint_that_cannot_be_written_never_stops_the_gate_and_a_lost_head_file_stays_on_record(tmp_path):
    """The head file cannot be written (here: a folder in its place, as a full disk would refuse it): the daemon
    logs it with a fix and keeps registering, and stops cleanly. Next start, the head file is missing: the daemon
    writes it again, but the log keeps a signed trace that status shows until someone acknowledges it."""
    config = write_site(tmp_path, workers=4)
    run_sitegate("roster", "import", str(tmp_path / "roster.csv"), config=config, check=True)
    head_file = database.head_path(tmp_path / "data" / "sitegate.db")
    head_file.mkdir(parents=True)
    daemon = DaemonProcess(config)
    daemon.wait_ready()
    feed(tmp_path / "badges.fifo", [uid(0), uid(1)], threading.Event())
    wait_until(lambda: len(daemon.registered()) == 2, "2 registrations", 10, lambda: daemon.lines)
    daemon.kill(signal.SIGTERM)
    failed = [e for e in daemon.lines if e.get("event") == "checkpoint_failed"]
    assert failed and all(e["fix"] for e in failed)
    assert any(e.get("event") == "stopped" for e in daemon.lines)
    assert not [e for e in daemon.lines if e.get("event") == "thread_died"]

    head_file.rmdir()
    daemon = DaemonProcess(config)
    daemon.wait_ready()
    wait_until(head_file.exists, "the head file", 10)
    daemon.kill(signal.SIGTERM)
    _, warnings = status_problems(config)
    assert any("the log records witness findings" in line and "is missing" in line for line in warnings), warnings
    assert "acknowledged (signed record" in verified(config, "--acknowledge")[1]
    _, warnings = status_problems(config)
    assert not [line for line in warnings if "witness findings" in line]
