"""Rendering the paper listing for 500 workers, as PDF and as ESC/POS, against a 10-worker listing."""

from __future__ import annotations

import time
from datetime import date

from sitegate.paper_fallback import render
from sitegate.paper_fallback.listing import Listing, Row
from sitegate.paper_fallback.printing import escpos_bytes

NAMES = [("Dvořák", "Antonín"), ("Nowak-Łukasiewicz", "Zofia"), ("Çelik", "Mehmet"), ("Ødegård", "Sølvi")]


def listing(workers: int) -> Listing:
    rows = [
        Row(f"{10**16 + i:017d}", "Limosa", *NAMES[i % len(NAMES)], "0403170701", "Example Construct NV", "07:12")
        for i in range(workers)
    ]
    return Listing(
        date(2026, 11, 22),
        {"": "CC-2026-000123"},
        None,
        "1Y101DRUNWB5Z",
        "gate-01",
        "2026-11-22 08:00:00 CET",
        "synced",
        12345,
        "ab" * 32,
        "ABCD:EF01:2345:6789:ABCD",
        "fr",
        rows,
    )


def seconds(operation, repeat: int = 3) -> float:
    best = float("inf")
    for _ in range(repeat):
        start = time.perf_counter()
        operation()
        best = min(best, time.perf_counter() - start)
    return best


def bench_listing(result) -> list[dict]:
    big, small = listing(500), listing(10)
    return [
        result(
            "listing_pdf_500_s",
            seconds(lambda: render.pdf(big)[0]),
            "s",
            seconds(lambda: render.pdf(small)[0]),
            "<= 2 s (reference: a 10-worker listing)",
        ),
        result(
            "listing_escpos_500_s",
            seconds(lambda: escpos_bytes(big)),
            "s",
            seconds(lambda: escpos_bytes(small)),
            "(reference: a 10-worker listing)",
        ),
    ]
