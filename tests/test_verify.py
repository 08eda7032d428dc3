"""Tampering of every kind is caught, and the right sequence number is named."""

import json
import sqlite3

import pytest
from conftest import registration, run_sitegate

from sitegate.domain.registration import append_registration
from sitegate.errors import VerificationError
from sitegate.queue.records import signed_message
from sitegate.queue.signing import DeviceKey
from sitegate.queue.verify import read_export, verify, write_export

COUNT = 8


@pytest.fixture
def filled(device, clock):
    for index in range(COUNT):
        append_registration(device.log, registration(index))
        clock.advance(30)
    device.close()
    return device


def tamper(device, *statements):
    """What an attacker with the file can do: drop the guards and edit rows."""
    conn = sqlite3.connect(device.config.database_path, isolation_level=None)
    conn.execute("DROP TRIGGER records_no_update")
    conn.execute("DROP TRIGGER records_no_delete")
    for statement, params in statements:
        conn.execute(statement, params)
    conn.close()


def verify_file(device):
    from sitegate.queue import database
    from sitegate.queue.log import RegistrationLog

    db = database.connect(device.config.database_path)
    log = RegistrationLog(db, device.key, device.log.clock, "gate-01")
    return verify(log.records(), device.key.public_key_hex)


def flip(text: str, index: int) -> str:
    return text[:index] + ("0" if text[index] != "0" else "1") + text[index + 1 :]


def row(device, seq):
    conn = sqlite3.connect(device.config.database_path)
    return dict(
        zip(
            ("payload", "hash", "signature"),
            conn.execute("SELECT payload, hash, signature FROM records WHERE seq=?", [seq]).fetchone(),
            strict=True,
        )
    )


def caught(device) -> VerificationError:
    with pytest.raises(VerificationError) as error:
        verify_file(device)
    return error.value


def test_untouched_log_verifies(filled):
    assert verify_file(filled).records == COUNT


def test_changed_payload_byte(filled):
    payload = row(filled, 5)["payload"].replace("IN", "UT")
    tamper(filled, ("UPDATE records SET payload=? WHERE seq=5", [payload]))
    error = caught(filled)
    assert error.seq == 5 and "altered" in error.problem


def test_payload_whitespace_change_is_caught(filled):
    payload = json.dumps(json.loads(row(filled, 2)["payload"]), indent=1)
    tamper(filled, ("UPDATE records SET payload=? WHERE seq=2", [payload]))
    assert caught(filled).seq == 2


def test_changed_hash_byte(filled):
    tamper(filled, ("UPDATE records SET hash=? WHERE seq=3", [flip(row(filled, 3)["hash"], 10)]))
    error = caught(filled)
    assert error.seq == 3 and "hash" in error.problem


def test_changed_signature_byte(filled):
    tamper(filled, ("UPDATE records SET signature=? WHERE seq=7", [flip(row(filled, 7)["signature"], 20)]))
    error = caught(filled)
    assert error.seq == 7 and "signature" in error.problem


def test_deleted_row(filled):
    tamper(
        filled,
        ("DELETE FROM registration_keys WHERE seq=4", []),
        ("PRAGMA foreign_keys=OFF", []),
        ("DELETE FROM records WHERE seq=4", []),
    )
    error = caught(filled)
    assert error.seq == 4 and "missing" in error.problem


def test_truncated_tail_shows_in_the_reported_last_seq(filled):
    # Truncation at the end leaves a valid shorter chain: the verifier reports the last sequence and hash,
    # which the paper listing and exports record, so a comparison shows it.
    tamper(filled, ("PRAGMA foreign_keys=OFF", []), ("DELETE FROM records WHERE seq=8", []))
    assert verify_file(filled).last_seq == 7


def test_two_swapped_rows(filled):
    conn = sqlite3.connect(filled.config.database_path)
    columns = "kind, payload, wall_utc, monotonic_ns, boot_id, clock_state, clock_offset_us, prev_hash, hash, signature"
    three = conn.execute(f"SELECT {columns} FROM records WHERE seq=3").fetchone()
    six = conn.execute(f"SELECT {columns} FROM records WHERE seq=6").fetchone()
    conn.close()
    setter = ", ".join(f"{c.strip()}=?" for c in columns.split(","))
    tamper(
        filled,
        (f"UPDATE records SET {setter} WHERE seq=3", list(six)),
        (f"UPDATE records SET {setter} WHERE seq=6", list(three)),
    )
    error = caught(filled)
    assert error.seq == 3 and "chain" in error.problem


def test_record_resigned_with_another_key(filled):
    conn = sqlite3.connect(filled.config.database_path)
    seq, *fields = conn.execute(
        "SELECT seq, kind, payload, wall_utc, monotonic_ns, boot_id, clock_state, clock_offset_us, prev_hash "
        "FROM records WHERE seq=6"
    ).fetchone()
    conn.close()
    kind, payload, wall, mono, boot, state, offset, prev = fields
    data = json.loads(payload)
    data["direction"] = "OUT"
    from sitegate.queue.records import canonical_json, digest

    message = signed_message(seq, kind, data, wall, mono, boot, state, offset, prev)
    other = DeviceKey.generate()
    tamper(
        filled,
        (
            "UPDATE records SET payload=?, hash=?, signature=? WHERE seq=6",
            [canonical_json(data), digest(message), other.sign(message)],
        ),
    )
    error = caught(filled)
    # The forged record's own hash is consistent, so the signature (and then record 7's chain) betray it.
    assert error.seq == 6 and "signature" in error.problem


def test_export_verifies_anywhere_and_catches_tampering(filled, tmp_path):
    out = tmp_path / "export.jsonl"
    from sitegate.queue import database
    from sitegate.queue.log import RegistrationLog

    log = RegistrationLog(database.connect(filled.config.database_path), filled.key, filled.log.clock, "gate-01")
    with open(out, "w", encoding="utf-8") as handle:
        assert write_export(handle, log.records(), filled.key.public_key_hex, "gate-01") == COUNT
    header, records = read_export(out)
    assert verify(records, header["public_key"]).records == COUNT
    # the command, without any database or config
    result = run_sitegate("verify", "--export", str(out), "--json", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout)["records"] == COUNT
    pinned = run_sitegate("verify", "--export", str(out), "--fingerprint", "0000:0000:0000:0000:0000")
    assert pinned.returncode == 2 and "signed by key" in pinned.stderr
    lines = out.read_text().splitlines()
    record = json.loads(lines[5])
    record["wall_utc"] = record["wall_utc"].replace("07:", "06:")
    lines[5] = json.dumps(record)
    out.write_text("\n".join(lines) + "\n")
    result = run_sitegate("verify", "--export", str(out), "--json")
    assert result.returncode == 2
    assert json.loads(result.stdout)["bad_seq"] == 5


def test_live_verify_command_names_the_bad_record(filled, config_file):
    assert run_sitegate("verify", config=config_file).returncode == 0
    tamper(filled, ("UPDATE records SET hash=? WHERE seq=2", [flip(row(filled, 2)["hash"], 0)]))
    result = run_sitegate("verify", config=config_file)
    assert result.returncode == 2
    assert "record 2:" in result.stderr
    data = json.loads(run_sitegate("verify", "--json", config=config_file).stdout)
    assert (
        data == {"ok": False, "source": str(filled.config.database_path), "bad_seq": 2, "problem": data["problem"]}
        and "hash" in data["problem"]
    )


def test_not_an_export(tmp_path):
    path = tmp_path / "x.jsonl"
    path.write_text("hello\n")
    with pytest.raises(VerificationError, match="not a sitegate export"):
        read_export(path)
