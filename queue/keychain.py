"""The keys a log was signed with: its first key, then each new key a technician started (`sitegate key replace`).

A lost `device.key` must not brick the gate: its registrations still have to reach the service. A new key continues
the same chain with a `key_replaced` record, signed by the new key, that names the old key, the last record verified
under it (seq and hash: the record's own prev_hash), who started the new key and why. The verifier follows the
chain across it and shows it as a warning naming the technician: anyone who reads the log sees where the old key's
proof ends and a person's word begins. Checkpoints are checked with the key in force at their seq.
"""

from __future__ import annotations

from dataclasses import dataclass

from sitegate.queue.log import LogView
from sitegate.queue.records import Kind, Record
from sitegate.queue.signing import fingerprint

_HEX = frozenset("0123456789abcdef")


def _public_key(value: object) -> bool:
    return isinstance(value, str) and len(value) == 64 and set(value) <= _HEX


@dataclass(frozen=True)
class KeyChange:
    """One `key_replaced` record, read."""

    seq: int
    wall_utc: str
    old_public_key: str
    new_public_key: str
    last_verified_seq: int
    last_verified_hash: str
    by: str
    reason: str

    @classmethod
    def of(cls, record: Record) -> KeyChange:
        """The record's key change; ValueError when its payload is not one."""
        data = record.data
        fields = ("old_public_key", "new_public_key", "last_verified_seq", "last_verified_hash", "by", "reason")
        if not isinstance(data, dict) or not all(name in data for name in fields):
            raise ValueError(f"a key_replaced record names {', '.join(fields)}")
        if not (_public_key(data["old_public_key"]) and _public_key(data["new_public_key"])):
            raise ValueError("a key_replaced record's keys are 64 hex digits")
        if not (isinstance(data["last_verified_seq"], int) and isinstance(data["last_verified_hash"], str)):
            raise ValueError("a key_replaced record's last verified seq and hash are a number and text")
        return cls(record.seq, record.wall_utc, *(data[name] for name in fields))

    def problem(self, record: Record, current_key: str) -> str | None:
        """Why this change cannot continue the chain signed by `current_key` up to `record`'s predecessor."""
        if self.old_public_key != current_key:
            return (
                f"a key replacement names key {fingerprint(self.old_public_key)} as the old key, but the log was "
                f"signed by {fingerprint(current_key)}"
            )
        if (self.last_verified_seq, self.last_verified_hash) != (record.seq - 1, record.prev_hash):
            return (
                f"a key replacement names record {self.last_verified_seq} ({self.last_verified_hash[:16]}…) as the "
                "last one verified, not the record before it"
            )
        return None

    @property
    def text(self) -> str:
        return (
            f"KEY REPLACED at record {self.seq} on {self.wall_utc[:10]} by {self.by}: {self.reason!r}; the old key "
            f"{fingerprint(self.old_public_key)} proves the log up to record {self.last_verified_seq} "
            f"({self.last_verified_hash[:16]}…), the new key {fingerprint(self.new_public_key)} from there on"
        )

    def as_dict(self) -> dict:
        return {
            **self.__dict__,
            "old_fingerprint": fingerprint(self.old_public_key),
            "new_fingerprint": fingerprint(self.new_public_key),
        }


@dataclass(frozen=True)
class KeyChain:
    """The first key, and each change after it, oldest first."""

    first: str
    changes: tuple[KeyChange, ...] = ()

    @property
    def current(self) -> str:
        return self.changes[-1].new_public_key if self.changes else self.first

    def at(self, seq: int) -> str:
        """The key that signed record `seq` (and any checkpoint of the log ending there)."""
        key = self.first
        for change in self.changes:
            if change.seq > seq:
                break
            key = change.new_public_key
        return key

    @property
    def fingerprints(self) -> list[str]:
        return [fingerprint(self.first)] + [fingerprint(change.new_public_key) for change in self.changes]

    @classmethod
    def of_log(cls, log: LogView) -> KeyChain | None:
        """The live log's keys (None before any key signed it). Its records are trusted here as they are read; the
        verifier checks each change against the chain."""
        first = log.first_key()
        if first is None:
            return None
        changes = []
        for record in log.records(kind=Kind.KEY_REPLACED):
            try:
                changes.append(KeyChange.of(record))
            except ValueError:
                continue  # the verifier names it; the keys of the well-formed changes still apply
        return cls(first, tuple(changes))
