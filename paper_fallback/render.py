"""The listing on paper: A4 PDF (fpdf2, DejaVu Sans shipped in the package so Dvořák and Nowak-Łukasiewicz
print) and 80 mm thermal (python-escpos, which switches code pages itself for accented names)."""

from __future__ import annotations

import io
from importlib import resources

import qrcode
from fpdf import FPDF

from sitegate.paper_fallback.listing import Listing

TITLE = "Emergency attendance listing — Liste de présence — Aanwezigheidslijst"
SUBTITLE = "Check In and Out at Work: emergency procedure (registration technically impossible)"
COLUMNS = (
    ("#", 8),
    ("NISS / Limosa L1", 36),
    ("Type", 14),
    ("Last name / Nom / Naam", 46),
    ("First name / Prénom", 36),
    ("In at", 14),
    ("Signature", 36),
)


def _font_path(name: str) -> str:
    return str(resources.files("sitegate.paper_fallback").joinpath(f"fonts/{name}"))


def _qr_png(text: str) -> io.BytesIO:
    buffer = io.BytesIO()
    qrcode.make(text, box_size=4, border=1).save(buffer, format="PNG")
    buffer.seek(0)
    return buffer


def pdf(listing: Listing) -> bytes:
    document = FPDF(orientation="P", unit="mm", format="A4")
    document.add_font("DejaVu", "", _font_path("DejaVuSans.ttf"))
    document.add_font("DejaVu", "B", _font_path("DejaVuSans-Bold.ttf"))
    document.set_auto_page_break(auto=True, margin=22)
    document.set_title(f"Attendance listing {listing.day.isoformat()} {listing.works_declaration}")
    document.add_page()
    document.set_font("DejaVu", "B", 13)
    document.multi_cell(0, 7, TITLE, new_x="LMARGIN", new_y="NEXT")
    document.set_font("DejaVu", "", 8)
    document.cell(0, 5, SUBTITLE, new_x="LMARGIN", new_y="NEXT")
    document.ln(2)
    reference = listing.reference or "____________________________ (write the number given by the contact centre)"
    for label, value in (
        ("Reference number (contact centre 02 511 51 51)", reference),
        ("Works-declaration number", listing.works_declaration),
        ("Date", listing.day.strftime("%d/%m/%Y")),
    ):
        document.set_font("DejaVu", "", 9)
        document.cell(85, 6, label + ":")
        document.set_font("DejaVu", "B", 11)
        document.cell(0, 6, value, new_x="LMARGIN", new_y="NEXT")
    document.ln(3)
    entries = [
        (str(i + 1), r.number, r.kind, r.last_name, r.first_name, r.first_seen) for i, r in enumerate(listing.rows)
    ]
    entries += [(str(len(entries) + i + 1), "", "", "", "", "") for i in range(listing.blank_rows)]
    page = None
    for entry in entries:
        if document.will_page_break(7):
            document.add_page()
        if document.page != page:  # the column titles on every page of the table
            page = document.page
            document.set_font("DejaVu", "B", 8)
            for title, width in COLUMNS:
                document.cell(width, 7, title, border=1)
            document.ln()
            document.set_font("DejaVu", "", 9)
        for (_, width), value in zip(COLUMNS, (*entry, ""), strict=True):
            document.cell(width, 7, value, border=1)
        document.ln()
    document.ln(4)
    document.set_font("DejaVu", "", 8)
    y = document.get_y()
    if y > 240:
        document.add_page()
        y = document.get_y()
    document.image(_qr_png(listing.checkpoint), x=170, y=y, w=28)
    for line in (
        f"Device {listing.device_id} — printed {listing.printed_at} (clock {listing.clock_state})",
        f"Log checkpoint: record {listing.checkpoint_seq}, hash {listing.checkpoint_hash[:16]}",
        f"Device key {listing.key_fingerprint} — check with `sitegate verify --fingerprint`",
        "",
        "Name and signature of the employer or foreman:",
        "",
        "",
        "_______________________________________________",
    ):
        document.cell(150, 4.5, line, new_x="LMARGIN", new_y="NEXT")
    return bytes(document.output())


def escpos(listing: Listing, printer) -> None:
    """Send the listing to a python-escpos printer (Usb, Serial, Network, File or Dummy), ending with a cut."""
    printer.set(align="center", bold=True, double_height=True)
    printer.textln("ATTENDANCE LISTING")
    printer.set(align="center", bold=False, double_height=False)
    printer.textln("Liste de présence / Aanwezigheidslijst")
    printer.textln("Check In and Out at Work - emergency")
    printer.set(align="left")
    printer.textln("-" * 42)
    printer.textln(f"Reference: {listing.reference or '______________________'}")
    printer.textln(f"Works declaration: {listing.works_declaration}")
    printer.textln(f"Date: {listing.day.strftime('%d/%m/%Y')}")
    printer.textln("-" * 42)
    for index, row in enumerate(listing.rows, start=1):
        printer.textln(f"{index:>3} {row.number} {row.kind}")
        printer.textln(f"    {row.last_name}, {row.first_name}  {row.first_seen}")
    for index in range(len(listing.rows) + 1, len(listing.rows) + listing.blank_rows + 1):
        printer.textln(f"{index:>3} ______________________________________")
        printer.textln("    ______________________________________")
    printer.textln("-" * 42)
    printer.textln(f"Device {listing.device_id}")
    printer.textln(f"Printed {listing.printed_at}")
    printer.textln(f"Clock {listing.clock_state}")
    printer.textln(f"Checkpoint {listing.checkpoint_seq} {listing.checkpoint_hash[:16]}")
    printer.qr(listing.checkpoint, size=4)
    printer.textln("Signature:")
    printer.textln("\n\n__________________________________")
    printer.cut()
