"""One signed record of the log, and the canonical encoding its hash and signature cover.

The encoding is JSON with sorted keys, no spaces, UTF-8 and integers only (no floats: their text form is not
canonical across languages), so anyone can re-derive it from an export and check it.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import asdict, dataclass, fields
from enum import StrEnum
from typing import Any

FORMAT_VERSION = 1
GENESIS_HASH = "0" * 64


class Kind(StrEnum):
    """What a record is. The values are stored in signed records: never rename them."""

    REGISTRATION = "registration"
    UNKNOWN_BADGE = "unknown_badge"
    CLOCK = "clock"
    CLOCK_CORRECTION = "clock_correction"
    OUTAGE = "outage"
    OUTAGE_REFERENCE = "outage_reference"
    PAPER_LISTING = "paper_listing"
    WITNESS_MISMATCH = "witness_mismatch"  # the log does not extend a checkpoint or delivery kept elsewhere
    WITNESS_ACK = "witness_acknowledged"  # a technician looked into the witness findings it names
    ROSTER_IMPORT = "roster_import"  # who replaced the roster, with how many workers, from which file (its hash)
    COMMISSIONING = "commissioning"  # a `sitegate doctor` run: every step's result, and who ran it
    KEY_REPLACED = "key_replaced"  # a technician started a new device key (signed by it): the chain goes on under it
    BUS_REJECTIONS_ACK = "bus_rejections_acknowledged"  # a technician looked into the bus messages it names


_CANONICAL = json.JSONEncoder(sort_keys=True, separators=(",", ":"), ensure_ascii=False, allow_nan=False)


def canonical_json(value: Any) -> str:
    return _CANONICAL.encode(value)  # one encoder, made once: json.dumps builds one per call with these options


@dataclass(frozen=True)
class Record:
    seq: int
    kind: str
    payload: str  # canonical JSON text of the payload object
    wall_utc: str
    monotonic_ns: int
    boot_id: str
    clock_state: str
    clock_offset_us: int | None
    prev_hash: str
    hash: str
    signature: str

    def signed_message(self) -> bytes:
        values = [getattr(self, name) for name in SIGNED_FIELDS]
        values[SIGNED_FIELDS.index("payload")] = json.loads(self.payload)  # signed as an object, not as text
        return signed_message(*values)

    @property
    def data(self) -> dict:
        return json.loads(self.payload)

    def as_dict(self) -> dict:
        return asdict(self)


SIGNED_FIELDS = tuple(field.name for field in fields(Record))[:-2]  # all but the hash and the signature


_PAYLOAD_SLOT = "\x00payload\x00"  # no other signed field can hold a NUL
_PAYLOAD_SLOT_JSON = canonical_json(_PAYLOAD_SLOT)


def signed_message(*values: Any, payload_text: str | None = None) -> bytes:
    """The exact bytes hashed and signed for one record: its signed fields in SIGNED_FIELDS order (the payload
    as an object), plus the format version.

    payload_text: the payload's canonical JSON when the caller already has it (an append): spliced in, so the
    badge path encodes the payload once; the bytes are the same (tests/test_log.py)."""
    fields = {"v": FORMAT_VERSION, **dict(zip(SIGNED_FIELDS, values, strict=True))}
    if payload_text is None:
        return canonical_json(fields).encode("utf-8")
    fields["payload"] = _PAYLOAD_SLOT
    return canonical_json(fields).replace(_PAYLOAD_SLOT_JSON, payload_text, 1).encode("utf-8")


def digest(message: bytes) -> str:
    return hashlib.sha256(message).hexdigest()
