"""The signed, append-only log: every registration and every event the device must be able to prove.

append() returns only once the record is committed with fsync (WAL, synchronous=FULL): the caller may then
tell the worker "green". Sequence numbers are gap-free; each record carries the previous record's hash and an
Ed25519 signature. Delivery state lives in its own table, so signed records are never rewritten.
"""

from __future__ import annotations

import dataclasses
import sqlite3
from collections.abc import Callable, Iterator
from dataclasses import dataclass

import sqlite_utils

from sitegate.clock import Capture, Clock, ClockState
from sitegate.clock.timefmt import format_utc
from sitegate.errors import DeviceKeyError, DiskFullError, DuplicateRegistrationError, StorageError
from sitegate.queue import database
from sitegate.queue.records import GENESIS_HASH, Kind, Record, canonical_json, digest, signed_message
from sitegate.queue.signing import KEY_FIX, DeviceKey, fingerprint

RECORD_COLUMNS = tuple(field.name for field in dataclasses.fields(Record))  # the table's columns, in order
_INSERT_RECORD = f"INSERT INTO records ({', '.join(RECORD_COLUMNS)}) VALUES ({', '.join('?' * len(RECORD_COLUMNS))})"
_SELECT_RECORDS = f"SELECT {', '.join(RECORD_COLUMNS)} FROM records"


@dataclass(frozen=True)
class Tail:
    seq: int
    hash: str


def check_signer(key: DeviceKey, signs_for: str) -> None:
    """DeviceKeyError unless `key` is the key the log continues under (`signs_for`, its public key)."""
    if key.public_key_hex != signs_for:
        raise DeviceKeyError(
            f"the device key ({key.fingerprint}) does not match the key this log continues under "
            f"({fingerprint(signs_for)}); a log is never extended with another key",
            KEY_FIX,
        )


def _full_disk(error: sqlite3.Error) -> bool:
    return "full" in str(error).lower() or getattr(error, "sqlite_errorcode", None) == 13  # SQLITE_FULL


