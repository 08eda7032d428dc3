"""Issue 8, cases 7 to 12 and 14: the paper listing and the remarks, from a real daemon's day at the gate."""

from __future__ import annotations

import io
import json
import re
from datetime import UTC, datetime

import pytest
from pypdf import PdfReader
from simulator_process import SimulatorProcess
from verdict_site import Site

from sitegate import config as configuration
from sitegate.clock import SYSTEM
from sitegate.clock.timefmt import BRUSSELS
from sitegate.device import Device
from sitegate.paper_fallback import listing as paper

pytestmark = pytest.mark.slow

BOUW, CLEAN = "0403170701", "0202239951"
LONG = ("Wolfeschlegelsteinhausenbergerdorff-Vandenbroucke", "Hubert Blaine Maximilian")
SPECIAL = {
    # uid: (limosa, last name, first name, employer)
    "20000001": ("20000000000000001", *LONG, BOUW),
    "20000002": ("20000000000000002", "王", "秀英", CLEAN),
    "20000003": ("20000000000000003", "Ștefănescu", "Țuțu", CLEAN),
    "20000004": ("20000000000000004", "Outonly", "Olga", BOUW),  # badges only at the exit
}
WORKERS = 60


def roster_rows() -> list[str]:
    rows = [f"{0x10000000 + i:08X},,{10**16 + i:017d},Worker{i},Test,{BOUW},," for i in range(WORKERS)]
    rows += [f"{uid},,{limosa},{last},{first},{employer},," for uid, (limosa, last, first, employer) in SPECIAL.items()]
    return rows


@pytest.fixture(scope="module")
def day(tmp_path_factory):
    """A morning at a two-employer gate; then a roster import replaces everyone, and references are given."""
    directory = tmp_path_factory.mktemp("listing")
    service = SimulatorProcess()
    site = Site(directory, service.base_url, service.token_url)
    try:
        site.roster(roster_rows())
        site.start()
        site.badge(*[f"{0x10000000 + i:08X}" for i in range(WORKERS)], "20000001", "20000002", "20000003")
        site.badge("20000004", reader="exit")
        site.wait(lambda: site.json("queue")["delivered"] == WORKERS + 4, "everything delivered")
        site.roster(["30000000,,30000000000000000,Newcomer,Nina,0403170701,,"])  # mid-day: names leave the roster
        assert site.sitegate("outage", "reference", "REF-SITE-1").returncode == 0
        assert site.sitegate("outage", "reference", "REF-CLEAN-2", "--employer", "0202.239.951").returncode == 0
        yield site
    finally:
        site.stop()
        service.stop()


def pdf_pages(site: Site, *args: str) -> list[str]:
    out = site.directory / f"listing-{len(args)}-{'-'.join(args)}.pdf".replace("/", "_")
    result = site.sitegate("paper", "print", "--out", str(out), "--lang", "en", *args)
    assert result.returncode == 0, result.stderr
    return [page.extract_text() for page in PdfReader(io.BytesIO(out.read_bytes())).pages]


def today() -> str:
    return datetime.now(UTC).astimezone(BRUSSELS).strftime("%d/%m/%Y")


def test_7_every_name_comes_from_the_signed_log_after_a_roster_import(day):
    text = "".join(pdf_pages(day))
    for i in range(WORKERS):
        assert f"Worker{i}" in text and f"{10**16 + i:017d}" in text
    assert "Newcomer" not in text  # the roster adds nobody unless asked (--with-roster)


def test_8_every_page_says_what_it_is(day):
    pages = pdf_pages(day)
    assert len(pages) >= 3
    for number, text in enumerate(pages, start=1):
        for needle in ("REF-SITE-1", "1Y101DRUNWB5Z", today(), "gate-01", f"page {number} of {len(pages)}"):
            assert needle in text, (number, needle)
        assert "NISS / Limosa L1" in text  # the column titles too


