"""Opening the device database: durable pragmas on every connection, mode 0600, versioned migrations.

One SQLite file holds the signed log, the delivery state beside it, and the roster. It is opened through
sqlite-utils; every connection gets WAL and synchronous=FULL, so a commit is on disk when it returns.
"""

from __future__ import annotations

import contextlib
import os
import sqlite3
from collections.abc import Callable, Iterator
from pathlib import Path

import sqlite_utils

from sitegate.errors import StorageError

DURABLE_PRAGMAS = (
    "PRAGMA journal_mode=WAL",
    "PRAGMA synchronous=FULL",
    "PRAGMA foreign_keys=ON",
    "PRAGMA busy_timeout=10000",
)


def _v1(db: sqlite_utils.Database) -> None:
    """Schema version 1. A migration is frozen once released: it spells its columns out, never derives them."""
    db["records"].create(
        {
            "seq": int,
            "kind": str,
            "payload": str,
            "wall_utc": str,
            "monotonic_ns": int,
            "boot_id": str,
            "clock_state": str,
            "clock_offset_us": int,
            "prev_hash": str,
            "hash": str,
            "signature": str,
        },
        pk="seq",
        not_null={
            "kind",
            "payload",
            "wall_utc",
            "monotonic_ns",
            "boot_id",
            "clock_state",
            "prev_hash",
            "hash",
            "signature",
        },
    )
    # Signed records are never rewritten: the database refuses it (the verifier still catches a forced change).
    db.execute(
        "CREATE TRIGGER records_no_update BEFORE UPDATE ON records "
        "BEGIN SELECT RAISE(ABORT, 'records are append-only'); END"
    )
    db.execute(
        "CREATE TRIGGER records_no_delete BEFORE DELETE ON records "
        "BEGIN SELECT RAISE(ABORT, 'records are append-only'); END"
    )
    db["delivery"].create(
        {
            "seq": int,
            "reference": str,
            "state": str,
            "attempts": int,
            "last_error": str,
            "error_class": str,
            "service_id": str,
            "validity": str,
            "remarks": str,
            "updated_utc": str,
            "expected_remarks": str,
            "corrected_utc": str,
            "delivered_utc": str,
        },
        pk="seq",
        foreign_keys=[("seq", "records", "seq")],
        not_null={"reference", "state", "attempts"},
        defaults={"attempts": 0, "state": "pending"},
    )
    db["delivery"].create_index(["state", "seq"])
    # The five fields of remark 14, hashed: an identical registration is refused at append time.
    db.execute(
        "CREATE TABLE registration_keys (key TEXT PRIMARY KEY, seq INTEGER NOT NULL "
        "REFERENCES records(seq)) WITHOUT ROWID"
    )
    db["meta"].create({"key": str, "value": str}, pk="key")
    db["roster"].create(
        {
            "badge_uid": str,
            "worker_kind": str,
            "worker_number": str,
            "last_name": str,
            "first_name": str,
            "employer": str,
            "valid_from": str,
            "valid_until": str,
        },
        pk="badge_uid",
        not_null={"worker_kind", "worker_number", "last_name", "first_name", "employer"},
    )


MIGRATIONS: list[Callable[[sqlite_utils.Database], None]] = [_v1]
SCHEMA_VERSION = len(MIGRATIONS)


def _create_private(path: Path) -> None:
    """Create the file 0600 before SQLite does: its -wal and -shm files then get the same mode."""
    path.parent.mkdir(parents=True, exist_ok=True)
    try:
        os.close(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600))
    except FileExistsError:
        pass


def connect(path: Path) -> sqlite_utils.Database:
    """A durable connection, migrated to the current schema."""
    path = Path(path)
    try:
        _create_private(path)
        # One connection per thread by design; a connection may be handed over to the thread that uses it.
        connection = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
        for pragma in DURABLE_PRAGMAS:
            connection.execute(pragma)
        db = sqlite_utils.Database(connection)
        migrate(db)
    except sqlite3.DatabaseError as error:
        raise StorageError(
            f"database {path} cannot be opened: {error}",
            "check the disk and the file's permissions; if the file is corrupt, `sitegate run` moves it aside "
            "and starts a new one (the old one is kept as evidence)",
        ) from None
    except PermissionError as error:
        raise StorageError(
            f"database {path}: {error}", "run as the sitegate user, or fix the directory's owner"
        ) from None
    return db


@contextlib.contextmanager
def immediate(db: sqlite_utils.Database) -> Iterator[sqlite_utils.Database]:
    """One write transaction, taking SQLite's write lock at once (sqlite-utils' atomic() nests inside it)."""
    db.execute("BEGIN IMMEDIATE")
    try:
        yield db
    except BaseException:
        if db.conn.in_transaction:  # a failed COMMIT (disk full) may already have rolled back
            db.execute("ROLLBACK")
        raise
    db.execute("COMMIT")


def migrate(db: sqlite_utils.Database) -> None:
    current = db.execute("PRAGMA user_version").fetchone()[0]
    if current > SCHEMA_VERSION:
        raise StorageError(
            f"database schema version {current} is newer than this sitegate ({SCHEMA_VERSION})",
            "install the sitegate version that wrote it, or a newer one; never downgrade over a live database",
        )
    for version in range(current, SCHEMA_VERSION):
        with immediate(db):
            MIGRATIONS[version](db)
            db.execute(f"PRAGMA user_version={version + 1}")
