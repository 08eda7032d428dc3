"""Signed checkpoints of the log's head, and the witnesses that keep them outside the log's file.

A hash chain proves every record up to its last one, never that the last one is the real end: deleting the newest
records, or putting back an older copy of the file, leaves a valid, shorter chain. So the device signs its head
(seq, hash, time) now and then and hands each checkpoint to witnesses an attacker must also find and roll back:
the delivery ledger (its own file), a small head file, the journal, the paper listing's QR code (printed, out of
reach) and the registrations the service accepted. The log must extend every witness: a witness ahead of the log's
end means truncation, a witness whose hash differs from the record at its seq means the log was replaced.

A checkpoint is not a record: taking one writes nothing to the log's file, so the badge path never pays for it.
"""

from __future__ import annotations

import json
import logging
import os
import tempfile
import threading
from collections.abc import Callable, Iterable
from dataclasses import asdict, dataclass, fields, replace
from enum import StrEnum
from pathlib import Path

import sqlite_utils

from sitegate.clock.timefmt import format_utc
from sitegate.errors import SitegateError
from sitegate.jsonlog import event
from sitegate.queue import database, delivery
from sitegate.queue.keychain import KeyChain
from sitegate.queue.log import LogView, RegistrationLog
from sitegate.queue.records import Kind, Record, canonical_json
from sitegate.queue.signing import DeviceKey, fingerprint, signature_valid

logger = logging.getLogger("sitegate.checkpoints")

CHECKPOINT_FORMAT = 1
MIN_PAPER_HASH = 16  # hex digits of the hash the listing's QR code carries (64 bits)
QR_PREFIX = "sitegate:"


class Reason(StrEnum):
    """Why a checkpoint was taken (signed with it)."""

    START = "start"
    PERIODIC = "periodic"
    OUTAGE = "outage"  # an outage episode changed state
    LISTING = "listing"  # a paper listing was printed
    STOP = "stop"


class Holds(StrEnum):
    """What a witness holds about the log: a signed checkpoint, a registration the service accepted, or registrations
    the ledger set aside because the log no longer holds them (queue/delivery.py). Exported: never rename."""

    CHECKPOINT = "checkpoint"
    DELIVERED = "delivered"
    LOST = "lost"


class Judgement(StrEnum):
    """A witness's verdict on the log. ACKNOWLEDGED: a broken verdict a technician has looked into (a signed record).
    Kept in signed records: never rename."""

    EXTENDS = "extends"
    MISSING = "missing"
    TRUNCATED = "truncated"
    REWRITTEN = "rewritten"
    ACKNOWLEDGED = "acknowledged"


_HEX = frozenset("0123456789abcdef")


def _hex(value: object, digits: int | None = None) -> bool:
    return isinstance(value, str) and bool(value) and set(value) <= _HEX and digits in (None, len(value))


