"""Structured logs: one JSON object per line on stdout (journald keeps them), personal numbers masked.

Callers log through `event(logger, name, **fields)`. Personal numbers are masked where they are: the fields that hold
one (`worker`, `niss`, `limosa`, ...) are masked whole; in free text (a message, a problem, a traceback) a number
that passes the NISS/BIS checksum, and a number of 10 to 20 digits right after a personal field's name (a service's
answer quoting `"limosaId": "…"`), are masked. Hashes, signatures, keys and card UIDs are never touched: a
checkpoint in the journal must stay checkable, and a technician copies unknown badges' UIDs from the log.
"""

from __future__ import annotations

import json
import logging
import re
import sys
from datetime import UTC, datetime

from stdnum.be import bis, nn

from sitegate.domain.identifiers import mask

# Fields holding a hash, a signature, a key or a card UID: copied as they are (digits in them are not a number).
VERBATIM_FIELDS = frozenset(
    {"hash", "prev_hash", "last_hash", "signature", "key", "public_key", "fingerprint", "uid", "uids", "badge_uid"}
)
# Fields holding a personal number: masked whole, whatever their form.
PERSONAL_FIELDS = frozenset({"worker", "worker_number", "number", "niss", "ssin", "limosa", "limosaId"})

# An 11-digit number standing alone (not part of a longer run of letters or digits: a hash, a UID), written plain or
# as on an identity card (85.07.30-033.28); masked when its check digits make it a NISS or BIS number.
_SSIN_LIKE = re.compile(r"(?<![0-9A-Za-z])\d{2}[. ]?\d{2}[. ]?\d{2}[-. ]?\d{3}[. ]?\d{2}(?![0-9A-Za-z])")
_LABELLED_NUMBER = re.compile(r"(?i)(niss|ssin|insz|inss|limosa\w*|worker_number)(\W{0,4})(\d{10,20})(?!\d)")
_SEPARATORS = re.compile(r"[. -]")


def _mask_ssin(match: re.Match) -> str:
    digits = _SEPARATORS.sub("", match.group())
    return mask(digits) if nn.is_valid(digits) or bis.is_valid(digits) else match.group()


def scrub_text(text: str) -> str:
    """Free text with every NISS/BIS number, and every number labelled as a personal one, masked."""
    text = _LABELLED_NUMBER.sub(lambda m: m.group(1) + m.group(2) + mask(m.group(3)), text)
    return _SSIN_LIKE.sub(_mask_ssin, text)


def scrub(value: object, field: str | None = None) -> object:
    """`value` (of `field`, when it is one) fit for a log line or the broker."""
    if field in VERBATIM_FIELDS:
        return value
    if isinstance(value, str):
        return mask(value) if field in PERSONAL_FIELDS else scrub_text(value)
    if isinstance(value, dict):
        return {k: scrub(v, k) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [scrub(v, field) for v in value]
    return value


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        line = {
            "ts": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname.lower(),
            "logger": record.name,
            "msg": record.getMessage(),
        }
        line.update(getattr(record, "fields", {}))
        if record.exc_info:
            line["exception"] = self.formatException(record.exc_info)
        return json.dumps(scrub(line), ensure_ascii=False, default=str)


def setup(level: int = logging.INFO, stream=None) -> None:
    handler = logging.StreamHandler(stream or sys.stdout)
    handler.setFormatter(JsonFormatter())
    root = logging.getLogger("sitegate")
    root.handlers[:] = [handler]
    root.setLevel(level)
    root.propagate = False


def event(logger: logging.Logger, name: str, level: int = logging.INFO, **fields: object) -> None:
    """Log one structured event: `{"event": name, ...fields}`."""
    logger.log(level, name, extra={"fields": {"event": name, **fields}})
