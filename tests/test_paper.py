"""The emergency paper listing: every required field, names with their diacritics, ESC/POS, CUPS.

The print button, pressed while workers badge: test_feedback.py.
"""

from __future__ import annotations

import io
import os
import pwd
import subprocess
import sys
from datetime import date

import pytest
from conftest import REPO, installed_sitegate, run_sitegate
from pypdf import PdfReader

from sitegate import config as configuration
from sitegate.clock import SYSTEM, ClockReading
from sitegate.device import Device
from sitegate.domain.gate import Gate
from sitegate.domain.roster import read_csv
from sitegate.paper_fallback import listing as paper
from sitegate.paper_fallback.outage import record_reference
from sitegate.paper_fallback.printing import escpos_bytes, send
from sitegate.queue import checkpoints, database
from sitegate.queue.records import Kind
from sitegate.queue.verify import verify
from sitegate.reader.sources import BadgeRead

NAMES = ["Dvořák", "Antonín", "Nowak-Łukasiewicz", "Zofia", "Çelik", "Mehmet", "Ødegård", "Sølvi", "Peeters"]
QR_IMAGE = b"\x1dv0"  # GS v 0: python-escpos prints the QR code as a raster image (the listing's only image)
NUMBERS = ["85073003328", "12345678901234567", "90020199704", "98765432109876543", "17073003384"]


@pytest.fixture
def badged(device, clock):
    """The demo roster's five workers badged in this morning."""
    device.roster.replace(read_csv(REPO / "firmware" / "data" / "demo_roster.csv").workers)
    gate = Gate(device.log, device.roster, device.config, lambda: ClockReading("synced", 0), lambda: 0)
    for uid in ("04A1B2C3", "04A1B2C4", "04A1B2C5", "04A1B2C6", "04A1B2C7"):
        clock.advance(30)
        gate.badge(BadgeRead(uid, "gate", clock.monotonic_ns()))
    record_reference(device.log, "CC-2026-000123", clock.wall)
    return device


def test_listing_holds_what_the_procedure_requires(badged, clock):
    document = paper.build(badged, date(2026, 11, 22), now=clock.wall)
    assert document.reference == "CC-2026-000123"
    assert {r.number for r in document.rows} == set(NUMBERS)
    assert document.checkpoint_seq == badged.log.count()


def test_pdf_text_has_every_field_and_every_diacritic(badged, clock, tmp_path):
    document = paper.build(badged, date(2026, 11, 22), now=clock.wall, language="en")
    out = tmp_path / "listing.pdf"
    seq = send(badged, document, "pdf", out=out).seq
    text = "".join(page.extract_text() for page in PdfReader(out).pages)
    for needle in [
        "CC-2026-000123",
        "1Y101DRUNWB5Z",
        "22/11/2026",
        *NUMBERS,
        *NAMES,
        "gate-01",
        f"record {document.checkpoint_seq}",
        "Signature",
    ]:
        assert needle in text, needle
    assert badged.log.get(seq).kind == "paper_listing" and badged.log.get(seq).data["reference"] == "CC-2026-000123"
    verify(badged.log.records(), badged.key.public_key_hex)


def test_pdf_without_reference_leaves_a_box_to_write_it(device, clock, tmp_path):
    document = paper.build(device, date(2026, 11, 22), now=clock.wall, language="en")
    out = tmp_path / "empty.pdf"
    send(device, document, "pdf", out=out)
    text = PdfReader(out).pages[0].extract_text()
    assert "____" in text and "contact centre" in text