def _seq(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and value >= 0


@dataclass(frozen=True)
class Checkpoint:
    """The device's signed statement: at wall_utc the log ended at record `seq`, whose hash was `hash`."""

    seq: int
    hash: str
    wall_utc: str
    reason: str  # a Reason
    signature: str = ""

    def message(self) -> bytes:
        """The signed bytes: canonical JSON, with a key no record's signed message has (no record can pass for it)."""
        fields = {"checkpoint": CHECKPOINT_FORMAT, "seq": self.seq, "hash": self.hash, "wall_utc": self.wall_utc}
        return canonical_json({**fields, "reason": self.reason}).encode("utf-8")

    def signed_by(self, public_key_hex: str) -> bool:
        return signature_valid(public_key_hex, self.message(), self.signature)

    @classmethod
    def from_dict(cls, data: object) -> Checkpoint:
        """A checkpoint read back from a file: every field present and of its type, else ValueError (damaged)."""
        if not isinstance(data, dict) or set(data) != {"seq", "hash", "wall_utc", "reason", "signature"}:
            raise ValueError("not a checkpoint: seq, hash, wall_utc, reason and signature expected")
        if not (_seq(data["seq"]) and data["seq"] >= 1 and _hex(data["hash"], 64) and _hex(data["signature"], 128)):
            raise ValueError("not a checkpoint: seq, hash or signature of the wrong form")
        if not (isinstance(data["wall_utc"], str) and isinstance(data["reason"], str)):
            raise ValueError("not a checkpoint: wall_utc and reason must be text")
        return cls(**data)

    def as_dict(self) -> dict:
        return asdict(self)


@dataclass(frozen=True)
class Witness:
    """What one witness holds about the log's head; `problem` set when it could not be read."""

    name: str  # ledger, head file, printed listing, given checkpoint, "ledger (in the export)", ...
    holds: Holds = Holds.CHECKPOINT
    seq: int = 0
    hash: str | None = None  # the full hash, a paper prefix, or None when the witness holds a seq only
    wall_utc: str | None = None
    signature: str | None = None  # a checkpoint's; None for a paper prefix or a delivered seq
    reason: str = ""
    problem: str | None = None

    @classmethod
    def of(cls, name: str, checkpoint: Checkpoint) -> Witness:
        return cls(name, Holds.CHECKPOINT, **checkpoint.as_dict())

    @classmethod
    def from_dict(cls, data: object) -> Witness:
        """A witness from an export's header: its fields and their types, else ValueError."""
        names = {f.name for f in fields(cls)}
        if not isinstance(data, dict) or not set(data) <= names or "name" not in data:
            raise ValueError(f"a witness has the fields {sorted(names)}, not {data!r}")
        witness = cls(**data)
        texts = (witness.name, witness.reason)
        optional = (witness.wall_utc, witness.problem)
        if (
            not all(isinstance(t, str) for t in texts)
            or not all(t is None or isinstance(t, str) for t in optional)
            or witness.holds not in tuple(Holds)
            or not _seq(witness.seq)
            or not (witness.hash is None or _hex(witness.hash))
            or not (witness.signature is None or _hex(witness.signature, 128))
        ):
            raise ValueError(f"a witness of the wrong form: {data!r}")
        return replace(witness, holds=Holds(witness.holds))

    def as_dict(self) -> dict:
        return asdict(self)


@dataclass(frozen=True)
class WitnessVerdict:
    witness: Witness
    state: Judgement
    text: str

    @property
    def broken(self) -> bool:
        return self.state in (Judgement.TRUNCATED, Judgement.REWRITTEN)

    def as_dict(self) -> dict:
        return {
            "witness": self.witness.name,
            "holds": self.witness.holds,
            "state": self.state,
            "text": self.text,
            "seq": self.witness.seq,
        }

    @property
    def finding(self) -> dict:
        """What a signed record keeps of a verdict, and what an acknowledgement matches (not the state: a log
        cut back and grown again turns "truncated" into "rewritten" for the same witness)."""
        return {"witness": self.witness.name, "holds": self.witness.holds, "seq": self.witness.seq}


def _held(witness: Witness) -> str:
    if witness.holds == Holds.DELIVERED:
        return f"seq {witness.seq} delivered"
    if witness.holds == Holds.LOST:
        return f"registrations up to seq {witness.seq} that the log lost (set aside on {witness.wall_utc})"
    return f"checkpoint {witness.seq}" + (f" of {witness.wall_utc[:10]}" if witness.wall_utc else "")


def judge(witness: Witness, log_end: int, hash_at: Callable[[int], str | None], keys: KeyChain) -> WitnessVerdict:
    """Does the log (ending at `log_end`, with `hash_at(seq)` the hash of its record seq) extend this witness?
    A checkpoint must be signed by the key that signed the record it names (`keys`)."""
    if witness.problem:
        return WitnessVerdict(witness, Judgement.MISSING, f"{witness.name}: {witness.problem}")
    if witness.holds == Holds.LOST:  # the ledger's own proof that registrations disappeared from the log
        return WitnessVerdict(witness, Judgement.TRUNCATED, f"TRUNCATED: the {witness.name} holds {_held(witness)}")
    if witness.signature is not None and not Checkpoint(
        witness.seq, witness.hash or "", witness.wall_utc or "", witness.reason, witness.signature
    ).signed_by(keys.at(witness.seq)):
        text = f"REWRITTEN: the {witness.name} holds a checkpoint {witness.seq} not signed by the device key (forged)"
        return WitnessVerdict(witness, Judgement.REWRITTEN, text)
    if witness.seq > log_end:
        return WitnessVerdict(
            witness,
            Judgement.TRUNCATED,
            f"TRUNCATED: the {witness.name} holds {_held(witness)}, the log ends at {log_end}",
        )
    found = hash_at(witness.seq) if witness.hash and witness.seq else None
    if witness.hash and witness.seq and not (found or "").startswith(witness.hash):
        text = (
            f"REWRITTEN: the {witness.name} holds {_held(witness)} with hash {witness.hash[:16]}…, the log's record "
            f"{witness.seq} has {(found or 'none')[:16]}…: the log was replaced or rewritten"
        )
        return WitnessVerdict(witness, Judgement.REWRITTEN, text)
    return WitnessVerdict(witness, Judgement.EXTENDS, f"extends {_held(witness)} ({witness.name})")


def judge_all(
    witnesses: Iterable[Witness], log_end: int, hash_at: Callable[[int], str | None], keys: KeyChain
) -> list[WitnessVerdict]:
    return [judge(witness, log_end, hash_at, keys) for witness in witnesses]


def parse(text: str) -> tuple[Witness, str | None, str | None]:
    """A checkpoint given by hand: `SEQ:HASH`, or the listing's QR text `sitegate:DEVICE:SEQ:HASH16:FINGERPRINT`.

    Returns the witness, and the gate's device id and key fingerprint the QR names (None for SEQ:HASH)."""
    text = text.strip()
    if text.startswith(QR_PREFIX):
        parts = text.split(":", 4)
        name, fields_, device = "printed listing", parts[2:4], parts[1]
        key = parts[4] if len(parts) == 5 else None
    else:
        name, fields_, device, key = "given checkpoint", text.split(":"), None, None
    fix = "copy it again: SEQ:HASH (a seq, then at least 16 hex digits of its hash) or the listing's QR text"
    try:
        seq, hash_text = int(fields_[0]), fields_[1].lower()
        int(hash_text, 16)
    except (ValueError, IndexError):
        raise SitegateError(f"{text!r} is neither SEQ:HASH nor a listing's QR text", fix) from None
    if len(fields_) != 2 or len(hash_text) < MIN_PAPER_HASH or seq < 1:
        raise SitegateError(f"{text!r}: a checkpoint needs a seq and at least {MIN_PAPER_HASH} hex digits", fix)
    return Witness(name, Holds.CHECKPOINT, seq, hash_text), device, key


def latest_in_ledger(db: sqlite_utils.Database) -> Checkpoint | None:
    """The ledger's furthest checkpoint (from a connection that sees the ledger, attached or its own)."""
    row = db.execute(
        "SELECT seq, hash, wall_utc, reason, signature FROM checkpoints ORDER BY seq DESC, rowid DESC LIMIT 1"
    ).fetchone()
    return Checkpoint(*row) if row else None


def read_head_file(path: Path) -> Checkpoint | None:
    """The head file's checkpoint; None when there is none. A damaged file raises ValueError."""
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        return None
    except (OSError, UnicodeDecodeError) as error:  # json.JSONDecodeError is a ValueError already
        raise ValueError(str(error)) from None
    return Checkpoint.from_dict(data)


def _ledger_witnesses(db: sqlite_utils.Database) -> list[Witness]:
    """The newest registration the service accepted (the service holds it, so the log must too, with that hash),
    and the newest row the ledger set aside because the log lost it (queue/delivery.py): lasting proof of a cut."""
    found = []
    delivered = delivery.newest_delivered(db)
    if delivered:
        found.append(Witness("ledger", Holds.DELIVERED, *delivered))
    lost = delivery.newest_superseded(db)
    if lost:
        found.append(Witness("ledger", Holds.LOST, lost[0], wall_utc=lost[1][:10]))
    return found


def witnesses(db: sqlite_utils.Database, head_file: Path) -> list[Witness]:
    """Every witness the device can reach, from a connection that sees the log and the ledger."""
    found = []
    in_ledger = latest_in_ledger(db)
    if in_ledger:
        found.append(Witness.of("ledger", in_ledger))
    try:
        in_file = read_head_file(head_file)
        if in_file:
            found.append(Witness.of("head file", in_file))
        elif in_ledger:  # a checkpoint was taken, so the file should be there
            found.append(Witness("head file", problem=f"{head_file} is missing (deleted?); the next checkpoint "
                                 "writes it again"))  # fmt: skip
    except ValueError as error:
        found.append(Witness("head file", problem=f"{head_file} cannot be read: {error}"))
    found += _ledger_witnesses(db)
    return found


def acknowledge(verdicts: list[WitnessVerdict], acknowledgement: Record | None) -> list[WitnessVerdict]:
    """Broken verdicts the newest signed acknowledgement names stay visible, as acknowledged, and no longer stop
    checkpoints: a technician looked into them (`sitegate verify --acknowledge`), and the log says who and when."""
    if acknowledgement is None:
        return verdicts
    named, by = acknowledgement.data["findings"], acknowledgement.data["by"]
    note = f" (acknowledged by {by} on {acknowledgement.wall_utc[:10]}, record {acknowledgement.seq})"
    return [
        WitnessVerdict(v.witness, Judgement.ACKNOWLEDGED, v.text + note) if v.broken and v.finding in named else v
        for v in verdicts
    ]


def unacknowledged(log: LogView) -> list[Record]:
    """The log's own records of witness findings (the daemon's) made since the newest acknowledgement: a head file
    deleted and written again, or a cut since repaired, stays visible until someone looks into it."""
    acknowledged = next(log.newest(Kind.WITNESS_ACK), None)
    found = []
    for record in log.newest(Kind.WITNESS_MISMATCH):
        if acknowledged is not None and record.seq < acknowledged.seq:
            break
        found.append(record)
    return found


def check(
    log: LogView, head_file: Path, keys: KeyChain | None = None, also: Iterable[Witness] = ()
) -> list[WitnessVerdict]:
    """The live log against every witness the device can reach (status, the daemon, verify). keys: the log's, when
    the caller holds them already (the daemon: they change only while it is stopped); else read from the log.
    also: witnesses kept off the device that the caller holds (the daemon: the broker's retained checkpoint)."""
    last = log.last()
    keys = keys or KeyChain.of_log(log)
    if keys is None:  # no key has signed anything yet: nothing to witness
        return []

    def hash_at(seq: int) -> str | None:
        record = log.get(seq)
        return record.hash if record else None

    verdicts = judge_all([*witnesses(log.db, head_file), *also], last.seq if last else 0, hash_at, keys)
    return acknowledge(verdicts, next(log.newest(Kind.WITNESS_ACK), None))


def _write_durably(path: Path, text: str) -> None:
    """Write, fsync, rename over, fsync the folder: the file holds the old checkpoint or the new one, never half
    (and no partial file is left behind when the disk is full)."""
    descriptor, partial = tempfile.mkstemp(prefix=path.name, suffix=".new", dir=path.parent)  # one per writer
    try:
        with os.fdopen(descriptor, "w", encoding="utf-8") as handle:
            handle.write(text)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(partial, path)
    except BaseException:
        Path(partial).unlink(missing_ok=True)
        raise
    folder = os.open(path.parent, os.O_RDONLY)
    try:
        os.fsync(folder)
    finally:
        os.close(folder)


def take(
    log: LogView, ledger: sqlite_utils.Database, key: DeviceKey, head_file: Path, now_utc: str, reason: str
) -> Checkpoint | None:
    """Sign the log's head and hand it to the ledger, the head file and the journal; None for an empty log.

    The caller checks first that the log extends its witnesses: a checkpoint of a truncated log would overwrite
    the head file, the evidence."""
    last = log.last()
    if last is None:
        return None
    unsigned = Checkpoint(last.seq, last.hash, now_utc, reason)
    checkpoint = Checkpoint(last.seq, last.hash, now_utc, reason, key.sign(unsigned.message()))
    with database.immediate(ledger):
        ledger.execute(
            "INSERT INTO checkpoints (seq, hash, wall_utc, reason, signature) VALUES (?, ?, ?, ?, ?)",
            [checkpoint.seq, checkpoint.hash, checkpoint.wall_utc, checkpoint.reason, checkpoint.signature],
        )
    _write_durably(head_file, canonical_json(checkpoint.as_dict()) + "\n")
    event(logger, "checkpoint", **checkpoint.as_dict(), key=fingerprint(key.public_key_hex))
    return checkpoint


def checkpoint(
    log: LogView,
    ledger: sqlite_utils.Database,
    key: DeviceKey,
    head_file: Path,
    now_utc: str,
    reason: str,
    only_if_moved: bool = False,
    keys: KeyChain | None = None,
    also: Iterable[Witness] = (),
) -> tuple[Checkpoint | None, list[WitnessVerdict]]:
    """Compare the head with its witnesses, then checkpoint it, unless a witness says the log was cut or replaced:
    those witnesses are then the evidence, and are left as they are. Returns the checkpoint (or None) and the
    verdicts. only_if_moved: skip when the ledger already holds this head and every witness is there (periodic).
    keys, also: see `check`."""
    verdicts = check(log, head_file, keys, also)
    if any(verdict.broken for verdict in verdicts):
        return None, verdicts
    last, held = log.last(), latest_in_ledger(ledger)
    unchanged = last is not None and held is not None and (held.seq, held.hash) == (last.seq, last.hash)
    if only_if_moved and unchanged and all(verdict.state == Judgement.EXTENDS for verdict in verdicts):
        return None, verdicts
    return take(log, ledger, key, head_file, now_utc, reason), verdicts


def record_findings(log: RegistrationLog, verdicts: list[WitnessVerdict]) -> bool:
    """A broken witness is critical, a missing one a warning: both go to the journal and, once per change, to the
    log (a head file deleted and written again at the next start leaves a signed trace). True when one is broken:
    the caller shows the fault."""
    noted = [v for v in verdicts if v.broken or v.state == Judgement.MISSING]
    for verdict in noted:
        level, name = (
            (logging.CRITICAL, "log_witness_mismatch") if verdict.broken else (logging.WARNING, "witness_missing")
        )
        event(logger, name, level, witness=verdict.witness.name, problem=verdict.text)
    if not noted:
        return False
    findings = [{**v.finding, "state": v.state} for v in noted]
    recorded = next(log.newest(Kind.WITNESS_MISMATCH), None)
    if recorded is None or recorded.data["findings"] != findings:  # once per discrepancy, not every heartbeat
        last = log.last()
        payload = {"findings": findings, "texts": [v.text for v in noted], "log_end": last.seq if last else 0}
        try:
            log.append(Kind.WITNESS_MISMATCH, payload)
        except SitegateError as error:  # a full disk must not stop the heartbeat; the journal has it
            event(logger, "witness_mismatch_not_recorded", logging.ERROR, problem=error.problem, fix=error.fix)
    return any(verdict.broken for verdict in noted)


class Checkpointer:
    """The running daemon's checkpoints: its own connections (never the gate's), one checkpoint at a time from any
    thread, and the witness the site bus brings (this gate's checkpoint as the broker or a peer holds it).

    fault: called when a witness is broken or a checkpoint fails (the gate shows the fault and keeps registering)."""

    def __init__(
        self, log: RegistrationLog, ledger: sqlite_utils.Database, head_file: Path, fault: Callable[[], None]
    ) -> None:
        self.log = log
        self.ledger = ledger
        self.head_file = head_file
        self.fault = fault
        self.keys = KeyChain.of_log(log)  # a key changes only while the daemon is stopped
        self.lock = threading.Lock()
        self.bus_witness: Witness | None = None

    def checkpoint(self, reason: Reason) -> None:
        """Compare the log's head with its witnesses and checkpoint it; when the log no longer extends them, raise
        the alarm (journal, fault, a signed record of it in the log) and keep registering. Nothing here may stop
        the daemon: a damaged witness or a full disk is logged with its fix and the gate goes on."""
        with self.lock:
            try:
                _, verdicts = checkpoint(
                    self.log,
                    self.ledger,
                    self.log.key,
                    self.head_file,
                    format_utc(self.log.clock.now()),
                    reason,
                    reason == Reason.PERIODIC,
                    self.keys,
                    [self.bus_witness] if self.bus_witness else [],
                )
                if record_findings(self.log, verdicts):
                    self.fault()
            except Exception as error:  # noqa: BLE001 - the heartbeat, the start and the stop must survive it
                problem = getattr(error, "problem", None) or f"{type(error).__name__}: {error}"
                fix = getattr(error, "fix", None) or "check free disk (`sitegate status`) and `sitegate verify`"
                event(logger, "checkpoint_failed", logging.ERROR, reason=reason, problem=problem, fix=fix)
                self.fault()

    def held_elsewhere(self, held: Checkpoint, held_by: str) -> None:
        """This gate's checkpoint as the broker (retained) or a peer holds it: a witness a rollback of the data
        directory cannot reach. The highest seen counts; the log is judged against it at once. One this gate did not
        sign is no evidence of anything but of who sent it (anyone with a peer's password): said, never judged."""
        if not held.signed_by(self.keys.at(held.seq)):
            event(logger, "bus_checkpoint_forged", logging.ERROR, held_by=held_by, seq=held.seq)
            return
        if self.bus_witness is None or held.seq > self.bus_witness.seq:
            self.bus_witness = Witness.of(held_by, held)
            self.checkpoint(Reason.PERIODIC)