def test_9_long_and_non_latin_names_print_whole(day):
    text = "".join(pdf_pages(day))
    flat = re.sub(r"\s+", "", text)
    assert "".join(LONG[0].split()) in flat and "HubertBlaineMaximilian" in flat  # wrapped inside its cell
    assert "王" in text and "秀英" in text  # drawn with the CJK font, not blank
    assert "Ștefănescu" in text and "Țuțu" in text


def test_9_thermal_slips_transliterate_openly_and_leave_a_box_for_what_they_cannot_print(day):
    out = day.directory / "slip.bin"
    result = day.sitegate("paper", "print", "--format", "escpos", "--out", str(out), "--json", "--lang", "en")
    assert result.returncode == 1, result.stderr  # a warning: the foreman must complete the paper
    shown = json.loads(result.stdout)
    assert any("Ștefănescu, Țuțu printed as Ştefănescu, Ţuţu" in w for w in shown["warnings"])
    assert any("20000000000000002" in w and "by hand" in w for w in shown["warnings"])
    data = out.read_bytes()
    parts = data.count(b"\x1dV\x00")  # GS V 0: one cut per part
    assert parts == -(-(WORKERS + 4) // 20)
    assert data.count(b"REF-SITE-1") == parts and data.count(b"1Y101DRUNWB5Z") == parts
    for number in range(1, parts + 1):
        assert f"page {number} of {parts}".encode() in data
    assert b"write it by hand" in data and b"letters this printer lacks" in data


def test_10_in_and_out_times_are_both_shown(day):
    config = configuration.load(day.config)
    device = Device.open(config, SYSTEM)
    try:
        now = datetime.now(UTC)
        listing = paper.build(device, now.astimezone(BRUSSELS).date(), now=now)
    finally:
        device.close()
    [only_out] = [row for row in listing.rows if row.last_name == "Outonly"]
    assert only_out.time_in == "" and re.fullmatch(r"\d\d:\d\d", only_out.time_out)
    assert all(row.time_in and not row.time_out for row in listing.rows if row.last_name.startswith("Worker"))
    assert "OUT" in pdf_pages(day)[0]


def test_11_employers_per_row_and_a_listing_per_employer_with_its_own_reference(day):
    whole = "".join(pdf_pages(day))
    assert "Clean Star BV" in whole and "Bouw Peeters NV" in whole
    assert "called separately" in whole and "REF-CLEAN-2" in whole
    clean = "".join(pdf_pages(day, "--employer", "0202.239.951"))
    assert "REF-CLEAN-2" in clean and "REF-SITE-1" not in clean
    assert "20000000000000002" in clean and "20000000000000003" in clean
    assert "Worker0" not in clean and "Outonly" not in clean


def test_14_remarks_that_cannot_be_rectified_are_not_listed_as_actions(day):
    received = day.sitegate("remarks", "--json")
    items = json.loads(received.stdout)
    assert all(item["code"] != 24 for item in items)  # Outonly's OUT without IN: nothing can be done
    assert day.json("queue")["delivered"] == WORKERS + 4


def test_12_a_site_without_a_works_declaration(tmp_path):
    service = SimulatorProcess()
    site = Site(tmp_path, service.base_url, service.token_url, works_declaration=None)
    try:
        check = site.sitegate("config", "check")
        assert "WARNING  site.works_declaration" in check.stdout  # a warning, not a refusal (the example's
        # employer and position are refused by commissioning: test_commissioning.py)
        site.roster(roster_rows()[:1])
        site.start()
        site.badge("10000000")
        site.wait(lambda: site.json("queue")["delivered"] == 1, "delivered")
        [item] = [entry["item"] for entry in service.received()["received"]]
        assert "contractualRelationshipReference" not in item
        text = "".join(pdf_pages(site))
        assert "none (no works declaration for this site)" in text and "Worker0" in text
    finally:
        site.stop()
        service.stop()
