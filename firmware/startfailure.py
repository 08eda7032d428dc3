"""The daemon's last start failure, left where `sitegate status` finds it: a unit that crash-loops shows only
"not running" otherwise, and the journal may be out of the technician's reach.

Written in the data directory, or, when that is what cannot be written, in the unit's runtime directory
(systemd's RuntimeDirectory=, kept across restarts); removed once the daemon has started.
"""

from __future__ import annotations

import json
import os
from datetime import datetime
from pathlib import Path

from sitegate.clock.timefmt import format_utc
from sitegate.config import Config
from sitegate.errors import SitegateError

FILE_NAME = "last-start-failure.json"
RUNTIME_DIR = Path("/run/sitegate")  # the unit's RuntimeDirectory=sitegate


def places(config: Config) -> list[Path]:
    runtime = Path(os.environ.get("RUNTIME_DIRECTORY") or RUNTIME_DIR)
    return [config.data_dir / FILE_NAME, runtime / FILE_NAME]


def record(config: Config, error: SitegateError, now: datetime) -> None:
    text = json.dumps({"utc": format_utc(now), "problem": error.problem, "fix": error.fix})
    for path in places(config):
        try:
            path.write_text(text, encoding="utf-8")
            return
        except OSError:
            continue  # not writable here: the next place


def clear(config: Config) -> None:
    for path in places(config):
        try:
            path.unlink(missing_ok=True)
        except OSError:
            pass  # a place we could not write before cannot hold a record of ours either


def last(config: Config) -> dict | None:
    """The newest start failure left by the daemon, or None."""
    found = []
    for path in places(config):
        try:
            found.append(json.loads(path.read_text(encoding="utf-8")))
        except (OSError, ValueError):
            continue
    return max(found, key=lambda failure: failure.get("utc", ""), default=None)
