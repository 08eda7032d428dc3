"""`sitegate key replace`: a technician starts a new device key when the old one is lost, and the log goes on.

Without it a lost `device.key` stops the gate for good: the daemon cannot sign, and the registrations waiting in the
log are never delivered. The new key continues the same chain (queue/keychain.py): its first record, signed by it,
names the old key, the last record verified under it, who started the new key (the Unix user behind sudo) and why.
Refused while the daemon runs (it still holds the old key), while the log does not verify (a new key cannot vouch
for a broken chain) and while device.key is the log's own key (nothing is lost).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

from sitegate.clock import Clock
from sitegate.commissioning import check_reason
from sitegate.config import Config
from sitegate.device import Device
from sitegate.errors import DeviceKeyError, VerificationError
from sitegate.queue.keychain import KeyChange
from sitegate.queue.log import Tail
from sitegate.queue.signing import DeviceKey, fingerprint
from sitegate.queue.verify import verify
from sitegate.status import daemon_running


@dataclass(frozen=True)
class Replaced:
    change: KeyChange
    found: str  # what was at device.key: "missing", or the name the unusable file was kept under


def _set_aside(path: Path, now: datetime) -> str:
    """An unusable key file is kept (evidence: it may be a restore gone wrong), never deleted or overwritten."""
    kept = path.with_name(f"{path.name}.unusable-{now:%Y%m%dT%H%M%SZ}")
    path.rename(kept)
    return f"unusable, kept as {kept.name}"


def replace_key(config: Config, clock: Clock, by: str, reason: str, progress: Callable[[int], None]) -> Replaced:
    """Start a new device key that continues the log; see the module's docstring for when it is refused."""
    reason = check_reason(reason)
    now = clock.now()
    device = Device.open(config, clock, signing=False)
    try:
        if daemon_running(device.db, device.config.gate.heartbeat_s, now):
            raise DeviceKeyError(
                "the daemon is running: it still holds the old key",
                "stop it (`sudo systemctl stop sitegate`), run this again, then start it",
            )
        keys, problem = device.keys, device.key_problem()
        if keys is None:
            raise DeviceKeyError("no key has signed this log yet", "start the daemon: it makes the device key")
        if problem is None:
            raise DeviceKeyError(
                f"{config.key_path} is the log's own key ({fingerprint(keys.current)}): nothing to replace",
                "start the daemon (`sudo systemctl start sitegate`)",
            )
        try:
            report = verify(device.log.records(), keys.first, progress)
        except VerificationError as error:
            raise DeviceKeyError(
                f"the log does not verify ({error.problem}): a new key cannot continue it",
                "keep the data directory as evidence and report it to the site manager; restore device.key "
                "from the backup",
            ) from None
        found = _set_aside(config.key_path, now) if config.key_path.exists() else "missing"
        new_key = DeviceKey.create(config.key_path)
        old_key = report.keys.current
        payload = {
            "by": by,
            "reason": reason,
            "old_public_key": old_key,
            "old_fingerprint": fingerprint(old_key),
            "new_public_key": new_key.public_key_hex,
            "last_verified_seq": report.last_seq,
            "last_verified_hash": report.last_hash,
            "key_file_found": found,
        }
        verified = Tail(report.last_seq, report.last_hash) if report.records else None
        try:
            record = device.log.start_key(new_key, payload, verified)
        except BaseException:
            config.key_path.unlink()  # it signed nothing: the next attempt starts clean
            raise
        return Replaced(KeyChange.of(record), found)
    finally:
        device.close()
