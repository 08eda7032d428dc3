"""The device's Ed25519 key: made on first start, kept in a 0600 file, used to sign every record."""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

from nacl.exceptions import BadSignatureError
from nacl.signing import SigningKey, VerifyKey

from sitegate.errors import StorageError


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
    def load_or_create(cls, path: Path) -> DeviceKey:
        """Load the key file, or make one (mode 0600) when there is none yet."""
        try:
            seed = bytes.fromhex(path.read_text().strip())
            return cls(SigningKey(seed))
        except FileNotFoundError:
            pass
        except (ValueError, OSError) as error:
            raise StorageError(
                f"device key {path} cannot be used: {error}",
                "restore the key file from backup; never replace it while records are undelivered or unverified",
            ) from None
        key = SigningKey.generate()
        path.parent.mkdir(parents=True, exist_ok=True)
        descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(descriptor, "w") as handle:
            handle.write(key.encode().hex() + "\n")
            handle.flush()
            os.fsync(handle.fileno())
        return cls(key)

    def sign(self, message: bytes) -> str:
        return self._key.sign(message).signature.hex()


def signature_valid(public_key_hex: str, message: bytes, signature_hex: str) -> bool:
    try:
        VerifyKey(bytes.fromhex(public_key_hex)).verify(message, bytes.fromhex(signature_hex))
        return True
    except (BadSignatureError, ValueError):
        return False
