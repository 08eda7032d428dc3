"""The device's Ed25519 key: made on first start, kept in a 0600 file, used to sign every record."""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

from nacl.exceptions import BadSignatureError
from nacl.signing import SigningKey, VerifyKey

from sitegate.errors import DeviceKeyError

KEY_FIX = (
    "restore device.key from the backup (owner sitegate, mode 0600); without a backup, `sitegate key replace "
    '--reason "..."` starts a new key that continues the log (a signed record naming you)'
)


def fingerprint(public_key_hex: str) -> str:
    """A short, readable digest of a public key, for paper and for comparing over the phone."""
    digest = hashlib.sha256(bytes.fromhex(public_key_hex)).hexdigest()[:20].upper()
    return ":".join(digest[i : i + 4] for i in range(0, 20, 4))


class DeviceKey:
    def __init__(self, signing_key: SigningKey) -> None:
        self._key = signing_key
        self.public_key_hex = signing_key.verify_key.encode().hex()
        self.fingerprint = fingerprint(self.public_key_hex)

    @classmethod
    def generate(cls) -> DeviceKey:
        return cls(SigningKey.generate())

    @classmethod
    def load(cls, path: Path, signs_for: str | None = None) -> DeviceKey:
        """The key file; DeviceKeyError when it is missing or cannot be used. signs_for: the public key the log
        continues under (named in the message)."""
        try:
            seed = bytes.fromhex(path.read_text().strip())
            return cls(SigningKey(seed))
        except FileNotFoundError:
            whose = f" (the log is signed by key {fingerprint(signs_for)})" if signs_for else ""
            raise DeviceKeyError(f"the device key {path} is missing{whose}", KEY_FIX) from None
        except (ValueError, OSError) as error:
            raise DeviceKeyError(f"the device key {path} cannot be used: {error}", KEY_FIX) from None

    @classmethod
    def for_log(cls, path: Path, signs_for: str | None) -> DeviceKey:
        """The key that signs a log. Made (mode 0600) only for a log no key has signed yet: a key made for a log
        that has one could never sign it, and would hide that the real one is lost."""
        if signs_for is not None or path.exists():
            return cls.load(path, signs_for)
        return cls.create(path)

    @classmethod
    def create(cls, path: Path) -> DeviceKey:
        """A new key in a new 0600 file (never over an existing one), on disk before it signs anything."""
        key = SigningKey.generate()
        path.parent.mkdir(parents=True, exist_ok=True)
        descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(descriptor, "w") as handle:
            handle.write(key.encode().hex() + "\n")
            handle.flush()
            os.fsync(handle.fileno())
        folder = os.open(path.parent, os.O_RDONLY)
        try:
            os.fsync(folder)
        finally:
            os.close(folder)
        return cls(key)

    @classmethod
    def load_or_create(cls, path: Path) -> DeviceKey:
        """Load the key file, or make one when there is none yet (a new gate, before its log exists)."""
        return cls.for_log(path, None)

    def sign(self, message: bytes) -> str:
        return self._key.sign(message).signature.hex()


def signature_valid(public_key_hex: str, message: bytes, signature_hex: str) -> bool:
    try:
        VerifyKey(bytes.fromhex(public_key_hex)).verify(message, bytes.fromhex(signature_hex))
        return True
    except (BadSignatureError, ValueError):
        return False
