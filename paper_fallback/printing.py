"""Getting the listing out: to a file, to CUPS with `lp`, or to an ESC/POS printer (USB, serial, network)."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

from sitegate import outfile
from sitegate.clock.timefmt import BRUSSELS, format_utc
from sitegate.device import Device
from sitegate.errors import SitegateError
from sitegate.paper_fallback import listing as paper
from sitegate.paper_fallback import render
from sitegate.paper_fallback.listing import Listing, record_printing
from sitegate.queue import checkpoints, database


def _escpos_printers():
    """python-escpos, imported without its litter. At its import escpos.capabilities makes a new temporary directory
    (mkdtemp(), evaluated even when ESCPOS_CAPABILITIES_PICKLE_DIR names another), caches its printer profiles there
    as a 70 KB pickle unless that variable says where, and never removes it: every command and every start of the
    daemon left one in /tmp for good (on the device a tmpfs: memory). The pickle is only read during the import, so
    the directory it names is removed right after, changing nothing of the process (its environment, tempfile's
    directory) meanwhile. Only when someone set the variable to a cache of their own does escpos's unused, empty
    directory stay: it keeps no name of it."""
    if "escpos.capabilities" in sys.modules:
        from escpos import printer  # noqa: PLC0415 - imported already

        return printer
    chosen = os.environ.get("ESCPOS_CAPABILITIES_PICKLE_DIR")  # someone's own cache: kept
    try:
        from escpos import printer  # noqa: PLC0415
    finally:
        capabilities = sys.modules.get("escpos.capabilities")
        if chosen is None and capabilities is not None:
            shutil.rmtree(capabilities.pickle_dir, ignore_errors=True)
    return printer


escpos_printers = _escpos_printers()  # the module escpos.printer


class PrintError(SitegateError):
    """The listing could not be printed; it can still be written to a file (`--out`)."""


def escpos_device(spec: str):
    """A python-escpos printer from "usb:VID:PID", "serial:/dev/ttyUSB0", "network:HOST" or "file:/dev/usb/lp0"."""
    kind, _, target = spec.partition(":")
    if kind == "usb":
        vendor, _, product = target.partition(":")
        return escpos_printers.Usb(int(vendor, 16), int(product, 16))
    if kind == "serial":
        return escpos_printers.Serial(target)
    if kind == "network":
        return escpos_printers.Network(target)
    if kind == "file":
        return escpos_printers.File(target)
    raise PrintError(
        f"printer.escpos {spec!r} is not understood",
        "write usb:0x04b8:0x0202, serial:/dev/ttyUSB0, network:192.0.2.10 or file:/dev/usb/lp0",
    )


@dataclass(frozen=True)
class Printed:
    destination: str
    seq: int  # the signed paper_listing record
    warnings: list[str]  # what the foreman must know: names transliterated or to write by hand


def escpos_bytes(listing: Listing) -> tuple[bytes, list[str]]:
    dummy = escpos_printers.Dummy(profile="TM-T88V")  # a common 80 mm profile: paper width known to the renderer
    report = render.escpos(listing, dummy)
    warnings = [f"transliterated for the thermal printer: {note}" for note in report.transliterated]
    warnings += [
        f"worker {number}: name not printable on the thermal printer, write it by hand" for number in report.by_hand
    ]
    return dummy.output, warnings


def send(
    device: Device,
    listing: Listing,
    output_format: str,
    out: Path | None = None,
    cups_printer: str | None = None,
    escpos_spec: str | None = None,
    run: Callable = subprocess.run,
    by: str | None = None,
) -> Printed:
    """Render and deliver the listing; record it as a signed record naming who asked for it (`by`)."""
    content, warnings = render.pdf(listing) if output_format == "pdf" else escpos_bytes(listing)
    if out is not None:
        outfile.write_bytes(Path(out), content, device.config.data_dir)
        destination = f"file {out}"
    elif output_format == "pdf" and cups_printer:
        with tempfile.NamedTemporaryFile(suffix=".pdf", prefix="sitegate-listing-") as handle:
            handle.write(content)
            handle.flush()
            result = run(
                ["lp", "-d", cups_printer, "-t", f"Attendance listing {listing.day}", handle.name],
                capture_output=True,
                text=True,
                timeout=60,
            )
        if result.returncode != 0:
            raise PrintError(
                f"lp refused the job: {result.stderr.strip() or result.stdout.strip()}",
                f"check the printer with `lpstat -p {cups_printer}`, or print to a file with --out",
            )
        destination = f"cups {cups_printer}"
    elif output_format == "escpos" and escpos_spec:
        printer = escpos_device(escpos_spec)
        try:
            printer._raw(content)
        except Exception as error:  # noqa: BLE001 - python-escpos raises many kinds; all mean "not printed"
            raise PrintError(
                f"the thermal printer {escpos_spec} failed: {error}",
                "check its cable, paper and power; or print to a file with --out",
            ) from None
        destination = f"escpos {escpos_spec}"
    else:
        raise PrintError(
            "no printer to send the listing to",
            "give --out FILE, --printer NAME (CUPS), or set [printer] in the configuration",
        )
    seq = record_printing(device, listing, output_format, destination, content, by)
    return Printed(destination, seq, warnings + checkpoint_printed(device))


def print_today(
    device: Device, now: datetime, by: str | None = None, employer: str | None = None
) -> tuple[Listing, Printed]:
    """The print button's action (the gate's button, a foreman's badge, the page): today's listing (Brussels) to
    the configured printer; the page may ask for one employer's workers."""
    printer = device.config.printer
    day = now.astimezone(BRUSSELS).date()
    document = paper.build(device, day, with_roster=printer.include_roster, now=now, employer=employer)
    printed = send(device, document, printer.format, cups_printer=printer.cups_name, escpos_spec=printer.escpos, by=by)
    return document, printed


def checkpoint_printed(device: Device) -> list[str]:
    """Every printed listing is also a checkpoint, in the ledger, the head file and the journal (its QR code holds
    the head it was built from; a listing of an empty log has none, this checkpoint is then the log's first). Never
    refuses the paper: a log that no longer extends its witnesses is reported."""
    head_file = database.head_path(device.config.database_path)
    now = format_utc(device.log.clock.now())
    _, verdicts = checkpoints.checkpoint(
        device.log, device.ledger, device.key, head_file, now, checkpoints.Reason.LISTING
    )
    return [verdict.text for verdict in verdicts if verdict.broken]


def for_download(device: Device, listing: Listing, by: str) -> tuple[bytes, Printed]:
    """The PDF handed to a foreman's phone from the page: recorded, like any printed listing, naming them."""
    content, warnings = render.pdf(listing)
    seq = record_printing(device, listing, "pdf", "download", content, by)
    return content, Printed("download", seq, warnings + checkpoint_printed(device))
