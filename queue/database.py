"""Opening the device's databases: durable pragmas on every connection, mode 0600, versioned migrations.

Two SQLite files, side by side. `sitegate.db` holds the signed log and the roster, and only the gate and the
events write it. `sitegate-delivery.db` holds the delivery state (the ledger), and only the forwarder writes it.
Each file has its own write lock, so a delivery commit never holds up a worker's registration. Every connection
opens one file for writing and attaches the other read-only, so queries can join records with delivery state;
`BEGIN IMMEDIATE` takes no lock on a read-only attachment. Every connection gets WAL and synchronous=FULL.
"""

from __future__ import annotations

import contextlib
import logging
import os
import shutil
import sqlite3
from collections.abc import Callable, Iterator
from datetime import datetime
from pathlib import Path

import sqlite_utils

from sitegate.errors import StorageError
from sitegate.jsonlog import event
from sitegate.ownership import current_user, ownership

logger = logging.getLogger("sitegate.database")

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


def _v2(db: sqlite_utils.Database) -> None:
    """Schema version 2: a roster role (a foreman's badge prints the listing; see firmware/domain/gate.py)."""
    db.execute("ALTER TABLE roster ADD COLUMN role TEXT NOT NULL DEFAULT 'worker'")


def _ledger_v1(db: sqlite_utils.Database) -> None:
    """Ledger schema version 1: delivery state by record seq (no foreign key: the records live in the other file)."""
    db.execute(
        "CREATE TABLE delivery (seq INTEGER PRIMARY KEY, reference TEXT NOT NULL, state TEXT NOT NULL DEFAULT "
        "'pending', attempts INTEGER NOT NULL DEFAULT 0, last_error TEXT, error_class TEXT, service_id TEXT, "
        "validity TEXT, remarks TEXT, updated_utc TEXT, expected_remarks TEXT, corrected_utc TEXT, delivered_utc TEXT)"
    )
    db.execute("CREATE INDEX delivery_state_seq ON delivery (state, seq)")
    db.execute("CREATE TABLE delivery_meta (key TEXT PRIMARY KEY, value TEXT)")


def _ledger_v2(db: sqlite_utils.Database) -> None:
    """Ledger schema version 2: signed checkpoints of the log's head (queue/checkpoints.py), a witness in this file."""
    db.execute(
        "CREATE TABLE checkpoints (seq INTEGER NOT NULL, hash TEXT NOT NULL, wall_utc TEXT NOT NULL, "
        "reason TEXT NOT NULL, signature TEXT NOT NULL)"
    )
    db.execute("CREATE INDEX checkpoints_seq ON checkpoints (seq)")


def _ledger_v3(db: sqlite_utils.Database) -> None:
    """Ledger schema version 3: the hash of each registration taken in (rows of older versions have none), and the
    rows set aside when the log no longer holds their registration (truncated or replaced: queue/delivery.py)."""
    db.execute("ALTER TABLE delivery ADD COLUMN hash TEXT")
    db.execute("CREATE TABLE superseded AS SELECT *, NULL AS superseded_utc FROM delivery WHERE 0")


def _ledger_v4(db: sqlite_utils.Database) -> None:
    """Ledger schema version 4: how many of a registration's sends lost their answer (no answer in time, a broken
    connection, an unreadable answer, a crash while in flight): the service may hold it already, so a remark 14 on
    its resend is our own duplicate (firmware/service/remarks.py)."""
    for table in ("delivery", "superseded"):
        db.execute(f"ALTER TABLE {table} ADD COLUMN lost_answers INTEGER NOT NULL DEFAULT 0")


def _ledger_v5(db: sqlite_utils.Database) -> None:
    """Ledger schema version 5: the channel a registration last went out through, written before the call (a gate
    with a fallback, firmware/service/channels.py): one whose answer was lost, or that was in flight when the power
    went, is resent through that channel only, after a restart too, so no badge is registered through both."""
    for table in ("delivery", "superseded"):
        db.execute(f"ALTER TABLE {table} ADD COLUMN channel TEXT")


MIGRATIONS: list[Callable[[sqlite_utils.Database], None]] = [_v1, _v2]
LEDGER_MIGRATIONS: list[Callable[[sqlite_utils.Database], None]] = [
    _ledger_v1,
    _ledger_v2,
    _ledger_v3,
    _ledger_v4,
    _ledger_v5,
]
SCHEMA_VERSION = len(MIGRATIONS)


