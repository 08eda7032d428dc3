"""The mirror: the site's other gates' signed records, each verified before it is kept, in a file of its own.

`sitegate-site.db` sits beside the log and is never the log: the signed log holds only this gate's records.
A peer's record is kept only when its signature verifies with the peer's pinned public key (from the
configuration) and it extends that peer's hash chain; anything else is rejected, logged and counted, never used.
Receivers are idempotent on (device, seq): at-least-once delivery repeats records, and repeats change nothing.
The file also keeps what this gate's publisher has had acknowledged by the broker, so a restart resumes there.
"""

from __future__ import annotations

import dataclasses
import logging
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum
from pathlib import Path
from typing import TYPE_CHECKING

import sqlite_utils

from sitegate.clock.timefmt import format_utc, parse_utc
from sitegate.jsonlog import event
from sitegate.queue import database
from sitegate.queue.records import GENESIS_HASH, Kind, Record
from sitegate.queue.verify import check_record

if TYPE_CHECKING:
    from sitegate.config import Config
from sitegate.domain.registration import Direction

logger = logging.getLogger("sitegate.site.mirror")
REJECTED_KEPT = 1000  # the latest rejections kept with their reason; older ones are only counted
RECORD_COLUMNS = tuple(f.name for f in dataclasses.fields(Record))
_SELECT = f"SELECT device, {', '.join(RECORD_COLUMNS)} FROM mirror"


def _v1(db: sqlite_utils.Database) -> None:
    """Mirror schema version 1 (frozen once released)."""
    db.execute(
        "CREATE TABLE mirror (device TEXT NOT NULL, seq INTEGER NOT NULL, kind TEXT NOT NULL, payload TEXT NOT NULL, "
        "wall_utc TEXT NOT NULL, monotonic_ns INTEGER NOT NULL, boot_id TEXT NOT NULL, clock_state TEXT NOT NULL, "
        "clock_offset_us INTEGER, prev_hash TEXT NOT NULL, hash TEXT NOT NULL, signature TEXT NOT NULL, "
        "received_utc TEXT NOT NULL, PRIMARY KEY (device, seq)) WITHOUT ROWID"
    )
    db.execute("CREATE INDEX mirror_kind_wall ON mirror (kind, wall_utc)")
    db.execute(
        "CREATE TABLE peers (device TEXT PRIMARY KEY, next_seq INTEGER NOT NULL, last_hash TEXT NOT NULL, "
        "anchored_at INTEGER NOT NULL, heard_utc TEXT, highest_seen INTEGER NOT NULL DEFAULT 0)"
    )
    db.execute(
        "CREATE TABLE rejected (id INTEGER PRIMARY KEY, device TEXT, seq INTEGER, reason TEXT NOT NULL, "
        "received_utc TEXT NOT NULL)"
    )
    db.execute("CREATE TABLE bus_state (key TEXT PRIMARY KEY, value TEXT NOT NULL)")


MIGRATIONS = [_v1]


class Verdict(StrEnum):
    STORED = "stored"
    DUPLICATE = "duplicate"
    GAP = "gap"  # a later record of a peer whose earlier ones are missing: asked for again, not kept yet
    REJECTED = "rejected"
    OWN = "own"  # this gate's own record, echoed by the broker or relayed by a peer: the log already has it


@dataclass(frozen=True)
class Accepted:
    verdict: Verdict
    reason: str = ""
    next_seq: int = 0  # on a gap: the seq to ask for


@dataclass(frozen=True)
class PeerState:
    device: str
    next_seq: int  # the first seq not mirrored yet
    heard_utc: str | None
    highest_seen: int  # the highest seq seen (verified signature), even if not yet mirrored: gap = highest - next + 1

    @property
    def missing(self) -> int:
        return max(0, self.highest_seen - self.next_seq + 1)


def unusable(record: Record) -> str | None:
    """Why a peer's signed registration cannot feed the site's decisions (None: it can). Its signature proves who
    made it, not that it has the fields they read: a peer's bug (or a break-in there) must not stop this gate."""
    if record.kind != Kind.REGISTRATION:
        return None
    try:
        parse_utc(record.wall_utc)
        data = record.data
        worker = data["worker"]
        texts = (worker["kind"], worker["number"], data["employer"], worker.get("last_name", ""),
                 worker.get("first_name", ""), data.get("reader", ""), data.get("badge_uid", ""))  # fmt: skip
        usable = data["direction"] in tuple(Direction) and all(isinstance(text, str) for text in texts)
    except (AttributeError, KeyError, TypeError, ValueError):
        usable = False
    return None if usable else "a registration without the worker, employer, direction or time the site reads"


def connect(path: Path) -> sqlite_utils.Database:
    """synchronous=NORMAL, unlike the log: nothing here is the only copy. A power cut may take back the last
    commits (WAL keeps the file consistent): the mirror then asks its peers again, the publisher resends from an
    older acknowledged seq (receivers are idempotent). No fsync of ours competes with the gate's own appends."""
    db = database.connect_alone(path, MIGRATIONS)
    db.execute("PRAGMA synchronous=NORMAL")
    return db


