"""A register-level fake MFRC522 with ISO 14443-A cards, behind fake `spidev` and `RPi.GPIO` modules, so the
real `mfrc522` package code runs on any machine. Only what a reader of card UIDs uses is modelled.

Several cards may be in the field at once, as ISO/IEC 14443-3 describes: every card hears every frame; answers
sent together superpose bit by bit, and the first bit where they differ is a collision (CollErr in ErrorReg, its
position in CollReg; with ValuesAfterColl cleared, every bit from there on reads 0). Positions count the bits as
placed in the FIFO, RxAlign's offset included (1 = bit 0 of the first byte, 0 = the 32nd bit). A card in READY
that hears a SELECT for another UID falls back to IDLE (or to HALT if WUPA woke it from HALT).
"""

from __future__ import annotations

import sys
import types

COMMAND, COMM_IRQ, DIV_IRQ, ERROR = 0x01, 0x04, 0x05, 0x06
FIFO_DATA, FIFO_LEVEL, CONTROL, BIT_FRAMING, COLL = 0x09, 0x0A, 0x0C, 0x0D, 0x0E
CRC_H, CRC_L, VERSION = 0x21, 0x22, 0x37
IDLE, CALC_CRC, TRANSCEIVE, RESET = 0x00, 0x03, 0x0C, 0x0F
CASCADE = (0x93, 0x95, 0x97)
COLL_ERR, COLL_POS_NOT_VALID, VALUES_AFTER_COLL = 0x08, 0x20, 0x80


def crc_a(data) -> list[int]:
    crc = 0x6363
    for byte in data:
        byte ^= crc & 0xFF
        byte = (byte ^ (byte << 4)) & 0xFF
        crc = ((crc >> 8) ^ (byte << 8) ^ (byte << 3) ^ (byte >> 4)) & 0xFFFF
    return [crc & 0xFF, crc >> 8]


def to_bits(data: list[int]) -> list[int]:
    """Bytes as sent on air: each byte least significant bit first."""
    return [(byte >> bit) & 1 for byte in data for bit in range(8)]


def to_bytes(bits: list[int]) -> list[int]:
    return [sum(bit << i for i, bit in enumerate(bits[start : start + 8])) for start in range(0, len(bits), 8)]


class Card:
    """A type A card: IDLE, READY, ACTIVE or HALT; answers only every other REQA while held (as real ones do).

    receive() returns the answer as bits, or None for silence."""

    def __init__(self, uid: bytes, sak: int = 0x08) -> None:
        assert len(uid) in (4, 7, 10)
        self.uid = uid
        self.sak = sak
        self.state = "IDLE"
        self.level = 0
        self.woken_from_halt = False

    def levels(self) -> list[list[int]]:
        """UID CLn of each cascade level, with its BCC."""
        u = list(self.uid)
        parts = {4: [u], 7: [[0x88, *u[0:3]], u[3:7]], 10: [[0x88, *u[0:3]], [0x88, *u[3:6]], u[6:10]]}[len(u)]
        return [[*part, part[0] ^ part[1] ^ part[2] ^ part[3]] for part in parts]

    def atqa(self) -> list[int]:
        """Bits 7-8 give the UID size (single, double, triple); bit 3 says bit-frame anticollision."""
        return to_bits([0x04 | {4: 0x00, 7: 0x40, 10: 0x80}[len(self.uid)], 0x00])

    def fall_back(self) -> None:
        self.state = "HALT" if self.woken_from_halt else "IDLE"

    def receive(self, frame: list[int], bits: int) -> list[int] | None:
        if bits == 7 and frame in ([0x26], [0x52]):  # REQA, WUPA
            wakes = ("IDLE",) if frame == [0x26] else ("IDLE", "HALT")
            if self.state in wakes:
                self.woken_from_halt = self.state == "HALT"
                self.state, self.level = "READY", 0
                return self.atqa()
            if self.state in ("READY", "ACTIVE"):
                self.fall_back()  # a repeated REQA sends an active card back to idle, unanswered
            return None
        if self.state == "READY" and len(frame) >= 2 and frame[0] in CASCADE:
            return self._anticollision_or_select(frame)
        if frame[:2] == [0x50, 0x00] and self.state == "ACTIVE":  # HLTA
            self.state = "HALT"
        return None

    def _anticollision_or_select(self, frame: list[int]) -> list[int] | None:
        if CASCADE.index(frame[0]) != self.level:
            return None
        part = to_bits(self.levels()[self.level])
        if frame[1] == 0x70:  # SELECT: the whole UID CLn, BCC and CRC
            if len(frame) != 9 or crc_a(frame[:7]) != frame[7:]:
                return None
            if to_bits(frame[2:7]) != part:
                self.fall_back()
                return None
            if self.level < len(self.levels()) - 1:
                self.level += 1
                return to_bits([0x04, *crc_a([0x04])])
            self.state = "ACTIVE"
            return to_bits([self.sak, *crc_a([self.sak])])
        known = ((frame[1] >> 4) - 2) * 8 + (frame[1] & 0x07)  # NVB: whole bytes (SEL, NVB counted), then bits
        if to_bits(frame[2:])[:known] != part[:known]:
            return None  # not this card's UID: it stays silent and READY
        return part[known:]