def ledger_path(path: Path) -> Path:
    """The delivery ledger beside the log: sitegate.db → sitegate-delivery.db."""
    return Path(path).with_name(f"{Path(path).stem}-delivery.db")


def head_path(path: Path) -> Path:
    """The head file beside the log (queue/checkpoints.py): sitegate.db → sitegate-head.json."""
    return Path(path).with_name(f"{Path(path).stem}-head.json")


def _create_private(path: Path) -> None:
    """Create the file 0600 before SQLite does: its -wal and -shm files then get the same mode."""
    path.parent.mkdir(parents=True, exist_ok=True)
    try:
        os.close(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600))
    except FileExistsError:
        pass


def _open(path: Path, attach: Path | None, alias: str | None, migrations) -> sqlite_utils.Database:
    path = Path(path)
    try:
        for file in (path, attach) if attach else (path,):
            _create_private(file)
        # One connection per thread by design; a connection may be handed over to the thread that uses it.
        connection = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
        for pragma in DURABLE_PRAGMAS:
            connection.execute(pragma)
        db = sqlite_utils.Database(connection)
        migrate(db, migrations)
        if attach:
            _ensure_migrated(attach, LEDGER_MIGRATIONS if migrations is MIGRATIONS else MIGRATIONS)
        if alias:
            connection.execute(f"ATTACH DATABASE 'file:{attach}?mode=ro' AS {alias}")
    except sqlite3.DatabaseError as error:
        if problem := write_problem(path):
            raise problem from None
        raise StorageError(
            f"database {path} cannot be opened: {error}",
            "check the disk and the file's permissions; if the file is corrupt, `sitegate run` moves it aside "
            "and starts a new one (the old one is kept as evidence)",
        ) from None
    except PermissionError as error:
        raise write_problem(path) or StorageError(
            f"database {path}: {error}", "run as the sitegate user, or fix the directory's owner"
        ) from None
    return db


def write_problem(path: Path) -> StorageError | None:
    """Why this process cannot write the database at `path` (read-only file system, owner or mode), named so that a
    technician can fix it; None when nothing stands in the way."""
    path = Path(path)
    files = (path, path.with_name(path.name + "-wal"), path.with_name(path.name + "-shm"))
    if os.statvfs(path.parent).f_flag & os.ST_RDONLY:
        return StorageError(
            f"{path.parent} is on a file system mounted read-only (the kernel does so after storage errors)",
            "look at `dmesg` for SD card or disk errors and replace the card; `mount` shows the mount options",
        )
    me = current_user()
    for file in [path.parent, *(file for file in files if file.exists())]:
        if os.access(file, os.W_OK):
            continue
        what = "directory" if file.is_dir() else "file"
        return StorageError(
            f"{what} {file} is {ownership(file)}: sitegate runs as {me} and cannot write it",
            f"sudo chown -R {me}: {path.parent} (the data directory belongs to the daemon's user), then "
            "`sudo systemctl restart sitegate`",
        )
    return None


def file_of(db: sqlite_utils.Database) -> Path:
    """The file a connection's main database lives in."""
    return Path(db.execute("PRAGMA database_list").fetchone()[2])


def _ensure_migrated(path: Path, migrations) -> None:
    """The other file must exist with its schema before it can be attached read-only."""
    connection = sqlite3.connect(path, isolation_level=None)
    try:
        for pragma in DURABLE_PRAGMAS:
            connection.execute(pragma)
        migrate(sqlite_utils.Database(connection), migrations)
    finally:
        connection.close()


def connect(path: Path, with_ledger: bool = True) -> sqlite_utils.Database:
    """The log for writing (records, events, roster, meta), the delivery ledger attached read-only.

    The gate's own connection goes without the ledger (with_ledger=False): an append then touches one file only.
    """
    return _open(Path(path), ledger_path(path), "ledger" if with_ledger else None, MIGRATIONS)


def connect_ledger(path: Path) -> sqlite_utils.Database:
    """The delivery ledger for writing (the forwarder's), the log attached read-only."""
    return _open(ledger_path(path), Path(path), "log", LEDGER_MIGRATIONS)


def connect_alone(path: Path, migrations: list[Callable[[sqlite_utils.Database], None]]) -> sqlite_utils.Database:
    """A database of its own (the site bus's mirror), with the same pragmas, mode 0600 and migrations."""
    return _open(Path(path), None, None, migrations)