def test_an_empty_log_prints_no_checkpoint_to_verify(device, clock, tmp_path):
    """Nothing in the log yet (a new gate): the paper says so, with no record 0 / zeros that verify would refuse."""
    document = paper.build(device, date(2026, 11, 22), now=clock.wall, language="en")
    assert document.checkpoint is None
    out = tmp_path / "first.pdf"
    seq = send(device, document, "pdf", out=out).seq
    pdf = PdfReader(out)
    text = "".join(page.extract_text() for page in pdf.pages)
    assert "Log checkpoint: none, the log is empty" in text and "record 0" not in text and "0000000000" not in text
    assert not any(page.images for page in pdf.pages)  # no QR code
    slip, _ = escpos_bytes(document)
    assert b"none, the log is empty" in slip and QR_IMAGE not in slip
    assert device.log.get(seq).data["checkpoint_seq"] is None
    head = checkpoints.read_head_file(database.head_path(device.config.database_path))
    assert head.seq == seq  # the printing is still the log's first checkpoint, in the head file and the ledger
    verify(device.log.records(), device.key.public_key_hex)
    # The next listing has a head: printed, and verify accepts it.
    document = paper.build(device, date(2026, 11, 22), now=clock.wall, language="en")
    assert document.checkpoint == f"sitegate:gate-01:{seq}:{device.log.get(seq).hash[:16]}:{device.key.fingerprint}"
    assert QR_IMAGE in escpos_bytes(document)[0]


def test_escpos_bytes_hold_the_fields_and_end_with_a_cut(badged, clock):
    data, warnings = escpos_bytes(paper.build(badged, date(2026, 11, 22), now=clock.wall))
    assert warnings == []
    for needle in [b"CC-2026-000123", b"1Y101DRUNWB5Z", b"22/11/2026", *(n.encode() for n in NUMBERS), b"Peeters"]:
        assert needle in data, needle
    assert data.endswith(b"\x1dV\x00")  # GS V 0: full cut


def test_a_thermal_listing_leaves_nothing_in_the_temporary_folder(badged, tmp_path, config_file):
    """python-escpos, left to itself, leaves a 70 KB pickle in a new temporary directory at every import: on the
    device every command and every start would add one to /tmp (a tmpfs) for good."""
    scratch = tmp_path / "tmp"
    scratch.mkdir()
    badged.close()
    env = {**os.environ, "TMPDIR": str(scratch), "SITEGATE_CONFIG": str(config_file)}
    env.pop("ESCPOS_CAPABILITIES_PICKLE_DIR", None)
    out = tmp_path / "listing.bin"
    result = installed_sitegate(
        "paper", "print", "--date", "2026-11-22", "--format", "escpos", "--out", str(out), env=env
    )
    assert result.returncode == 0, result.stderr
    assert out.read_bytes().endswith(b"\x1dV\x00") and list(scratch.iterdir()) == []


# Records every change of the environment (the audit events of os.environ's writes) and every attribute set on the
# tempfile module (its `tempdir` above all) while the printing module, and python-escpos with it, is imported.
_WATCH_THE_IMPORT = """
import sys, tempfile, types
changed = []
sys.addaudithook(lambda event, args: changed.append(event) if event in ("os.putenv", "os.unsetenv") else None)
class Watched(types.ModuleType):
    def __setattr__(self, name, value):
        changed.append(f"tempfile.{name}")
        super().__setattr__(name, value)
tempfile.__class__ = Watched
from sitegate.paper_fallback import printing
print(changed)
"""


def test_importing_the_thermal_printer_library_changes_nothing_of_the_process(tmp_path):
    """The import happens while the daemon's threads run: a directory set for the whole process would take their
    temporary files, and the environment would reach the programs they start."""
    env = {**os.environ, "TMPDIR": str(tmp_path)}
    env.pop("ESCPOS_CAPABILITIES_PICKLE_DIR", None)
    watched = subprocess.run(
        [sys.executable, "-c", _WATCH_THE_IMPORT], capture_output=True, text=True, env=env, timeout=60, check=True
    )
    assert watched.stdout.strip() == "[]"
    assert list(tmp_path.iterdir()) == []  # and leaves nothing behind


