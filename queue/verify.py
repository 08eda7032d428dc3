"""The standalone verifier: signatures, hash chain and sequence continuity, on a live log or an export.

It needs only the records and the log's first public key, so an inspector can run it on any machine: a
`key_replaced` record (queue/keychain.py) hands the chain to the key it names, and is reported. It reports the
first bad sequence number and why; the caller decides how to show it.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import TextIO

from sitegate.errors import VerificationError
from sitegate.queue.keychain import KeyChain, KeyChange
from sitegate.queue.records import GENESIS_HASH, Kind, Record, canonical_json, digest
from sitegate.queue.signing import fingerprint, signature_valid

EXPORT_FORMAT = "sitegate-export/1"


@dataclass(frozen=True)
class VerifyReport:
    records: int
    last_seq: int
    last_hash: str
    public_key_fingerprint: str  # the key the log ends under
    hashes: dict[int, str] = field(default_factory=dict)  # the hash of each record asked for in `watch`
    keys: KeyChain | None = None  # the first key and every key change the chain went through

    @property
    def key_changes(self) -> tuple[KeyChange, ...]:
        return self.keys.changes if self.keys else ()


def check_record(record: Record, expected_seq: int, prev_hash: str, public_key_hex: str) -> str | None:
    """The reason this record breaks the log, or None when it is sound."""
    if record.seq != expected_seq:
        if record.seq > expected_seq:
            return f"sequence gap: record {expected_seq} is missing (next present is {record.seq})"
        return f"sequence out of order: {record.seq} found where {expected_seq} was expected"
    try:
        payload = json.loads(record.payload)
    except (ValueError, RecursionError):  # RecursionError: nested too deep for the parser
        return "payload is not valid JSON (altered)"
    if canonical_json(payload) != record.payload:
        return "payload is not in canonical form (altered)"
    if record.prev_hash != prev_hash:
        return "chain broken: prev_hash does not match the hash of the record before"
    message = record.signed_message()
    if digest(message) != record.hash:
        return "hash does not match the record's content (altered)"
    if not signature_valid(public_key_hex, message, record.signature):
        return "signature does not verify with the device key (altered or signed by another key)"
    return None


def verify(
    records: Iterable[Record],
    public_key_hex: str,
    progress: Callable[[int], None] = lambda n: None,
    watch: Iterable[int] = (),
) -> VerifyReport:
    """Check every record in order, from the log's first key on; raise VerificationError at the first bad one.

    watch: seqs whose verified hashes the caller wants back (the witnesses' checkpoints), read in the same pass."""
    expected, prev_hash, count, wanted, hashes = 1, GENESIS_HASH, 0, set(watch), {}
    key, changes = public_key_hex, []
    for record in records:
        change = _key_change(record, key) if record.kind == Kind.KEY_REPLACED and record.seq == expected else None
        reason = check_record(record, expected, prev_hash, change.new_public_key if change else key)
        if reason:
            bad_seq = expected if record.seq > expected else record.seq
            raise VerificationError(bad_seq, reason)
        if change:
            key = change.new_public_key
            changes.append(change)
        if record.seq in wanted:
            hashes[record.seq] = record.hash
        expected, prev_hash, count = expected + 1, record.hash, count + 1
        progress(1)
    keys = KeyChain(public_key_hex, tuple(changes))
    return VerifyReport(count, expected - 1, prev_hash, fingerprint(key), hashes, keys)


def _key_change(record: Record, current_key: str) -> KeyChange:
    """A key_replaced record read and checked against the chain so far (its signature is checked as any record's,
    with the new key it names)."""
    try:
        change = KeyChange.of(record)
    except (ValueError, TypeError, RecursionError) as error:
        raise VerificationError(record.seq, f"{error} (altered)") from None
    problem = change.problem(record, current_key)
    if problem:
        raise VerificationError(record.seq, problem)
    return change


def write_export(
    out: TextIO,
    records: Iterable[Record],
    public_key_hex: str,
    device_id: str,
    progress: Callable[[int], None] = lambda n: None,
    witnesses: Iterable[dict] = (),
) -> int:
    """JSON lines: a header with the public key (and what the device's witnesses held: the export's end is checked
    against them anywhere), then one record a line. The caller opens `out` (where, and how safely, is its choice)."""
    header = {
        "format": EXPORT_FORMAT,
        "device_id": device_id,
        "public_key": public_key_hex,
        "fingerprint": fingerprint(public_key_hex),
        "witnesses": list(witnesses),
    }
    out.write(canonical_json(header) + "\n")
    count = 0
    for record in records:
        out.write(canonical_json(record.as_dict()) + "\n")
        count += 1
        progress(1)
    return count


def read_export(path: Path) -> tuple[dict, Iterator[Record]]:
    """The header and a lazy iterator over the records of an export file."""
    handle = open(path, encoding="utf-8")  # noqa: SIM115 - closed by the generator below
    try:
        header = json.loads(handle.readline() or "null")
    except ValueError:
        header = None
    if not isinstance(header, dict) or header.get("format") != EXPORT_FORMAT or "public_key" not in header:
        handle.close()
        raise VerificationError(None, f"{path} is not a sitegate export (no {EXPORT_FORMAT} header line)")

    def records() -> Iterator[Record]:
        with handle:
            for number, line in enumerate(handle, start=2):
                try:
                    yield Record(**json.loads(line))
                except (ValueError, TypeError) as error:
                    raise VerificationError(None, f"line {number} of {path} is not a record: {error}") from None

    return header, records()
