"""A register-level fake MFRC522 with ISO 14443-A cards, behind fake `spidev` and `RPi.GPIO` modules, so the
real `mfrc522` package code runs on any machine. Written from the NXP MFRC522 datasheet (rev. 3.9, sections 9 and
10) and ISO/IEC 14443-3, not from our driver: where the silicon is unforgiving, so is this fake.

The chip, as the datasheet describes it:
- registers start at their reset values (ModeReg 0x3F: CRC preset 0xFFFF; TxControlReg 0x80: antenna off;
  CollReg 0xA0: ValuesAfterColl set; ComIrqReg 0x14; CRCResultReg 0xFFFF), again after SoftReset or the reset pin;
- a command runs until it ends by itself or another command replaces it (10.3.1). CalcCRC never ends by itself:
  while it runs, every byte written to the FIFO is added to the running CRC, CRCIRq (DivIrqReg bit 2) is set once
  the FIFO is empty and stays set until written 0 with Set2 = 0; the preset is loaded when the command starts, from
  ModeReg's CRCPreset. Transceive never ends by itself either: StartSend transmits, the receiver sets RxIRq (and
  ErrIRq on an error), and it waits for the next StartSend. Only a command that ends by itself sets IdleIRq;
  writing Idle does not. A reserved command code goes to Idle and sets IdleIRq;
- ComIrqReg and DivIrqReg are written with Set1/Set2 (bit 7): 1 sets the marked bits, 0 clears the marked bits;
- ErrorReg is cleared when a command starts; the FIFO holds 64 bytes (more is BufferOvfl, the byte lost);
  FlushBuffer empties it and clears BufferOvfl;
- the timer interrupts a transceive nobody answers only when TModeReg's TAuto starts it at the end of
  transmission; without it the chip just waits;
- with both antenna drivers off there is no field: cards lose power and state.
What a gate reader never uses (hardware CRC on transmit or receive, MFAuthent, Transmit, Receive, Mem, power down,
MSB-first CRC) raises NotImplementedError, so a driver that starts using it is noticed rather than answered falsely.

The cards: several may be in the field at once. Every card hears every frame; answers sent together superpose bit
by bit, and the first bit where they differ is a collision (CollErr in ErrorReg, its position in CollReg; with
ValuesAfterColl cleared, every bit from there on reads 0). Positions count the bits as placed in the FIFO, RxAlign's
offset included (1 = bit 0 of the first byte, 0 = the 32nd bit). A card checks the CRC_A of SELECT and HLTA; in
READY or ACTIVE, a frame it does not expect (a SELECT for another UID, a wrong CRC) sends it back to IDLE (or to
HALT if WUPA woke it from HALT).
"""

from __future__ import annotations

import sys
import types

# Registers (datasheet 9.2).
COMMAND, COMM_IRQ, DIV_IRQ, ERROR, STATUS1, STATUS2 = 0x01, 0x04, 0x05, 0x06, 0x07, 0x08
FIFO_DATA, FIFO_LEVEL, CONTROL, BIT_FRAMING, COLL = 0x09, 0x0A, 0x0C, 0x0D, 0x0E
MODE, TX_MODE, RX_MODE, TX_CONTROL = 0x11, 0x12, 0x13, 0x14
CRC_H, CRC_L, T_MODE, VERSION = 0x21, 0x22, 0x2A, 0x37
# Commands (datasheet 10.3).
IDLE, CALC_CRC, NO_CMD_CHANGE, TRANSCEIVE, SOFT_RESET = 0x00, 0x03, 0x07, 0x0C, 0x0F
UNMODELLED = {0x01: "Mem", 0x02: "Generate RandomID", 0x04: "Transmit", 0x08: "Receive", 0x0E: "MFAuthent"}
RESERVED = {0x05, 0x06, 0x09, 0x0A, 0x0B, 0x0D}
# Bits.
TX_IRQ, RX_IRQ, IDLE_IRQ, ERR_IRQ, TIMER_IRQ = 0x40, 0x20, 0x10, 0x02, 0x01  # ComIrqReg
CRC_IRQ = 0x04  # DivIrqReg
TEMP_ERR, BUFFER_OVFL, COLL_ERR = 0x40, 0x10, 0x08  # ErrorReg
COLL_POS_NOT_VALID, VALUES_AFTER_COLL = 0x20, 0x80  # CollReg
T_AUTO, POWER_DOWN, FLUSH_BUFFER, START_SEND, SET = 0x80, 0x10, 0x80, 0x80, 0x80
FIFO_SIZE = 64
CRC_PRESETS = (0x0000, 0x6363, 0xA671, 0xFFFF)  # ModeReg CRCPreset[1:0]
RESET_VALUES = {COMMAND: 0x20, 0x02: 0x80, COMM_IRQ: 0x14, STATUS1: 0x21, 0x0B: 0x08, CONTROL: 0x10, COLL: 0xA0}
RESET_VALUES |= {MODE: 0x3F, TX_CONTROL: 0x80, 0x16: 0x10, 0x17: 0x84, 0x18: 0x84, 0x19: 0x4D, 0x1F: 0xEB}
RESET_VALUES |= {CRC_H: 0xFF, CRC_L: 0xFF, 0x24: 0x26, 0x26: 0x48, 0x27: 0x88, 0x28: 0x20, 0x29: 0x20}
CASCADE = (0x93, 0x95, 0x97)
REQA, WUPA, HLTA = 0x26, 0x52, 0x50