class FakeChip:
    def __init__(self) -> None:
        self.registers = [0] * 64
        self.fifo: list[int] = []
        self.cards: list[Card] = []
        self.hung = False  # stops answering until its reset pin goes low then high
        self.version = 0x92
        self.transceives = 0
        self.pull_after: int | None = None  # remove the card after this many more frames (pulled mid-read)
        self.resets = 0

    def present(self, *cards: Card | None) -> None:
        """These cards, and only these, are in the field now (each newly powered: IDLE)."""
        self.cards = [card for card in cards if card is not None]
        for card in self.cards:
            card.state = "IDLE"

    def reset_pin(self, previous: int, value: int) -> None:
        if previous == 0 and value == 1:
            self.hung = False
            self.resets += 1
            self.registers = [0] * 64

    def xfer2(self, data: list[int]) -> list[int]:
        address = (data[0] >> 1) & 0x3F
        if data[0] & 0x80:
            return [0, self.read(address)]
        self.write(address, data[1])
        return [0, 0]

    def read(self, address: int) -> int:
        if self.hung:
            return 0x00
        if address == VERSION:
            return self.version
        if address == FIFO_DATA:
            return self.fifo.pop(0) if self.fifo else 0
        if address == FIFO_LEVEL:
            return len(self.fifo)
        return self.registers[address]

    def write(self, address: int, value: int) -> None:
        if self.hung:
            return
        if address in (COMM_IRQ, DIV_IRQ):
            bits = value & 0x7F
            self.registers[address] = (
                (self.registers[address] | bits) if value & 0x80 else (self.registers[address] & ~bits)
            )
            return
        if address == FIFO_DATA:
            self.fifo.append(value)
            return
        if address == FIFO_LEVEL:
            if value & 0x80:
                self.fifo.clear()
            return
        self.registers[address] = value
        if address == COMMAND:
            if value == RESET:
                self.registers = [0] * 64
                self.fifo.clear()
            elif value == CALC_CRC:
                low, high = crc_a(self.fifo)
                self.fifo.clear()
                self.registers[CRC_L], self.registers[CRC_H] = low, high
                self.registers[DIV_IRQ] |= 0x04
        if address == BIT_FRAMING and value & 0x80 and self.registers[COMMAND] == TRANSCEIVE:
            self._transceive(value & 0x07)

    def _transceive(self, last_bits: int) -> None:
        frame, self.fifo = list(self.fifo), []
        self.transceives += 1
        if self.pull_after is not None:
            self.pull_after -= 1
            if self.pull_after < 0:
                self.cards, self.pull_after = [], None
        answers = [bits for card in self.cards if (bits := card.receive(frame, last_bits)) is not None]
        self.registers[ERROR] = 0
        self.registers[CONTROL] = 0
        self.registers[COLL] = (self.registers[COLL] & VALUES_AFTER_COLL) | COLL_POS_NOT_VALID
        if not answers:
            self.registers[COMM_IRQ] |= 0x01  # timer: nobody answered
            return
        rx_align = (self.registers[BIT_FRAMING] >> 4) & 0x07
        bits = [0] * rx_align + self._superposed(answers, rx_align)
        self.fifo = to_bytes(bits)
        self.registers[CONTROL] = len(bits) % 8  # RxLastBits
        self.registers[COMM_IRQ] |= 0x30  # received, idle

    def _superposed(self, answers: list[list[int]], rx_align: int) -> list[int]:
        """Answers sent at once, bit by bit; the first bit where they differ is the collision."""
        received: list[int] = []
        collided = False
        for index in range(max(len(bits) for bits in answers)):
            values = {bits[index] for bits in answers if index < len(bits)}
            if len(values) > 1 and not collided:
                collided = True
                self.registers[ERROR] |= COLL_ERR
                position = (rx_align + index + 1) % 32
                self.registers[COLL] = (self.registers[COLL] & VALUES_AFTER_COLL) | position
            cleared = collided and not self.registers[COLL] & VALUES_AFTER_COLL
            received.append(0 if cleared else max(values))
        return received


def install(chip: FakeChip, monkeypatch=None) -> None:
    """Put fake `spidev` and `RPi.GPIO` modules where the real `mfrc522` package imports them
    (through pytest's monkeypatch in tests; for good in a benchmark's own process)."""
    setitem = monkeypatch.setitem if monkeypatch else sys.modules.__class__.__setitem__
    delitem = monkeypatch.delitem if monkeypatch else sys.modules.__class__.__delitem__
    spidev = types.ModuleType("spidev")

    class SpiDev:
        max_speed_hz = 0

        def open(self, bus, device):
            self.bus, self.device = bus, device

        def xfer2(self, data):
            return chip.xfer2(data)

        def close(self):
            pass

    spidev.SpiDev = SpiDev
    gpio = types.ModuleType("RPi.GPIO")
    gpio.BCM, gpio.BOARD, gpio.OUT, gpio.IN = 11, 10, 0, 1
    state = {"mode": None, "pins": {}}
    gpio.getmode = lambda: state["mode"]
    gpio.setmode = lambda mode: state.__setitem__("mode", mode)
    gpio.setwarnings = lambda flag: None
    gpio.setup = lambda pin, direction: state["pins"].setdefault(pin, 1)
    gpio.cleanup = lambda: None

    def output(pin, value):
        previous = state["pins"].get(pin, 1)
        state["pins"][pin] = value
        chip.reset_pin(previous, value)

    gpio.output = output
    rpi = types.ModuleType("RPi")
    rpi.GPIO = gpio
    setitem(sys.modules, "spidev", spidev)
    setitem(sys.modules, "RPi", rpi)
    setitem(sys.modules, "RPi.GPIO", gpio)
    for name in [n for n in sys.modules if n == "mfrc522" or n.startswith("mfrc522.")]:
        delitem(sys.modules, name)