class LogView:
    """The records, read: the one place that knows the `records` table. Works on any connection that sees it
    (the log's own, or the ledger's with the log attached read-only)."""

    def __init__(self, db: sqlite_utils.Database) -> None:
        self.db = db

    def _rows(self, where: str = "", params: list | tuple = (), order: str = "seq", limit: int | None = None):
        sql = f"{_SELECT_RECORDS}{' WHERE ' + where if where else ''} ORDER BY {order}"
        for row in self.db.execute(sql + (f" LIMIT {int(limit)}" if limit else ""), list(params)):
            yield Record(*row)

    def last(self) -> Record | None:
        return next(self._rows(order="seq DESC", limit=1), None)

    def count(self) -> int:
        row = self.db.execute("SELECT max(seq) FROM records").fetchone()
        return row[0] or 0

    def count_kind(self, kind: str, after: int = 0) -> int:
        return self.db.execute("SELECT count(*) FROM records WHERE kind = ? AND seq > ?", [kind, after]).fetchone()[0]

    def has(self, kind: str) -> bool:
        return self.db.execute("SELECT 1 FROM records WHERE kind = ? LIMIT 1", [kind]).fetchone() is not None

    def records(self, start: int = 1, kind: str | None = None) -> Iterator[Record]:
        if kind:
            return self._rows("seq >= ? AND kind = ?", [start, kind])
        return self._rows("seq >= ?", [start])

    def between(self, kind: str, start_utc: str, end_utc: str) -> Iterator[Record]:
        """Records of one kind with start_utc <= wall time < end_utc, in log order (a day's registrations)."""
        return self._rows("kind = ? AND wall_utc >= ? AND wall_utc < ?", [kind, start_utc, end_utc])

    def newest(self, *kinds: str) -> Iterator[Record]:
        """Records of these kinds, newest first, read lazily: stop iterating and nothing more is read."""
        return self._rows(f"kind IN ({', '.join('?' * len(kinds))})", kinds, order="seq DESC")

    def registrations_after(self, seq: int) -> list[tuple[int, str, str | None]]:
        """(seq, hash, the remarks the gate expected, as JSON) of each registration after `seq`: the ledger takes
        these in, in bulk, without decoding each payload."""
        return self.db.execute(
            "SELECT seq, hash, json_extract(payload, '$.expected_remarks') FROM records WHERE kind = ? AND seq > ? "
            "ORDER BY seq",
            [Kind.REGISTRATION, seq],
        ).fetchall()

    def first_since(self, wall_utc: str) -> int | None:
        """The seq of the first record made at or after `wall_utc` (where a catch-up of recent records starts)."""
        return self.db.execute("SELECT min(seq) FROM records WHERE wall_utc >= ?", [wall_utc]).fetchone()[0]

    def first_key(self) -> str | None:
        """The public key that signed record 1 (a `key replace` keeps it apart); None for a log no key signed."""
        row = self.db.execute(
            "SELECT value FROM meta WHERE key IN ('first_public_key', 'public_key') ORDER BY key = 'public_key'"
        ).fetchone()
        return row[0] if row else None

    def signing_key(self) -> str | None:
        """The public key the log continues under (the first key, or the newest a `key replace` started); None for
        a log no key has signed yet. Readers check the log with it: they never need the private key."""
        row = self.db.execute("SELECT value FROM meta WHERE key = 'public_key'").fetchone()
        return row[0] if row else None

    def get(self, seq: int) -> Record | None:
        return next(self._rows("seq = ?", [seq]), None)

    def get_many(self, seqs: list[int]) -> dict[int, Record]:
        """Records by seq, for joins with the delivery ledger (which lives in the other file)."""
        found: dict[int, Record] = {}
        for start in range(0, len(seqs), 500):  # SQLite's limit on bound parameters
            chunk = seqs[start : start + 500]
            found.update((r.seq, r) for r in self._rows(f"seq IN ({', '.join('?' * len(chunk))})", chunk))
        return found

    def not_synced(self, boot_id: str | None = None) -> Iterator[Record]:
        """Registrations captured while the clock was not trusted (of one boot, if given): before a sync, or after a
        step."""
        where, params = (
            "kind = ? AND clock_state IN (?, ?, ?)",
            [Kind.REGISTRATION, ClockState.UNSYNCED, ClockState.UNKNOWN, ClockState.STEPPED],
        )
        if boot_id is not None:
            return self._rows(where + " AND boot_id = ?", [*params, boot_id])
        return self._rows(where, params)


