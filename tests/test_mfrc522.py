"""The MFRC522 source running the real `mfrc522` package code against a register-level fake chip."""

from __future__ import annotations

import threading
from datetime import UTC, datetime

import pytest
from fake_mfrc522 import Card, FakeChip, install

from sitegate.queue.clock import ManualClock
from sitegate.reader.sources import BadgeRead

UID4 = bytes.fromhex("04A1B2C3")
UID7 = bytes.fromhex("04112233445566")
UID10 = bytes.fromhex("0102030405060708090A")


@pytest.fixture
def chip(monkeypatch):
    fake = FakeChip()
    install(fake, monkeypatch)
    return fake


@pytest.fixture
def source(chip, config):
    from sitegate.reader.mfrc522_source import Mfrc522Source

    clock = ManualClock(datetime(2026, 11, 22, 7, 0, tzinfo=UTC))  # sleeping on it moves it: no real wait
    reader = Mfrc522Source(config.readers[0], clock)
    reader.clock = clock
    reader.prepare()
    return reader


def test_the_real_package_is_what_runs(source):
    import mfrc522

    assert type(source.driver) is mfrc522.MFRC522 and source.online


@pytest.mark.parametrize("uid", [UID4, UID7, UID10], ids=["4 bytes", "7 bytes (DESFire, NTAG)", "10 bytes"])
def test_full_uid_through_the_cascade_levels(chip, source, uid):
    chip.present(Card(uid, sak=0x20 if len(uid) > 4 else 0x08))
    read = source.poll()
    assert isinstance(read, BadgeRead) and read.uid == uid.hex().upper()
    assert "88" not in read.uid[:2] and len(read.uid) == 2 * len(uid)  # no cascade tag, no BCC


def test_no_card_costs_one_frame_not_a_spin(chip, source):
    before = chip.transceives
    assert source.poll() is None
    assert chip.transceives - before == 1


def test_a_card_held_still_is_one_read(chip, source):
    chip.present(Card(UID7))
    reads = []
    for _ in range(40):
        source.clock.advance(0.05)
        read = source.poll()
        if read is not None:
            reads.append(read)
    assert [r.uid for r in reads] == [UID7.hex().upper()]


def test_a_card_answering_every_other_request_is_held_off(chip, source):
    card = Card(UID4)
    chip.present(card)
    assert source.poll() is not None
    for _ in range(10):  # a card that ignores HLTA and comes back every other REQA
        card.state = "IDLE"
        source.clock.advance(0.1)
        assert source.poll() is None
    source.clock.advance(5)  # taken away and presented again
    card.state = "IDLE"
    assert source.poll() is not None


def test_card_pulled_mid_read_gives_no_badge(chip, source):
    chip.present(Card(UID7))
    chip.pull_after = 2  # REQA and level 1 answered, then gone
    read = source.poll()
    assert not isinstance(read, BadgeRead)
    chip.present(Card(UID7))
    source.clock.advance(2)
    assert source.poll().uid == UID7.hex().upper()


def test_corrupt_bcc_is_refused(chip, source):
    card = Card(UID4)
    original = card.receive

    def corrupt(frame, bits):
        answer = original(frame, bits)
        if answer and len(answer) == 5:
            answer[4] ^= 0xFF
        return answer

    card.receive = corrupt
    chip.present(card)
    assert not isinstance(source.poll(), BadgeRead)


def test_hung_chip_is_reset_through_its_pin_and_recovers(chip, source):
    chip.hung = True
    assert source.check_health() is False and not source.online
    assert chip.resets == 1 and not chip.hung
    assert source.check_health() is True and source.online
    chip.present(Card(UID4))
    assert source.poll().uid == "04A1B2C3"


def test_reads_loop_yields_and_stops(chip, source):
    chip.present(Card(UID4))
    stop = threading.Event()
    found = []
    for read in source.reads(stop):
        found.append(read)
        stop.set()
    assert [r.uid for r in found] == ["04A1B2C3"]
