"""The badge-to-worker table: replace it from a CSV file, list it (personal numbers masked)."""

from __future__ import annotations

import hashlib
from pathlib import Path

from sitegate import config as configuration
from sitegate.clock import SYSTEM
from sitegate.commands.device import open_device
from sitegate.commissioning import actor
from sitegate.device import Device
from sitegate.domain.roster import read_csv
from sitegate.output import CRITICAL, Report, severity, table
from sitegate.queue.records import Kind


def import_csv(args) -> Report:
    config = configuration.load(args.config)
    parsed = read_csv(Path(args.file), config.site.employer_numbers)
    notes = [f"bad row: {bad}" for bad in parsed.bad_rows] + [f"warning: {w}" for w in parsed.warnings]
    data = {"imported": 0, "bad_rows": [str(b) for b in parsed.bad_rows], "warnings": parsed.warnings}
    if parsed.bad_rows and not args.skip_bad:
        notes.append(
            f"nothing imported: {len(parsed.bad_rows)} bad row(s); correct them, or import the "
            f"{len(parsed.workers)} good rows with --skip-bad"
        )
        return Report(data, code=CRITICAL, notes=notes)
    device = Device.open(config, SYSTEM)
    device.roster.replace(parsed.workers)
    signed = device.log.append(
        Kind.ROSTER_IMPORT,
        {
            "by": actor(),
            "workers": len(parsed.workers),
            "bad_rows_skipped": len(parsed.bad_rows),
            "sha256": hashlib.sha256(Path(args.file).read_bytes()).hexdigest(),
        },
    )
    skipped = f", {len(parsed.bad_rows)} bad row(s) skipped" if parsed.bad_rows else ""
    text = f"roster replaced: {len(parsed.workers)} worker(s){skipped} (signed record {signed.seq})"
    code = severity(warning=parsed.bad_rows or parsed.warnings)
    return Report({**data, "imported": len(parsed.workers)}, text, code, notes)


def list_workers(args) -> Report:
    workers = [w.masked() for w in open_device(args).roster.all()]
    columns = (
        "badge_uid",
        "kind",
        "number",
        "last_name",
        "first_name",
        "employer",
        "valid_from",
        "valid_until",
        "role",
    )
    rows = ([{**w, **w["worker"]}[c] for c in columns] for w in workers)
    text = table(rows, ["badge", "id kind", "number", "last name", "first name", "employer", "from", "until", "role"])
    return Report(workers, text)
