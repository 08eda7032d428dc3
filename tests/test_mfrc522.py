"""The MFRC522 source running the real `mfrc522` package code against a register-level fake chip."""

from __future__ import annotations

import threading

import pytest
from conftest import REPO
from fake_mfrc522 import COLL, COLL_ERR, COMMAND, ERROR, HLTA, IDLE, Card, crc_a

from sitegate.clock import ClockReading
from sitegate.domain.gate import Gate
from sitegate.domain.roster import read_csv
from sitegate.reader.sources import BadgeRead

UID4 = bytes.fromhex("04A1B2C3")
UID7 = bytes.fromhex("04112233445566")
UID10 = bytes.fromhex("0102030405060708090A")


@pytest.fixture
def source(chip, config, clock):
    from sitegate.reader.mfrc522_source import Mfrc522Source

    reader = Mfrc522Source(config.readers[0], clock)  # a ManualClock: sleeping on it moves it, no real wait
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
        if answer and len(answer) == 40:  # UID CLn and BCC: flip the BCC
            answer[32:] = [1 - bit for bit in answer[32:]]
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


# Several cards in the field at once (a badge in a wallet), enumerated with ISO/IEC 14443-3 anticollision.
ROSTER_A, ROSTER_B = bytes.fromhex("04A1B2C3"), bytes.fromhex("04A1B2C4")  # in the demo roster
FIELDS = {
    "4 and 7 bytes": [UID4, UID7],
    "differ only in the last bit": [UID7, bytes.fromhex("041122334455E6")],
    "differ only in the first bit": [UID4, bytes.fromhex("05A1B2C3")],
    "differ only in the cascade tag byte": [bytes.fromhex("08112233"), bytes.fromhex("11223344556677")],
    "3 cards, 4, 7 and 10 bytes": [UID4, UID7, UID10],
    "5 cards, mixed": [UID4, bytes.fromhex("05A1B2C3"), UID7, bytes.fromhex("041122334455E6"), UID10],
}


def cards(uids: list[bytes]) -> list[Card]:
    return [Card(uid, sak=0x20 if len(uid) > 4 else 0x08) for uid in uids]


def polls(source, times: int, every_s: float = 0.05) -> list:
    found = []
    for _ in range(times):
        source.clock.advance(every_s)
        if (read := source.poll()) is not None:
            found.append(read)
    return found


def test_collisions_as_the_standard_describes(chip, source):
    """Superposed ATQA with CollErr and the collided bit in CollReg; the card not selected falls back to IDLE."""
    first, second = cards([UID4, bytes.fromhex("05A1B2C3")])
    chip.present(first, second)
    atqa = source.protocol.transceive([0x26], last_bits=7)
    assert atqa.collision is None and atqa.data == [0x04, 0x00]  # same ATQA: superposed without a collision
    source.protocol.write(COLL, 0x00)  # ValuesAfterColl is set at reset: clear it, as anticollision() does
    answer = source.protocol.transceive([0x93, 0x20])
    assert chip.registers[ERROR] & COLL_ERR and answer.collision == 1  # the very first UID bit
    assert answer.data == [0, 0, 0, 0, 0]  # ValuesAfterColl cleared: every bit from the collision reads 0
    assert source.protocol.select() == bytes.fromhex("05A1B2C3")  # the card with a 1 at the collided bit
    assert (first.state, second.state) == ("IDLE", "ACTIVE")


def test_a_collided_atqa_still_means_cards(chip, source):
    chip.present(*cards([UID4, UID7]))  # ATQA 0x04 and 0x44: they differ in bit 7
    assert source.protocol.transceive([0x26], last_bits=7).collision == 7


@pytest.mark.parametrize("uids", FIELDS.values(), ids=FIELDS.keys())
def test_every_card_in_the_field_in_one_poll(chip, source, uids):
    field = cards(uids)
    chip.present(*field)
    read = source.poll()
    assert sorted(read.uids) == sorted(uid.hex().upper() for uid in uids)
    assert all(card.state == "HALT" for card in field)  # each halted once read


def test_at_most_five_cards_per_poll_the_rest_at_the_next(chip, source):
    uids = [bytes([0x04, 0xA1, 0xB2, n]) for n in range(6)]
    chip.present(*cards(uids))
    first = source.poll()
    assert len(first.uids) == 5
    source.clock.advance(0.05)
    second = source.poll()
    assert second.uid not in first.uids and sorted(second.uids) == sorted(uid.hex().upper() for uid in uids)