def connect_readonly(path: Path) -> sqlite_utils.Database:
    """For a reader in another process (the foreman's page): the log, the ledger attached, both opened read-only, so
    nothing it runs can write. The daemon must have created both files (and their WAL) first."""
    path = Path(path)
    try:
        connection = sqlite3.connect(f"file:{path}?mode=ro", uri=True, isolation_level=None, check_same_thread=False)
        connection.execute("PRAGMA busy_timeout=10000")
        connection.execute(f"ATTACH DATABASE 'file:{ledger_path(path)}?mode=ro' AS ledger")
        connection.execute("SELECT 1 FROM records LIMIT 1")
    except sqlite3.Error as error:
        raise StorageError(
            f"database {path} cannot be read: {error}",
            "start the gate first (`systemctl start sitegate` creates it); run as the sitegate user",
        ) from None
    return sqlite_utils.Database(connection)


@contextlib.contextmanager
def immediate(db: sqlite_utils.Database) -> Iterator[sqlite_utils.Database]:
    """One write transaction, taking SQLite's write lock at once (sqlite-utils' atomic() nests inside it).

    On the badge path: statements go straight to the connection, without sqlite-utils' per-call parsing.
    """
    conn = db.conn
    conn.execute("BEGIN IMMEDIATE")
    try:
        yield db
    except BaseException:
        if conn.in_transaction:  # a failed COMMIT (disk full) may already have rolled back
            conn.execute("ROLLBACK")
        raise
    conn.execute("COMMIT")


def migrate(db: sqlite_utils.Database, migrations=MIGRATIONS) -> None:
    current = db.execute("PRAGMA user_version").fetchone()[0]
    if current > len(migrations):
        raise StorageError(
            f"database schema version {current} is newer than this sitegate ({len(migrations)})",
            "install the sitegate version that wrote it, or a newer one; never downgrade over a live database",
        )
    while current < len(migrations):
        with immediate(db):  # read again under the write lock: another process may have migrated meanwhile
            current = db.execute("PRAGMA user_version").fetchone()[0]
            if current < len(migrations):
                migrations[current](db)
                db.execute(f"PRAGMA user_version={current + 1}")


def _corruption(path: Path) -> str | None:
    """What is corrupt in the file, or None. A file we cannot write (or read) is not corrupt: moving it aside would
    throw away a good log or make every delivered registration go out again; that is an error to fix instead."""
    if not path.exists():
        return None
    if problem := write_problem(path):
        raise problem
    try:
        connection = sqlite3.connect(path)
        try:
            result = connection.execute("PRAGMA quick_check").fetchone()[0]
        finally:
            connection.close()
    except sqlite3.DatabaseError as error:
        if (getattr(error, "sqlite_errorcode", 0) & 0xFF) in CORRUPTION_CODES:
            return str(error)
        raise StorageError(
            f"database {path} cannot be checked: {error}",
            "check the disk (`df`, `dmesg`) and the file's permissions; nothing was moved or changed",
        ) from None
    return None if result == "ok" else result


CORRUPTION_CODES = {sqlite3.SQLITE_CORRUPT, sqlite3.SQLITE_NOTADB}


def _move_aside(path: Path, stamp: str) -> None:
    for suffix in ("", "-wal", "-shm"):
        source = Path(f"{path}{suffix}")
        if source.exists():
            shutil.move(source, f"{path}.corrupt-{stamp}{suffix}")


def open_or_move_aside(path: Path, now: datetime) -> None:
    """A corrupt database is moved aside (kept as evidence, never deleted) and a new one started.

    A corrupt log takes its ledger with it (the ledger's sequence numbers refer to it). A corrupt ledger alone is
    rebuilt from the log: every registration is then sent again, and the service answers the repeats with remark 14.
    """
    stamp = now.strftime("%Y%m%dT%H%M%SZ")
    ledger = ledger_path(path)
    for broken, moved, fix in (
        # The log takes its witnesses with it: the new log must not be judged against the old one's head.
        (path, (path, ledger, head_path(path)), "a new log was started; keep the old files as evidence and report it"),
        (
            ledger,
            (ledger,),
            "the delivery ledger is rebuilt from the log; registrations already delivered are "
            "sent again (remark 14 on those is expected)",
        ),
    ):
        problem = _corruption(broken)
        if problem is None:
            continue
        for file in moved:
            _move_aside(file, stamp)
        event(
            logger,
            "database_moved_aside",
            logging.CRITICAL,
            problem=problem,
            file=str(broken),
            kept_as=f"{broken}.corrupt-{stamp}",
            fix=fix,
        )
        return
