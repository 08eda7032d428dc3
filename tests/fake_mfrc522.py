"""A register-level fake MFRC522 with ISO 14443-A cards, behind fake `spidev` and `RPi.GPIO` modules, so the
real `mfrc522` package code runs on any machine. Only what a reader of card UIDs uses is modelled."""

from __future__ import annotations

import sys
import types

COMMAND, COMM_IRQ, DIV_IRQ, ERROR = 0x01, 0x04, 0x05, 0x06
FIFO_DATA, FIFO_LEVEL, CONTROL, BIT_FRAMING = 0x09, 0x0A, 0x0C, 0x0D
CRC_H, CRC_L, VERSION = 0x21, 0x22, 0x37
IDLE, CALC_CRC, TRANSCEIVE, RESET = 0x00, 0x03, 0x0C, 0x0F


def crc_a(data) -> list[int]:
    crc = 0x6363
    for byte in data:
        byte ^= crc & 0xFF
        byte = (byte ^ (byte << 4)) & 0xFF
        crc = ((crc >> 8) ^ (byte << 8) ^ (byte << 3) ^ (byte >> 4)) & 0xFFFF
    return [crc & 0xFF, crc >> 8]


class Card:
    """A type A card: IDLE, READY, ACTIVE or HALT; answers only every other REQA while held (as real ones do)."""

    def __init__(self, uid: bytes, sak: int = 0x08) -> None:
        assert len(uid) in (4, 7, 10)
        self.uid = uid
        self.sak = sak
        self.state = "IDLE"
        self.level = 0

    def levels(self) -> list[list[int]]:
        u = list(self.uid)
        if len(u) == 4:
            return [u]
        if len(u) == 7:
            return [[0x88, *u[0:3]], u[3:7]]
        return [[0x88, *u[0:3]], [0x88, *u[3:6]], u[6:10]]

    def receive(self, frame: list[int], bits: int) -> list[int] | None:
        if bits == 7 and frame == [0x26]:  # REQA
            if self.state == "IDLE":
                self.state, self.level = "READY", 0
                return [0x44 if len(self.uid) > 4 else 0x04, 0x00]
            if self.state in ("READY", "ACTIVE"):
                self.state = "IDLE"  # a repeated REQA sends an active card back to idle, unanswered
            return None
        if bits == 7 and frame == [0x52]:  # WUPA
            if self.state in ("IDLE", "HALT"):
                self.state, self.level = "READY", 0
                return [0x44 if len(self.uid) > 4 else 0x04, 0x00]
            return None
        if self.state == "READY" and len(frame) == 2 and frame[1] == 0x20:
            level = (0x93, 0x95, 0x97).index(frame[0])
            part = self.levels()[level]
            return [*part, part[0] ^ part[1] ^ part[2] ^ part[3]]
        if self.state == "READY" and len(frame) == 9 and frame[1] == 0x70:
            level = (0x93, 0x95, 0x97).index(frame[0])
            if crc_a(frame[:7]) != frame[7:]:
                return None
            last = level == len(self.levels()) - 1
            if not last:
                return [0x04, *crc_a([0x04])]
            self.state = "ACTIVE"
            return [self.sak, *crc_a([self.sak])]
        if frame[:2] == [0x50, 0x00] and self.state == "ACTIVE":  # HLTA
            self.state = "HALT"
            return None
        return None


class FakeChip:
    def __init__(self) -> None:
        self.registers = [0] * 64
        self.fifo: list[int] = []
        self.card: Card | None = None
        self.hung = False  # stops answering until its reset pin goes low then high
        self.version = 0x92
        self.transceives = 0
        self.pull_after: int | None = None  # remove the card after this many more frames (pulled mid-read)
        self.resets = 0

    def present(self, card: Card | None) -> None:
        self.card = card
        if card is not None:
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
                self.card, self.pull_after = None, None
        answer = self.card.receive(frame, last_bits) if self.card else None
        self.registers[ERROR] = 0
        self.registers[CONTROL] = 0
        if answer is None:
            self.registers[COMM_IRQ] |= 0x01  # timer: nobody answered
        else:
            self.fifo = list(answer)
            self.registers[COMM_IRQ] |= 0x30  # received, idle


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