def test_lp_is_called_with_the_printer_and_the_pdf(badged, clock, tmp_path, config_file):
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    (bin_dir / "lp").write_text(
        f'#!/bin/sh\necho "$@" > {tmp_path}/lp.args\ncp "$5" {tmp_path}/lp.pdf\n'
        "echo 'request id is office-1 (1 file(s))'\n"
    )
    (bin_dir / "lp").chmod(0o755)
    env = {**os.environ, "PATH": f"{bin_dir}:{os.environ['PATH']}", "SITEGATE_CONFIG": str(config_file)}
    badged.close()
    result = run_sitegate("paper", "print", "--date", "2026-11-22", "--printer", "site-office", env=env)
    assert result.returncode == 0, result.stderr
    args = (tmp_path / "lp.args").read_text().split()
    assert args[:2] == ["-d", "site-office"] and args[-1].endswith(".pdf")
    device = Device.open(configuration.load(config_file), SYSTEM)
    record = next(device.log.newest(Kind.PAPER_LISTING))
    device.close()
    assert record.data["by"] == pwd.getpwuid(os.getuid()).pw_name  # the Unix user who printed it
    assert (tmp_path / "lp.pdf").read_bytes().startswith(b"%PDF")
    failing = tmp_path / "bin" / "lp"
    failing.write_text("#!/bin/sh\necho 'lp: The printer or class does not exist.' >&2\nexit 1\n")
    refused = run_sitegate("paper", "print", "--printer", "nowhere", env=env)
    assert refused.returncode == 2 and "lpstat" in refused.stderr


def test_every_page_of_a_long_listing_has_the_column_titles(tmp_path):
    from sitegate.paper_fallback import render

    rows = [paper.Row(f"{10**16 + i:017d}", "Limosa", "Ødegård", "Sølvi", "0403170701", "", "07:00") for i in range(80)]
    document = paper.Listing(
        date(2026, 11, 22), {}, None, "1Y101DRUNWB5Z", "gate-01", "now", "synced", 1, "0" * 64, "FP", "en", rows
    )
    reader = PdfReader(io.BytesIO(render.pdf(document)[0]))
    assert len(reader.pages) >= 2
    assert all("NISS / Limosa L1" in page.extract_text() for page in reader.pages)
    assert sum(page.extract_text().count("Ødegård") for page in reader.pages) == 80


def test_a_name_no_font_can_draw_gets_a_box_to_write_it_by_hand(tmp_path):
    """Issue 22, case 7: one Ethiopic or hieroglyph name must not leave the site without a listing that day."""
    from sitegate.paper_fallback import render

    rows = [
        paper.Row("85073003328", "NISS", "\U00013000", "Ankh", "0403170701", "", "07:00"),  # a hieroglyph
        paper.Row("17073003384", "NISS", "Peeters", "Jan", "0403170701", "", "07:05"),
    ]
    document = paper.Listing(
        date(2026, 11, 22), {}, None, None, "gate-01", "now", "synced", 1, "0" * 64, "FP", "en", rows
    )
    content, notes = render.pdf(document)
    text = PdfReader(io.BytesIO(content)).pages[0].extract_text()
    assert "write it by hand" in text and "Ankh" in text and "Peeters" in text and "85073003328" in text
    assert len(notes) == 1 and "85073003328" in notes[0] and "by hand" in notes[0]


def test_the_clock_state_is_printed_in_the_listings_language(device, clock, tmp_path):
    """Issue 22: the French listing said "horloge synced" (the thermal slip prints the same line)."""
    for state, expected in (
        (None, {"fr": "horloge état inconnu", "nl": "klok toestand onbekend", "en": "clock state unknown"}),
        ("synced", {"fr": "horloge synchronisée", "nl": "klok gesynchroniseerd", "en": "clock synced"}),
        ("unsynced", {"fr": "horloge non synchronisée", "nl": "klok niet gesynchroniseerd", "en": "clock not synced"}),
    ):
        if state:
            device.log.append(Kind.CLOCK, {"event": state, "source": "chrony", "detail": "", "offset_us": 0})
        for language, words in expected.items():
            document = paper.build(device, date(2026, 11, 22), now=clock.wall, language=language)
            out = tmp_path / f"{language}.pdf"
            send(device, document, "pdf", out=out)
            text = " ".join(" ".join(page.extract_text().split()) for page in PdfReader(out).pages)
            assert words in text, (language, state)
