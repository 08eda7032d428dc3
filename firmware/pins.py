"""Foremen's PINs, stored as scrypt hashes in the configuration: never the PIN itself.

scrypt (hashlib, OpenSSL) is memory-hard: 16 MiB and some tens of milliseconds per try on a Pi, so a stolen
configuration does not give the PINs away cheaply; the page's rate limit stops guessing on line. A PIN has at
least 6 digits (a phone's number pad, gloves).
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets

from sitegate.errors import SitegateError

SCHEME = "scrypt"
N, R, P = 2**14, 8, 1  # 16 MiB per hash: comfortable in a Zero 2 W's 512 MB, slow enough against guessing
MIN_DIGITS = 6
_MAXMEM = 64 * 2**20


class PinError(SitegateError):
    """A PIN or a stored PIN hash is not usable."""


def check_pin(pin: str) -> str:
    pin = pin.strip()
    if not pin.isdigit() or len(pin) < MIN_DIGITS or not pin.isascii():
        raise PinError(f"a PIN must be at least {MIN_DIGITS} digits", f"choose {MIN_DIGITS} digits or more")
    return pin


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")


def hash_pin(pin: str) -> str:
    """`scrypt$N$r$p$salt$hash` (base64): what `sitegate web pin-hash` prints for the configuration."""
    salt = secrets.token_bytes(16)
    derived = hashlib.scrypt(check_pin(pin).encode(), salt=salt, n=N, r=R, p=P, maxmem=_MAXMEM, dklen=32)
    return f"{SCHEME}${N}${R}${P}${_b64(salt)}${_b64(derived)}"


def parse(stored: str) -> tuple[int, int, int, bytes, bytes]:
    """The parameters of a stored hash; PinError when it is not one `hash_pin` wrote."""
    try:
        scheme, n, r, p, salt, derived = stored.split("$")
        if scheme != SCHEME:
            raise ValueError(scheme)
        values = int(n), int(r), int(p), base64.b64decode(salt, validate=True), base64.b64decode(derived, validate=True)
    except (ValueError, TypeError):
        raise PinError(
            "not a PIN hash written by `sitegate web pin-hash`", "run `sitegate web pin-hash` and paste its line"
        ) from None
    if values[0] < 2**12 or len(values[3]) < 16 or len(values[4]) < 32:
        raise PinError("PIN hash too weak (old or hand-made)", "run `sitegate web pin-hash` again")
    return values


def verify(pin: str, stored: str) -> bool:
    """True when `pin` is the one hashed; compared in constant time."""
    n, r, p, salt, derived = parse(stored)
    candidate = hashlib.scrypt(pin.strip().encode(), salt=salt, n=n, r=r, p=p, maxmem=_MAXMEM, dklen=len(derived))
    return hmac.compare_digest(candidate, derived)
