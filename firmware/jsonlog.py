"""Structured logs: one JSON object per line on stdout (journald keeps them), personal numbers masked.

Callers log through `event(logger, name, **fields)`; any run of 10 or more digits in a message or a field is
masked as a safety net, so a NISS or Limosa number never reaches the journal in full.
"""

from __future__ import annotations

import json
import logging
import re
import sys
from datetime import UTC, datetime

from sitegate.identifiers import mask

_LONG_NUMBER = re.compile(r"\d{10,}")


def scrub(value: object) -> object:
    if isinstance(value, str):
        return _LONG_NUMBER.sub(lambda m: mask(m.group()), value)
    if isinstance(value, dict):
        return {k: scrub(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [scrub(v) for v in value]
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
