"""Belgian identifiers: validated with python-stdnum where a checksum exists, by known format otherwise.

Every function takes the raw text (dots, dashes and spaces allowed), returns the normalised form that is
stored, and raises IdentifierError naming the field and the reason.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from stdnum import exceptions as stdnum_errors
from stdnum.be import bis, nn, vat

from sitegate.errors import IdentifierError

_SEPARATORS = re.compile(r"[\s.\-/]")

# No checksum is published for these two; the lengths are the ones seen in public sources (17-digit Limosa ids).
LIMOSA_DIGITS = range(10, 21)  # 17 digits seen; any all-digit number in this range is accepted
WORKS_DECLARATION_LENGTH = 13  # e.g. 1Y101DRUNWB5Z


def _reason(error: stdnum_errors.ValidationError) -> str:
    if isinstance(error, stdnum_errors.InvalidChecksum):
        return "check digits do not match (a typing error?)"
    if isinstance(error, stdnum_errors.InvalidLength):
        return "wrong number of digits"
    if isinstance(error, stdnum_errors.InvalidFormat):
        return "only digits (and . - / spaces) are allowed"
    return str(error) or "not a valid number"


def normalise_ssin(value: str, field: str = "niss") -> str:
    """A national register number (NISS/INSZ) or a BIS number, as 11 digits."""
    text = str(value).strip()
    if not text:
        raise IdentifierError(f"{field}: empty", "give the 11-digit national register (NISS) or BIS number")
    try:
        return nn.validate(text)
    except stdnum_errors.ValidationError as nn_error:
        try:
            return bis.validate(text)
        except stdnum_errors.ValidationError:
            raise IdentifierError(
                f"{field}: {text!r} is not a valid national register or BIS number: {_reason(nn_error)}",
                "copy the number again from the identity card or the Dimona/Limosa declaration",
            ) from None


def normalise_enterprise_number(value: str, field: str = "enterprise_number") -> str:
    """A KBO/BCE enterprise number as 10 digits (a leading BE and a missing leading 0 are accepted)."""
    text = str(value).strip()
    try:
        return vat.validate(text)
    except stdnum_errors.ValidationError as error:
        raise IdentifierError(
            f"{field}: {text!r} is not a valid KBO/BCE enterprise number: {_reason(error)} (remark 4 would follow)",
            "copy the 10-digit number from the Crossroads Bank for Enterprises (e.g. 0403.170.701)",
        ) from None


def normalise_limosa(value: str, field: str = "limosa") -> str:
    """A Limosa L1 declaration number. No checksum is published: all digits, of a known length."""
    text = _SEPARATORS.sub("", str(value))
    if not text.isdigit() or len(text) not in LIMOSA_DIGITS:
        raise IdentifierError(
            f"{field}: {value!r} is not a Limosa L1 number: expected {LIMOSA_DIGITS.start} to "
            f"{LIMOSA_DIGITS.stop - 1} digits (17 seen so far)",
            "copy the number from the worker's L1 certificate",
        )
    return text


def normalise_works_declaration(value: str, field: str = "works_declaration") -> str:
    """A works-declaration (DDT/WVA) number: 13 letters and digits, as in 1Y101DRUNWB5Z."""
    text = _SEPARATORS.sub("", str(value)).upper()
    if len(text) != WORKS_DECLARATION_LENGTH or not text.isalnum() or not text.isascii():
        raise IdentifierError(
            f"{field}: {value!r} is not a works-declaration number: expected "
            f"{WORKS_DECLARATION_LENGTH} letters and digits (remark 10 would follow)",
            "copy the number from the works declaration in the DDT/WVA application (e.g. 1Y101DRUNWB5Z)",
        )
    return text


def mask(number: str) -> str:
    """What logs and status output show of a personal number: the last two digits only."""
    return "*" * max(len(number) - 2, 0) + number[-2:]


@dataclass(frozen=True)
class WorkerId:
    """Who a registration is for: an SSIN (NISS or BIS) or, for a posted worker without one, a Limosa number."""

    kind: str  # "ssin" or "limosa"
    number: str

    @classmethod
    def parse(cls, ssin: str = "", limosa: str = "", field: str = "worker") -> WorkerId:
        ssin, limosa = (ssin or "").strip(), (limosa or "").strip()
        if ssin:
            return cls("ssin", normalise_ssin(ssin, f"{field}.niss"))
        if limosa:
            return cls("limosa", normalise_limosa(limosa, f"{field}.limosa"))
        raise IdentifierError(
            f"{field}: neither a national register (NISS/BIS) nor a Limosa number is given",
            "fill in the niss column, or limosa for a posted worker without a Belgian number",
        )

    @property
    def masked(self) -> str:
        return mask(self.number)


_UID_SEPARATORS = re.compile(r"[\s:\-]")
UID_BYTES = (4, 7, 10)  # single, double and triple size UIDs (ISO/IEC 14443-3)


def normalise_badge_uid(value: str, field: str = "badge_uid") -> str:
    """A card UID as upper-case hex of 4, 7 or 10 bytes (colons, dashes and spaces allowed)."""
    text = _UID_SEPARATORS.sub("", str(value)).upper()
    try:
        size = len(bytes.fromhex(text))
    except ValueError:
        size = -1
    if size not in UID_BYTES or len(text) != 2 * size:
        raise IdentifierError(
            f"{field}: {value!r} is not a card UID: expected 4, 7 or 10 bytes in hex (8, 14 or 20 hex digits)",
            "read the badge on the gate reader (`sitegate run` logs unknown badges with their UID) and copy it",
        )
    return text
