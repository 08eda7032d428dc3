"""Checks of configuration values that anticipate the service's remarks (4, 10, 36, 37, 38), as `key()` checks.

Each takes the checker, the value and its key path; it records a problem with the fix and returns the value
to use, or REQUIRED when there is none.
"""

from __future__ import annotations

import re
from typing import Any

from sitegate.domain.identifiers import normalise_enterprise_number, normalise_works_declaration
from sitegate.errors import IdentifierError
from sitegate.settings import REQUIRED, Checker

# Belgium's bounding box, slightly widened: coordinates outside it are almost always swapped or mistyped.
BELGIUM_LATITUDE = (49.45, 51.55)
BELGIUM_LONGITUDE = (2.50, 6.45)


def inside(latitude: float, longitude: float) -> bool:
    return (
        BELGIUM_LATITUDE[0] <= latitude <= BELGIUM_LATITUDE[1]
        and BELGIUM_LONGITUDE[0] <= longitude <= BELGIUM_LONGITUDE[1]
    )


_POST_CODE = re.compile(r"^[1-9][0-9]{3}$")
_DEVICE_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_-]{0,11}$")


def works_declaration(checker: Checker, value: str, path: str) -> str | None:
    if not value:
        checker.problem(
            path,
            'none: registrations are sent without a works-declaration number and the listing says "none"',
            "fine for a sector without works declarations (cleaning); on a construction site add the number "
            "(remark 10 would follow)",
            severity="warning",
        )
        return None
    try:
        return normalise_works_declaration(value, path)
    except IdentifierError as error:
        checker.problem(path, error.problem, error.fix)
        return REQUIRED


def employers(checker: Checker, value: list, path: str) -> tuple[tuple[str, str], ...]:
    """KBO/BCE numbers, or tables with the number and the company's name (printed on the listing)."""
    if not value:
        checker.problem(path, "empty list", "list every company (contractor, subcontractors) whose workers badge here")
        return REQUIRED
    found = []
    for index, raw in enumerate(value):
        where, name = f"{path}[{index}]", ""
        if isinstance(raw, dict):
            checker.unknown_keys(raw, where, {"number", "name"})
            name = checker.text(raw, "name", where, default="") or ""
            raw = checker.text(raw, "number", where, fix="the company's KBO/BCE number")
            if raw is None:
                continue
        try:
            found.append((normalise_enterprise_number(str(raw), where), name))
        except IdentifierError as error:
            checker.problem(where, error.problem.removeprefix(f"{where}: "), error.fix)
    return tuple(found) if len(found) == len(value) else REQUIRED


def https(checker: Checker, value: str, path: str) -> str:
    local = value.startswith(("http://127.", "http://localhost", "http://[::1]"))
    if value and not value.startswith("https://") and not local:
        checker.problem(path, f"{value!r} is not an https address", "an https:// address (http:// only on 127.0.0.1)")
    return value.rstrip("/")


def device_id(checker: Checker, value: str, path: str) -> str:
    if not _DEVICE_ID.match(value):
        checker.problem(
            path,
            f"{value!r}: letters, digits, - and _ only, at most 12 characters",
            "it is part of the 24-character client reference of each registration",
        )
        return REQUIRED
    return value


def address_part(checker: Checker, value: Any, path: str) -> str:
    text = str(value).strip()
    if not text:
        checker.problem(path, "empty (remark 37 would follow)", "fill it in as on the works declaration")
        return REQUIRED
    return text


def post_code(checker: Checker, value: Any, path: str) -> str:
    code = address_part(checker, value, path)
    if code is not REQUIRED and not _POST_CODE.match(code):
        checker.problem(path, f"{code!r} is not a Belgian post code (remark 38 would follow)", "4 digits, 1000-9999")
        return REQUIRED
    return code


_TOPIC_LEVEL = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_-]{0,63}$")
_PUBLIC_KEY = re.compile(r"^[0-9a-f]{64}$")


def topic_level(checker: Checker, value: str, path: str) -> str:
    """One level of an MQTT topic: no /, + or # (they would let a name reach into another gate's topics)."""
    if not _TOPIC_LEVEL.match(value):
        checker.problem(path, f"{value!r}: letters, digits, - and _ only, at most 64 characters", "a short site name")
        return REQUIRED
    return value


def peers(checker: Checker, value: list, path: str) -> tuple[tuple[str, str], ...]:
    """The other gates of the site: device id and the Ed25519 public key each signs with (`sitegate key show`)."""
    found = []
    for index, raw in enumerate(value):
        where = f"{path}[{index}]"
        if not isinstance(raw, dict):
            checker.problem(where, f"must be a table, not {raw!r}", '{id = "gate-02", public_key = "…64 hex…"}')
            continue
        checker.unknown_keys(raw, where, {"id", "public_key"})
        device = checker.text(raw, "id", where, fix="the peer's device id")
        public_key = (checker.text(raw, "public_key", where, fix="`sitegate key show` on that gate") or "").lower()
        if device is None or device_id(checker, device, f"{where}.id") is REQUIRED:
            continue
        if not _PUBLIC_KEY.match(public_key):
            checker.problem(f"{where}.public_key", "not 64 hexadecimal digits", "copy it from `sitegate key show`")
            continue
        if public_key == "0" * 64:
            checker.problem(f"{where}.public_key", "the example's placeholder", "copy it from `sitegate key show`")
            continue
        found.append((device, public_key))
    if len({device for device, _ in found}) != len(found):
        checker.problem(path, "a peer is listed twice", "list each gate once")
        return REQUIRED
    return tuple(found) if len(found) == len(value) else REQUIRED