def test_a_poll_keeps_to_its_time_budget(chip, source, monkeypatch):
    """On a slow link (10 ms a frame here) a poll stops looking for more cards once its budget is spent: the
    cards left over answer the next polls."""
    uids = FIELDS["5 cards, mixed"]
    chip.present(*cards(uids))
    transceive = source.protocol.transceive

    def slow(*args, **kwargs):
        source.clock.advance(0.01)
        return transceive(*args, **kwargs)

    monkeypatch.setattr(source.protocol, "transceive", slow)
    start, first = source.clock.monotonic_ns(), source.poll()
    assert len(first.uids) < len(uids) and source.clock.monotonic_ns() - start < 0.2e9
    later = polls(source, 3, every_s=0)
    assert sorted(later[-1].uids) == sorted(uid.hex().upper() for uid in uids)


def test_a_wallet_held_still_is_one_read(chip, source):
    chip.present(*cards([UID4, UID7, UID10]))
    reads = [source.poll(), *polls(source, 40)]
    assert [len(read.uids) for read in reads] == [3]


def test_a_card_added_to_a_held_one_is_a_read_with_both(chip, source):
    held, added = cards([UID4, UID7])
    chip.present(held)
    assert source.poll().uids == (UID4.hex().upper(),)
    polls(source, 3)
    chip.cards.append(added)
    [read] = polls(source, 5)
    assert read.uids == (UID7.hex().upper(), UID4.hex().upper())  # the newcomer first


def test_a_card_taken_away_and_presented_again_is_read_again(chip, source):
    card = Card(UID7)
    chip.present(card)
    assert source.poll() is not None
    chip.present()
    assert polls(source, 8) == []  # 0.4 s away from the reader
    chip.present(card)
    assert [read.uid for read in polls(source, 4)] == [UID7.hex().upper()]


@pytest.fixture
def gate(device):
    device.roster.replace(read_csv(REPO / "firmware" / "data" / "demo_roster.csv").workers)
    return Gate(device.log, device.roster, device.config, lambda: ClockReading("synced", 0), lambda: 0)


@pytest.mark.parametrize(
    ("uids", "outcome", "signal"),
    [
        ([ROSTER_A, UID7], "registered", "registered_in"),
        ([UID7, UID4[:3] + b"\x00", ROSTER_A, UID10, bytes.fromhex("05A1B2C3")], "registered", "registered_in"),
        ([UID7, UID10], "unknown_badge", "unknown_badge"),
        ([ROSTER_A, ROSTER_B], "several_badges", "one_badge_at_a_time"),
        ([ROSTER_A, UID7, ROSTER_B], "several_badges", "one_badge_at_a_time"),
    ],
    ids=["badge and a bank card", "badge among 5 cards", "no badge", "two badges", "two badges and a card"],
)
def test_the_gate_chooses_the_badge_among_the_cards(chip, source, gate, device, caplog, uids, outcome, signal):
    chip.present(*cards(uids))
    with caplog.at_level("INFO", logger="sitegate.domain.gate"):
        result = gate.badge(source.poll())
    assert (result.outcome, result.signal) == (outcome, signal)
    registered = [r.data["badge_uid"] for r in device.log.records(kind="registration")]
    assert registered == ([ROSTER_A.hex().upper()] if outcome == "registered" else [])
    [seen] = [r.fields for r in caplog.records if r.fields["event"] == "cards_in_field"]
    assert sorted(seen["uids"]) == sorted(uid.hex().upper() for uid in uids)  # every UID logged


def test_a_badge_presented_again_at_once_hears_already_registered(chip, source, gate):
    card = Card(ROSTER_A)
    chip.present(card)
    assert gate.badge(source.poll()).signal == "registered_in"
    chip.present()
    polls(source, 8)
    chip.present(card)
    [again] = polls(source, 2)
    assert gate.badge(again).signal == "already_registered"


# The CRC step, as the datasheet has it (10.3.1.4: CalcCRC runs until another command replaces it).
def test_the_package_crc_twice_in_a_row_reads_the_preset_on_a_faithful_chip(source):
    """Why Protocol.crc does the step itself: the package never stops CalcCRC, so the next bytes join the running
    calculation and the second CRC reads back the 0x6363 preset (the fake is as unforgiving as the silicon)."""
    assert source.driver.CalulateCRC([0x04]) == crc_a([0x04])
    assert source.driver.CalulateCRC([HLTA, 0x00]) == [0x63, 0x63] != crc_a([HLTA, 0x00])


def test_our_crc_is_right_every_time_and_leaves_the_chip_idle(chip, source):
    frames = [[0x04], [HLTA, 0x00], [0x93, 0x70, 0x04, 0xA1, 0xB2, 0xC3, 0xD4], [HLTA, 0x00]]
    assert [source.protocol.crc(frame) for frame in frames] == [crc_a(frame) for frame in frames]
    assert chip.registers[COMMAND] & 0x0F == IDLE


def test_a_selected_card_is_halted_and_stays_silent(chip, source):
    card = Card(UID7)
    chip.present(card)
    assert source.protocol.request() and source.protocol.select() == UID7
    source.protocol.halt()
    assert card.state == "HALT" and not source.protocol.request()  # REQA no longer wakes it
