import os
import sqlite3
import stat

import pytest
from conftest import registration

from sitegate.domain.registration import append_registration
from sitegate.errors import DiskFullError, DuplicateRegistrationError, StorageError
from sitegate.queue import database, delivery
from sitegate.queue.database import immediate
from sitegate.queue.log import RegistrationLog
from sitegate.queue.records import canonical_json, signed_message
from sitegate.queue.signing import DeviceKey
from sitegate.queue.verify import verify


def test_append_is_gap_free_chained_and_verifies(device, clock):
    records = []
    for index in range(6):
        records.append(append_registration(device.log, registration(index)))
        clock.advance(1)
    assert [r.seq for r in records] == [1, 2, 3, 4, 5, 6]
    assert all(b.prev_hash == a.hash for a, b in zip(records, records[1:], strict=False))
    report = verify(device.log.records(), device.key.public_key_hex)
    assert report.records == 6 and report.last_hash == records[-1].hash


def test_record_stores_time_boot_and_clock_state(device, clock):
    clock.reading = clock.reading.__class__("unsynced", 1_500_000)
    record = append_registration(device.log, registration())
    assert record.wall_utc == "2026-11-22T07:00:00.000000Z"
    assert record.boot_id == "test-boot" and record.clock_state == "unsynced" and record.clock_offset_us == 1_500_000
    assert record.data["worker"] == {
        "kind": "ssin",
        "number": "85073003328",
        "last_name": "Worker0",
        "first_name": "Test",
    }


def test_every_connection_is_durable(config):
    db = database.connect(config.database_path)
    assert db.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    assert db.execute("PRAGMA synchronous").fetchone()[0] == 2  # FULL
    assert db.execute("PRAGMA user_version").fetchone()[0] == database.SCHEMA_VERSION


def test_database_and_key_are_private(device):
    append_registration(device.log, registration())
    for path in (
        device.config.database_path,
        device.config.key_path,
        device.config.database_path.with_name("sitegate.db-wal"),
    ):
        assert stat.S_IMODE(os.stat(path).st_mode) == 0o600, path


def test_identical_registration_refused_remark_14(device, clock):
    append_registration(device.log, registration(0))
    with pytest.raises(DuplicateRegistrationError, match="remark 14"):
        append_registration(device.log, registration(0))
    clock.advance(1)
    append_registration(device.log, registration(0))  # a second later it is another registration
    assert device.log.count() == 2
    verify(device.log.records(), device.key.public_key_hex)  # the refused one left no gap


def test_records_cannot_be_updated_or_deleted(device):
    append_registration(device.log, registration())
    with pytest.raises(sqlite3.IntegrityError, match="append-only"):
        device.db.execute("UPDATE records SET kind = 'x' WHERE seq = 1")
    with pytest.raises(sqlite3.IntegrityError, match="append-only"):
        device.db.execute("DELETE FROM records")


def test_delivery_state_beside_records(device, clock):
    for index in range(3):
        append_registration(device.log, registration(index))
    device.log.append("note", {"text": "not deliverable"})
    clock.advance(42)
    summary = delivery.summary(device.db, clock.wall)
    assert (summary.pending, summary.in_flight, summary.delivered, summary.rejected) == (3, 0, 0, 0)
    assert summary.oldest_pending_seq == 1 and summary.oldest_pending_age_s == 42
    with immediate(device.ledger):
        assert (
            delivery.catch_up(device.ledger, "gate-01", "2026-11-22T07:00:00.000000Z") == 3
        )  # the note is not a registration
    references = [row[0] for row in device.db.execute("SELECT reference FROM delivery ORDER BY seq")]
    assert references == ["gate-01-1", "gate-01-2", "gate-01-3"]
    assert all(len(r) <= 24 for r in references)


def test_full_disk_refuses_loudly_and_loses_nothing(device):
    for index in range(3):
        append_registration(device.log, registration(index))
    page_count = device.db.execute("PRAGMA page_count").fetchone()[0]
    device.db.execute(f"PRAGMA max_page_count={page_count}")
    big = {"text": "x" * 20000}
    with pytest.raises(DiskFullError) as caught:
        device.log.append("note", big)
    assert "free space" in caught.value.fix
    assert device.log.count() == 3
    verify(device.log.records(), device.key.public_key_hex)
    device.db.execute("PRAGMA max_page_count=1073741823")
    assert device.log.append("note", big).seq == 4


def test_a_log_refuses_another_key(device, clock):
    append_registration(device.log, registration())
    with pytest.raises(StorageError, match="does not match"):
        RegistrationLog(device.db, DeviceKey.generate(), clock, "gate-01")


def test_schema_newer_than_code_is_refused(config):
    db = database.connect(config.database_path)
    db.execute(f"PRAGMA user_version={database.SCHEMA_VERSION + 1}")
    db.close()
    with pytest.raises(StorageError, match="newer than this sitegate"):
        database.connect(config.database_path)


def test_corrupt_key_file_is_reported(config):
    config.key_path.parent.mkdir(parents=True)
    config.key_path.write_text("not hex")
    with pytest.raises(StorageError, match="restore device.key from the backup"):
        DeviceKey.load_or_create(config.key_path)


def test_a_delivery_commit_never_holds_up_an_append(device, config):
    """The ledger has its own file and write lock: the gate appends while the forwarder is mid-transaction."""
    forwarder_side = database.connect_ledger(config.database_path)
    forwarder_side.execute("BEGIN IMMEDIATE")
    forwarder_side.execute("INSERT INTO delivery_meta (key, value) VALUES ('busy', 'yes')")
    device.db.execute("PRAGMA busy_timeout=0")  # would fail at once if it had to wait
    assert append_registration(device.log, registration()).seq == 1
    forwarder_side.execute("ROLLBACK")
    with pytest.raises(sqlite3.OperationalError, match="readonly"):
        device.db.execute("INSERT INTO delivery_meta (key, value) VALUES ('x', 'y')")  # the gate cannot write there


@pytest.mark.parametrize(
    "payload",
    [
        {},
        {"worker": {"last_name": "Nowak-Łukasiewicz", "first_name": "Ødegård"}, "n": [1, 2, {"z": None}]},
        {"text": 'quotes " and \\ and \u0001 and 中文', "payload": "a key of the same name"},
    ],
)
def test_the_append_paths_spliced_message_is_the_canonical_one(payload):
    """The append encodes the payload once and splices it in: the bytes must be those a verifier derives."""
    fields = (7, "registration", payload, "2026-11-22T07:00:00.000000Z", 5, "boot", "synced", -3, "0" * 64)
    spliced = signed_message(*fields, payload_text=canonical_json(payload))
    assert spliced == signed_message(*fields)
