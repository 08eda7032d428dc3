"""`sitegate paper print`: the emergency attendance listing, on paper or in a file."""

from __future__ import annotations

from datetime import date
from pathlib import Path

from sitegate.clock import SYSTEM
from sitegate.clock.timefmt import BRUSSELS
from sitegate.commands.device import open_device
from sitegate.commissioning import actor
from sitegate.domain.identifiers import normalise_enterprise_number
from sitegate.outfile import check as check_out
from sitegate.output import Report, flagged, progress, severity
from sitegate.paper_fallback import listing as paper
from sitegate.paper_fallback.printing import send


def print_listing(args) -> Report:
    device = open_device(args, signing=True)
    if args.out:  # refused before the listing is built, not after
        check_out(Path(args.out), device.config.data_dir)
    printer = device.config.printer
    now = SYSTEM.now()
    day = date.fromisoformat(args.date) if args.date else now.astimezone(BRUSSELS).date()
    employer = normalise_enterprise_number(args.employer, "--employer") if args.employer else None
    document = paper.build(
        device,
        day,
        args.reference,
        with_roster=args.with_roster or printer.include_roster,
        employer=employer,
        language=args.lang,
        now=now,
    )
    output_format = args.format or printer.format
    with progress(None, "printing"):
        printed = send(
            device,
            document,
            output_format,
            Path(args.out) if args.out else None,
            args.printer or printer.cups_name,
            printer.escpos,
            by=actor(),
        )
    result = {
        "date": day.isoformat(),
        "employer": employer,
        "reference": document.reference,
        "workers": len(document.rows),
        "format": output_format,
        "destination": printed.destination,
        "record": printed.seq,
        "warnings": printed.warnings,
    }
    text = (
        f"listing of {day:%d/%m/%Y}: {len(document.rows)} worker(s), reference "
        f"{document.reference or '(to write by hand)'} -> {printed.destination} (signed record {printed.seq})"
    ) + flagged(printed.warnings)
    return Report(result, text, severity(warning=printed.warnings))