class Mirror:
    """The mirror on one connection, used by one thread (the bus's); readers open their own."""

    def __init__(self, db: sqlite_utils.Database, own_device: str, peers: dict[str, str]) -> None:
        self.db = db
        self.own_device = own_device
        self.peers = peers  # device id -> pinned Ed25519 public key (hex)

    # Writing: only the bus thread.

    def accept(self, origin: str, record: Record, now: datetime, anchor: bool = False) -> Accepted:
        """Verify one peer record and keep it if it extends the peer's chain. anchor: the sender offers it as the
        start of a run (its recent window); only a peer with nothing mirrored yet may start its chain there."""
        if origin == self.own_device:
            return Accepted(Verdict.OWN)
        public_key = self.peers.get(origin)
        if public_key is None:
            return self._reject(origin, record, now, f"{origin!r} is not a configured peer (no pinned key)")
        stored = self._stored(origin, record.seq)
        if stored is not None:
            if stored == record:  # every field: an edited payload sent with the original's hash is not a repeat
                return Accepted(Verdict.DUPLICATE)
            return self._reject(origin, record, now, "differs from the record already mirrored at this seq")
        state = self._state(origin)
        if record.seq < state.next_seq:
            return Accepted(Verdict.DUPLICATE, "older than the start of this peer's mirrored run")
        empty = not self._has_any(origin)
        if empty and (anchor or record.seq == 1):
            expected, prev_hash = record.seq, record.prev_hash if record.seq > 1 else GENESIS_HASH
        else:
            expected, prev_hash = state.next_seq, self._last_hash(origin)
        if record.seq > expected:
            reason = check_record(record, record.seq, record.prev_hash, public_key)  # its own signature still holds?
            if reason:
                return self._reject(origin, record, now, reason)
            self._seen(origin, record.seq, now)
            return Accepted(Verdict.GAP, next_seq=expected)
        reason = check_record(record, expected, prev_hash, public_key) or unusable(record)
        if reason:
            return self._reject(origin, record, now, reason)
        with database.immediate(self.db):
            self.db.execute(
                f"INSERT INTO mirror (device, {', '.join(RECORD_COLUMNS)}, received_utc) "
                f"VALUES ({', '.join('?' * (len(RECORD_COLUMNS) + 2))})",
                [origin, *(getattr(record, c) for c in RECORD_COLUMNS), format_utc(now)],
            )
            self.db.execute(
                "INSERT INTO peers (device, next_seq, last_hash, anchored_at, heard_utc, highest_seen) "
                "VALUES (?, ?, ?, ?, ?, ?) ON CONFLICT (device) DO UPDATE SET next_seq = excluded.next_seq, "
                "last_hash = excluded.last_hash, heard_utc = excluded.heard_utc, "
                "highest_seen = max(highest_seen, excluded.highest_seen)",
                [origin, record.seq + 1, record.hash, record.seq, format_utc(now), record.seq],
            )
        return Accepted(Verdict.STORED)

    def _seen(self, origin: str, seq: int, now: datetime) -> None:
        with database.immediate(self.db):
            self.db.execute(
                "INSERT INTO peers (device, next_seq, last_hash, anchored_at, heard_utc, highest_seen) "
                "VALUES (?, 1, ?, 0, ?, ?) ON CONFLICT (device) DO UPDATE SET heard_utc = excluded.heard_utc, "
                "highest_seen = max(highest_seen, excluded.highest_seen)",
                [origin, GENESIS_HASH, format_utc(now), seq],
            )

    def heard(self, device: str, now: datetime) -> None:
        """A peer said it is alive (its health message): its records here are as fresh as it is quiet."""
        if device in self.peers:
            self._seen(device, 0, now)

    def _rejected(self, device: str, seq: int | None, reason: str, now: datetime) -> None:
        """Counted for ever (ids only grow), kept with its reason among the latest REJECTED_KEPT only: a flood of
        garbage from the bus must not fill the disk the log needs."""
        with database.immediate(self.db):
            self.db.execute(
                "INSERT INTO rejected (device, seq, reason, received_utc) VALUES (?, ?, ?, ?)",
                [device, seq, reason, format_utc(now)],
            )
            self.db.execute("DELETE FROM rejected WHERE id <= (SELECT max(id) FROM rejected) - ?", [REJECTED_KEPT])

    def _reject(self, origin: str, record: Record, now: datetime, reason: str) -> Accepted:
        self._rejected(origin, record.seq, reason, now)
        event(logger, "bus_record_rejected", logging.ERROR, device=origin, seq=record.seq, reason=reason)
        return Accepted(Verdict.REJECTED, reason)

    def reject_message(self, sender: str, reason: str, now: datetime) -> None:
        """A message that is not a record at all (bad JSON, missing fields): counted like a bad record."""
        self._rejected(sender, None, reason, now)
        event(logger, "bus_message_rejected", logging.ERROR, sender=sender, reason=reason)

    def prune(self, before: datetime) -> int:
        """Forget the peers' records made before `before`, except each peer's newest (its chain goes on from the
        peers table; a mirror never empties, so a relay's later start cannot re-anchor it). The decisions and the
        day's listing read less far back; each gate's signed log stays the record of its own. Rows deleted."""
        with database.immediate(self.db):
            deleted = self.db.execute(
                "DELETE FROM mirror WHERE wall_utc < ? AND seq < (SELECT max(seq) FROM mirror AS newest "
                "WHERE newest.device = mirror.device)",
                [format_utc(before)],
            ).rowcount
        if deleted:
            event(logger, "mirror_pruned", rows=deleted, before_utc=format_utc(before))
        return deleted

    def size(self) -> tuple[int, int]:
        """(records kept, bytes of the file's pages in use)."""
        rows = self.db.execute("SELECT count(*) FROM mirror").fetchone()[0]
        pages, free, page_size = (self.db.execute(f"PRAGMA {name}").fetchone()[0] for name in
                                  ("page_count", "freelist_count", "page_size"))  # fmt: skip
        return rows, (pages - free) * page_size

    def set_state(self, key: str, value: str) -> None:
        with database.immediate(self.db):
            self.db.execute("INSERT OR REPLACE INTO bus_state (key, value) VALUES (?, ?)", [key, value])

    # Reading: any connection.

    def state(self, key: str) -> str | None:
        row = self.db.execute("SELECT value FROM bus_state WHERE key = ?", [key]).fetchone()
        return row[0] if row else None

    def _state(self, device: str) -> PeerState:
        row = self.db.execute(
            "SELECT device, next_seq, heard_utc, highest_seen FROM peers WHERE device = ?", [device]
        ).fetchone()
        return PeerState(*row) if row else PeerState(device, 1, None, 0)

    def _has_any(self, device: str) -> bool:
        return self.db.execute("SELECT 1 FROM mirror WHERE device = ? LIMIT 1", [device]).fetchone() is not None

    def _last_hash(self, device: str) -> str:
        row = self.db.execute("SELECT last_hash FROM peers WHERE device = ?", [device]).fetchone()
        return row[0] if row else GENESIS_HASH

    def _stored(self, device: str, seq: int) -> Record | None:
        return next(self._rows("device = ? AND seq = ?", [device, seq]), (None, None))[1]

    def peer_state(self, device: str) -> PeerState:
        return self._state(device)

    def next_seq(self, device: str) -> int:
        return self._state(device).next_seq

    def peer_states(self) -> list[PeerState]:
        """Every configured peer, heard or not."""
        return [self._state(device) for device in sorted(self.peers)]

    def rejected_count(self) -> int:
        """Every rejection since the mirror was made, also those no longer kept (the newest id: ids only grow)."""
        return self.db.execute("SELECT coalesce(max(id), 0) FROM rejected").fetchone()[0]

    def rejected_since(self, since_utc: str, acknowledged: tuple[int, str] = (0, "")) -> int:
        """Rejections received since then (a recent rate: one old forged message must not warn for ever) and after
        the acknowledged one (its id, or its time: a mirror file made again starts its ids again)."""
        return self.db.execute(
            "SELECT count(*) FROM rejected WHERE received_utc >= ? AND (id > ? OR received_utc > ?)",
            [since_utc, *acknowledged],
        ).fetchone()[0]

    def rejected(self, limit: int = 20) -> list[dict]:
        rows = self.db.execute(
            "SELECT id, device, seq, reason, received_utc FROM rejected ORDER BY id DESC LIMIT ?", [limit]
        ).fetchall()
        return [dict(zip(("id", "device", "seq", "reason", "received_utc"), row, strict=True)) for row in rows]

    def _rows(self, where: str, params: list, limit: int = -1) -> Iterator[tuple[str, Record]]:
        for row in self.db.execute(f"{_SELECT} WHERE {where} ORDER BY device, seq LIMIT ?", [*params, limit]):
            yield row[0], Record(*row[1:])

    def registrations_since(self, wall_utc: str) -> Iterator[tuple[str, Record]]:
        """(device, record) of every mirrored registration made at or after `wall_utc`: presence's input."""
        return self._rows("kind = ? AND wall_utc >= ?", [Kind.REGISTRATION, wall_utc])

    def records_of(self, device: str, start: int, since_utc: str = "", limit: int = -1) -> Iterator[Record]:
        """One peer's mirrored records from `start` made at or after `since_utc`, at most `limit` (a catch-up
        answer relays them, one page at a time)."""
        rows = self._rows("device = ? AND seq >= ? AND wall_utc >= ?", [device, start, since_utc], limit)
        return (record for _, record in rows)

    def newest_wall(self, device: str) -> str | None:
        return self.db.execute("SELECT max(wall_utc) FROM mirror WHERE device = ?", [device]).fetchone()[0]


def open_mirror(config: Config) -> Mirror:
    """This gate's mirror of its peers, as the configuration places and trusts it."""
    return Mirror(connect(config.mirror_path), config.device_id, config.bus.peer_keys)