class RegistrationLog(LogView):
    """The log on one database file, used by one thread: open one per thread (or process).

    Writers on other connections are serialised by SQLite itself (BEGIN IMMEDIATE and a busy timeout).
    key: None for a reader (`sitegate status`, `verify`, ...): it never needs the private key, and appends nothing.
    """

    def __init__(self, db: sqlite_utils.Database, key: DeviceKey | None, clock: Clock, device_id: str) -> None:
        super().__init__(db)
        self.key = key
        self.clock = clock
        self.device_id = device_id
        if key is not None:
            self._check_key(key)

    def _check_key(self, key: DeviceKey) -> None:
        """A log continues under one key at a time: refuse to extend it with another."""
        signs_for = self.signing_key()
        if signs_for is None:
            self.db.execute(
                "INSERT OR IGNORE INTO meta (key, value) VALUES ('public_key', ?), ('device_id', ?)",
                [key.public_key_hex, self.device_id],
            )
        else:
            check_signer(key, signs_for)

    def _key_still_current(self, conn: sqlite3.Connection, key: DeviceKey) -> None:
        """Under the write lock: a process that loaded the key before a `key replace` must not sign after it."""
        row = conn.execute("SELECT value FROM meta WHERE key = 'public_key'").fetchone()
        if row is not None and row[0] != key.public_key_hex:
            raise DeviceKeyError(
                f"the log continues under key {fingerprint(row[0])} since `sitegate key replace`; this process "
                f"still holds the old key {key.fingerprint}",
                "restart it (`sudo systemctl restart sitegate`): it then loads the new device.key",
            )

    def append(
        self,
        kind: str,
        payload: dict,
        *,
        dedup_key: Callable[[Capture], str] | None = None,
    ) -> Record:
        """Sign and store one record; returns after the commit is durable on disk.

        dedup_key: computes, from the capture, the key that must be unique (remark 14's five fields).
        Registrations are picked up by the forwarder's ledger (queue/delivery.py): nothing else is written here.
        """
        if self.key is None:
            raise DeviceKeyError("this command reads the log and cannot sign a record", KEY_FIX)
        payload_text = canonical_json(payload)
        conn = self.db.conn
        try:
            with database.immediate(self.db):
                self._key_still_current(conn, self.key)
                capture = self.clock.capture()
                tail = self._tail(conn)
                record = self._seal(self.key, tail, kind, payload, payload_text, capture)
                conn.execute(_INSERT_RECORD, [getattr(record, c) for c in RECORD_COLUMNS])
                if dedup_key is not None:
                    conn.execute(
                        "INSERT INTO registration_keys (key, seq) VALUES (?, ?)", [dedup_key(capture), record.seq]
                    )
        except sqlite3.IntegrityError as error:
            if "registration_keys" in str(error):
                raise DuplicateRegistrationError(
                    "an identical registration (same company, worker, date and time, workplace) is already "
                    "stored: the service would flag it as remark 14",
                    "nothing to do: the first registration counts",
                ) from None
            raise StorageError(f"the log refused a record: {error}", "run `sitegate verify`") from None
        except sqlite3.OperationalError as error:
            if _full_disk(error):
                raise DiskFullError(
                    f"disk full: the record was not stored ({error})",
                    "free space on the data partition (old exports, logs); no stored record was lost",
                ) from None
            raise database.write_problem(database.file_of(self.db)) or StorageError(
                f"the log cannot be written: {error}", "check the disk (`df`, `dmesg`) and `sitegate status`"
            ) from None
        return record

    def start_key(self, new_key: DeviceKey, payload: dict, verified: Tail | None) -> Record:
        """The record that starts a new key (`sitegate key replace`), signed by it, after the `verified` tail, and
        the log's key switched to it, in one transaction: no process holding the old key signs after it."""
        conn = self.db.conn
        with database.immediate(self.db):
            tail = self._tail(conn)
            if tail != verified:
                raise StorageError(
                    f"the log changed while it was verified (it ends at {tail.seq if tail else 0} now)",
                    "stop the daemon (`sudo systemctl stop sitegate`) and run the command again",
                )
            payload_text = canonical_json(payload)
            record = self._seal(new_key, tail, Kind.KEY_REPLACED, payload, payload_text, self.clock.capture())
            conn.execute(_INSERT_RECORD, [getattr(record, c) for c in RECORD_COLUMNS])
            conn.execute(  # where a verifier starts: the log's own first key, never one a record names
                "INSERT OR IGNORE INTO meta (key, value) "
                "SELECT 'first_public_key', value FROM meta WHERE key = 'public_key'"
            )
            conn.execute(
                "INSERT INTO meta (key, value) VALUES ('public_key', ?) "
                "ON CONFLICT (key) DO UPDATE SET value = excluded.value",
                [new_key.public_key_hex],
            )
        self.key = new_key
        return record

    @staticmethod
    def _seal(
        key: DeviceKey, tail: Tail | None, kind: str, payload: dict, payload_text: str, capture: Capture
    ) -> Record:
        signed = (
            tail.seq + 1 if tail else 1,
            kind,
            payload,
            format_utc(capture.wall_utc),
            capture.monotonic_ns,
            capture.boot_id,
            capture.clock.state,
            capture.clock.offset_us,
            tail.hash if tail else GENESIS_HASH,
        )
        message = signed_message(*signed, payload_text=payload_text)
        return Record(*signed[:2], payload_text, *signed[3:], digest(message), key.sign(message))

    @staticmethod
    def _tail(conn: sqlite3.Connection) -> Tail | None:
        row = conn.execute("SELECT seq, hash FROM records ORDER BY seq DESC LIMIT 1").fetchone()
        return Tail(*row) if row else None