def crc_update(crc: int, byte: int) -> int:
    """ISO/IEC 14443-3 annex B: one byte into CRC_A."""
    byte ^= crc & 0xFF
    byte = (byte ^ (byte << 4)) & 0xFF
    return ((crc >> 8) ^ (byte << 8) ^ (byte << 3) ^ (byte >> 4)) & 0xFFFF


def crc_a(data) -> list[int]:
    crc = 0x6363
    for byte in data:
        crc = crc_update(crc, byte)
    return [crc & 0xFF, crc >> 8]


def to_bits(data: list[int]) -> list[int]:
    """Bytes as sent on air: each byte least significant bit first."""
    return [(byte >> bit) & 1 for byte in data for bit in range(8)]


def to_bytes(bits: list[int]) -> list[int]:
    return [sum(bit << i for i, bit in enumerate(bits[start : start + 8])) for start in range(0, len(bits), 8)]


class Card:
    """A type A card: IDLE, READY, ACTIVE or HALT (ISO/IEC 14443-3, 6.3).

    receive() returns the answer as bits, or None for silence."""

    def __init__(self, uid: bytes, sak: int = 0x08) -> None:
        assert len(uid) in (4, 7, 10)
        self.uid = uid
        self.sak = sak
        self.power_up()

    def power_up(self) -> None:
        self.state, self.level, self.woken_from_halt = "IDLE", 0, False

    def levels(self) -> list[list[int]]:
        """UID CLn of each cascade level, with its BCC."""
        u = list(self.uid)
        parts = {4: [u], 7: [[0x88, *u[0:3]], u[3:7]], 10: [[0x88, *u[0:3]], [0x88, *u[3:6]], u[6:10]]}[len(u)]
        return [[*part, part[0] ^ part[1] ^ part[2] ^ part[3]] for part in parts]

    def atqa(self) -> list[int]:
        """Bits 7-8 give the UID size (single, double, triple); bit 3 says bit-frame anticollision."""
        return to_bits([0x04 | {4: 0x00, 7: 0x40, 10: 0x80}[len(self.uid)], 0x00])

    def fall_back(self) -> None:
        """An unexpected frame in READY or ACTIVE: back to IDLE, or to HALT if WUPA woke the card from HALT."""
        self.state = "HALT" if self.woken_from_halt else "IDLE"

    def receive(self, frame: list[int], bits: int) -> list[int] | None:
        if bits == 7 and frame in ([REQA], [WUPA]):
            wakes = ("IDLE",) if frame == [REQA] else ("IDLE", "HALT")
            if self.state in wakes:
                self.woken_from_halt = self.state == "HALT"
                self.state, self.level = "READY", 0
                return self.atqa()
            if self.state in ("READY", "ACTIVE"):
                self.fall_back()  # a repeated REQA sends a selected card back, unanswered
            return None
        if self.state == "READY" and len(frame) >= 2 and frame[0] == CASCADE[self.level]:
            return self._anticollision_or_select(frame)
        if self.state == "ACTIVE" and frame == [HLTA, 0x00, *crc_a([HLTA, 0x00])]:
            self.state = "HALT"
        elif self.state in ("READY", "ACTIVE"):
            self.fall_back()  # any other frame, a HLTA with a wrong CRC included
        return None

    def _anticollision_or_select(self, frame: list[int]) -> list[int] | None:
        part = to_bits(self.levels()[self.level])
        if frame[1] == 0x70:  # SELECT: the whole UID CLn, BCC and CRC
            if len(frame) != 9 or crc_a(frame[:7]) != frame[7:] or to_bits(frame[2:7]) != part:
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
        self.cards: list[Card] = []
        self.hung = False  # stops answering until its reset pin goes low then high
        self.version = 0x92
        self.transceives = 0
        self.pull_after: int | None = None  # remove the card after this many more frames (pulled mid-read)
        self.resets = 0
        self.power_on_reset()

    def power_on_reset(self) -> None:
        """Registers at their reset values, FIFO empty, Idle, antenna off (datasheet 8.8, 9.3)."""
        self.registers = [RESET_VALUES.get(address, 0) for address in range(64)]
        self.fifo: list[int] = []
        self.crc = CRC_PRESETS[self.registers[MODE] & 0x03]

    @property
    def command(self) -> int:
        return self.registers[COMMAND] & 0x0F

    @property
    def field_on(self) -> bool:
        return bool(self.registers[TX_CONTROL] & 0x03)

    def present(self, *cards: Card | None) -> None:
        """These cards, and only these, are in the field now (each newly powered: IDLE)."""
        self.cards = [card for card in cards if card is not None]
        for card in self.cards:
            card.power_up()

    def reset_pin(self, previous: int, value: int) -> None:
        if previous == 0 and value == 1:
            self.hung = False
            self.resets += 1
            self.power_on_reset()

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
        if address in (COMM_IRQ, DIV_IRQ):  # Set1/Set2: 1 sets the marked bits, 0 clears them
            marked = value & 0x7F
            self.registers[address] = (
                self.registers[address] | marked if value & SET else self.registers[address] & ~marked
            )
        elif address == FIFO_DATA:
            self._push(value)
        elif address == FIFO_LEVEL:
            if value & FLUSH_BUFFER:
                self.fifo.clear()
                self.registers[ERROR] &= ~BUFFER_OVFL
        elif address == COMMAND:
            self._start(value)
        elif address == TX_CONTROL:
            was_on, self.registers[address] = self.field_on, value
            if self.field_on and not was_on:
                for card in self.cards:  # the field comes up: every card powers up afresh
                    card.power_up()
        elif address in (ERROR, STATUS1, STATUS2, CRC_H, CRC_L, VERSION):
            return  # read-only
        elif address == CONTROL:
            return  # only TStopNow/TStartNow are writable, and the timer is not modelled beyond TAuto
        else:
            self.registers[address] = value
            if address == BIT_FRAMING and value & START_SEND and self.command == TRANSCEIVE:
                self._transceive(value & 0x07)

    def _push(self, byte: int) -> None:
        if len(self.fifo) >= FIFO_SIZE:
            self._error(BUFFER_OVFL)
            return
        self.fifo.append(byte)
        if self.command == CALC_CRC:
            self._calculate()

    def _error(self, bits: int) -> None:
        self.registers[ERROR] |= bits
        self.registers[COMM_IRQ] |= ERR_IRQ

    def _start(self, value: int) -> None:
        if value & POWER_DOWN:
            raise NotImplementedError("the fake MFRC522 does not model soft power-down")
        code = value & 0x0F
        if code == NO_CMD_CHANGE:
            self.registers[COMMAND] = (value & 0x30) | self.command
            return
        if code in UNMODELLED:
            raise NotImplementedError(f"the fake MFRC522 does not model the {UNMODELLED[code]} command")
        self.registers[ERROR] &= TEMP_ERR  # starting a command clears every error but TempErr
        if code == SOFT_RESET:
            self.power_on_reset()
            return
        if code in RESERVED:  # an unknown command: back to Idle at once, as a command that ended
            self.registers[COMMAND] = value & 0x30
            self.registers[COMM_IRQ] |= IDLE_IRQ
            return
        self.registers[COMMAND] = (value & 0x30) | code
        if code == CALC_CRC:
            if self.registers[MODE] & 0x80:
                raise NotImplementedError("the fake MFRC522 does not model MSBFirst CRC")
            self.crc = CRC_PRESETS[self.registers[MODE] & 0x03]  # the preset is loaded when the command starts
            self._calculate()

    def _calculate(self) -> None:
        """CalcCRC consumes the FIFO as bytes arrive; with the FIFO empty, all data is processed: CRCIRq."""
        while self.fifo:
            self.crc = crc_update(self.crc, self.fifo.pop(0))
        self.registers[CRC_L], self.registers[CRC_H] = self.crc & 0xFF, self.crc >> 8
        self.registers[DIV_IRQ] |= CRC_IRQ

    def _transceive(self, last_bits: int) -> None:
        if (self.registers[TX_MODE] | self.registers[RX_MODE]) & 0x80:
            raise NotImplementedError("the fake MFRC522 does not model TxCRCEn/RxCRCEn (hardware CRC)")
        if (self.registers[TX_MODE] | self.registers[RX_MODE]) & 0x70:
            raise NotImplementedError("the fake MFRC522 models 106 kBd only")
        frame, self.fifo = list(self.fifo), []
        self.registers[COMM_IRQ] |= TX_IRQ
        self.transceives += 1
        if self.pull_after is not None:
            self.pull_after -= 1
            if self.pull_after < 0:
                self.cards, self.pull_after = [], None
        powered = self.cards if self.field_on else []
        answers = [bits for card in powered if (bits := card.receive(frame, last_bits)) is not None]
        self.registers[ERROR] &= TEMP_ERR
        self.registers[CONTROL] &= ~0x07
        self.registers[COLL] = (self.registers[COLL] & VALUES_AFTER_COLL) | COLL_POS_NOT_VALID
        if not answers:
            if self.registers[T_MODE] & T_AUTO:
                self.registers[COMM_IRQ] |= TIMER_IRQ  # nobody answered before the timer ran out
            return  # without TAuto the timer never started: the chip waits for ever
        rx_align = (self.registers[BIT_FRAMING] >> 4) & 0x07
        bits = [0] * rx_align + self._superposed(answers, rx_align)
        self.fifo = to_bytes(bits)
        self.registers[CONTROL] |= len(bits) % 8  # RxLastBits
        self.registers[COMM_IRQ] |= RX_IRQ  # Transceive goes on (receiving done): no IdleIRq
        if self.registers[ERROR]:
            self.registers[COMM_IRQ] |= ERR_IRQ

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
