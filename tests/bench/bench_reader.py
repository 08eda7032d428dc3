"""The reader's benchmark: enumerating three cards in the field on the fake chip, beside reading one card alone
(the same REQA, anticollision, SELECT and HLTA path, through the real `mfrc522` package's register access)."""

from __future__ import annotations

import statistics
import sys
import time
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from fake_mfrc522 import Card, FakeChip, install  # noqa: E402

ROUNDS = 300
THREE = [bytes.fromhex("04A1B2C3"), bytes.fromhex("04112233445566"), bytes.fromhex("0102030405060708090A")]


def enumerate_ms(protocol, chip: FakeChip, uids: list[bytes]) -> float:
    """Median time, in ms, to find every card of `uids` newly placed in the field."""
    samples = []
    for _ in range(ROUNDS):
        chip.present(*(Card(uid) for uid in uids))
        start = time.perf_counter_ns()
        found, _ = protocol.enumerate(lambda: True)
        samples.append((time.perf_counter_ns() - start) / 1e6)
        assert sorted(found) == sorted(uids)  # a real enumeration: every card selected and halted
    return statistics.median(samples)


def bench_reader(result) -> list[dict]:
    chip = FakeChip()
    with pytest.MonkeyPatch.context() as patch:  # the fake spidev and RPi.GPIO only for this benchmark
        install(chip, patch)
        from mfrc522 import MFRC522

        from sitegate.reader.mfrc522_source import Protocol

        protocol = Protocol(MFRC522())
        three = enumerate_ms(protocol, chip, THREE)
        one = enumerate_ms(protocol, chip, THREE[:1])
    return [result("enumerate_3_cards_ms", three, "ms", one, "<= 100 ms (reference: one card read alone)")]


if __name__ == "__main__":
    print(bench_reader(lambda *a: a))
