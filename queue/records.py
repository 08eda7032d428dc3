"""One signed record of the log, and the canonical encoding its hash and signature cover.

The encoding is JSON with sorted keys, no spaces, UTF-8 and integers only (no floats: their text form is not
canonical across languages), so anyone can re-derive it from an export and check it.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import asdict, dataclass
from typing import Any

FORMAT_VERSION = 1
GENESIS_HASH = "0" * 64


def canonical_json(value: Any) -> str:
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False, allow_nan=False)


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
        return signed_message(
            self.seq,
            self.kind,
            json.loads(self.payload),
            self.wall_utc,
            self.monotonic_ns,
            self.boot_id,
            self.clock_state,
            self.clock_offset_us,
            self.prev_hash,
        )

    @property
    def data(self) -> dict:
        return json.loads(self.payload)

    def as_dict(self) -> dict:
        return asdict(self)


def signed_message(
    seq, kind, payload, wall_utc, monotonic_ns, boot_id, clock_state, clock_offset_us, prev_hash
) -> bytes:
    """The exact bytes that are hashed and signed for one record."""
    return canonical_json(
        {
            "v": FORMAT_VERSION,
            "seq": seq,
            "kind": kind,
            "payload": payload,
            "wall_utc": wall_utc,
            "monotonic_ns": monotonic_ns,
            "boot_id": boot_id,
            "clock_state": clock_state,
            "clock_offset_us": clock_offset_us,
            "prev_hash": prev_hash,
        }
    ).encode("utf-8")


def digest(message: bytes) -> str:
    return hashlib.sha256(message).hexdigest()
