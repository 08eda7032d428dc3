"""The MFRC522 badge source, on the `mfrc522` package's low-level MFRC522 class.

The package gives register access over SPI and chip initialisation; this module does the card protocol (and the
CRC step) itself, because the package's read() spins the CPU while no card is present, stops at cascade level 1
(so 7-byte UIDs of DESFire and NTAG badges come back truncated) and reads nothing when two cards answer at once:
- our own transceive stops on the chip's timer interrupt (no card) instead of spinning;
- every card in the field is enumerated (a badge in a wallet beside bank and transport cards): REQA, then
  ISO/IEC 14443-3 bit-wise anticollision (on a collision, follow the card with a 1 at CollReg's position) and
  SELECT through cascade levels 1 to 3 (4, 7 and 10-byte UIDs, BCC checked and never part of the UID), then HLTA,
  and REQA again until no card answers; at most MAX_CARDS cards within POLL_BUDGET_S per poll;
- a halted card stays silent to REQA while it stays in the field: each poll asks the cards seen before by name
  (WUPA, SELECT of their UID, HLTA again), so a card held is one read and a card taken away and presented again is a
  new read (the gate then says "already registered"); a card missing for one poll only (some answer every other
  request) is still the same presentation;
- CRC_A is computed as the datasheet says (10.3.1.4): Idle first, CRCIRq cleared alone, CalcCRC, wait, Idle again.
  The package's CalulateCRC never stops CalcCRC (which runs until another command replaces it) and its
  ClearBitMask cannot clear CRCIRq: the second CRC in a row reads back the preset, a HLTA goes out with a wrong CRC,
  the card is never halted and a wallet's second card is never reached;
- a periodic health check reads the version register; a chip that stops answering is reset through its
  reset pin (low, then high, then re-initialised: re-creating the driver object does not recover it).
Imported only when a reader is configured with source = "mfrc522".
"""

from __future__ import annotations

import logging
import math
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass

from sitegate.clock import Clock
from sitegate.config import ReaderConfig
from sitegate.jsonlog import event
from sitegate.reader.sources import BadgeRead, BadRead

logger = logging.getLogger("sitegate.reader")

REQA, WUPA, HLTA = 0x26, 0x52, 0x50
CASCADE = (0x93, 0x95, 0x97)
CASCADE_TAG = 0x88
GENUINE_VERSIONS = {0x88, 0x90, 0x91, 0x92, 0x12, 0xB2}  # 0x88: FM17522 clone; 0x12, 0xB2: common clones
MAX_CARDS = 5  # cards enumerated per poll: a wallet rarely holds more contactless cards
POLL_BUDGET_S = 0.1  # one poll never takes longer (cards left over answer the next poll)
GONE_AFTER_S = 0.3  # unseen this long (and for 3 poll intervals), a card has left the field
HEALTH_EVERY_S = 5.0

# Registers and commands (MFRC522 datasheet, section 9).
COMMAND, COMM_IRQ, DIV_IRQ, ERROR = 0x01, 0x04, 0x05, 0x06
FIFO_DATA, FIFO_LEVEL, BIT_FRAMING, COLL = 0x09, 0x0A, 0x0D, 0x0E
CRC_RESULT_HIGH, CRC_RESULT_LOW, VERSION = 0x21, 0x22, 0x37
IDLE, CALC_CRC, TRANSCEIVE = 0x00, 0x03, 0x0C
RX_IRQ, IDLE_IRQ, ERR_IRQ, TIMER_IRQ = 0x20, 0x10, 0x02, 0x01
CRC_IRQ = 0x04  # DivIrqReg; written alone (Set2 = 0), it clears exactly this bit
COLL_ERR, RX_ERRORS = 0x08, 0x13  # ErrorReg: collision; buffer overflow, parity, protocol
COLL_POS_NOT_VALID = 0x20


class ChipFault(Exception):
    """The chip does not answer as an MFRC522 does."""


@dataclass(frozen=True)
class Answer:
    data: list[int]
    collision: int | None = None  # CollReg's position of the first collided bit (FIFO bits, RxAlign included)


def cascade_parts(uid: bytes) -> list[list[int]]:
    """The UID CLn of each cascade level, with its BCC: how a card of this UID answers anticollision."""
    u = list(uid)
    parts = {4: [u], 7: [[CASCADE_TAG, *u[:3]], u[3:]], 10: [[CASCADE_TAG, *u[:3]], [CASCADE_TAG, *u[3:6]], u[6:]]}
    return [[*part, part[0] ^ part[1] ^ part[2] ^ part[3]] for part in parts[len(u)]]


class Protocol:
    """ISO/IEC 14443-3 type A card selection over the package's register access."""

    def __init__(self, driver, max_wait_reads: int = 50) -> None:
        self.driver = driver
        self.max_wait_reads = max_wait_reads

    def read(self, register: int) -> int:
        return self.driver.Read_MFRC522(register)

    def write(self, register: int, value: int) -> None:
        self.driver.Write_MFRC522(register, value)

    def transceive(self, data: list[int], last_bits: int = 0, rx_align: int = 0) -> Answer | None:
        """Send a frame (last_bits: valid bits of its last byte) and return the answer, its first received bit
        placed at bit rx_align of the first byte; None when no card answered (timer) or on a receive error."""
        framing = (rx_align & 0x07) << 4 | (last_bits & 0x07)
        self.write(COMMAND, IDLE)
        self.write(COMM_IRQ, 0x7F)  # clear all interrupt flags
        self.write(FIFO_LEVEL, 0x80)  # flush the FIFO
        for byte in data:
            self.write(FIFO_DATA, byte)
        self.write(BIT_FRAMING, framing)
        self.write(COMMAND, TRANSCEIVE)
        self.write(BIT_FRAMING, 0x80 | framing)  # StartSend
        for _ in range(self.max_wait_reads):
            irq = self.read(COMM_IRQ)
            if irq & (RX_IRQ | IDLE_IRQ):
                break
            if irq & (TIMER_IRQ | ERR_IRQ):
                self.write(BIT_FRAMING, 0)
                return None
        else:
            raise ChipFault("no interrupt from the chip after a transceive")
        self.write(BIT_FRAMING, 0)
        error = self.read(ERROR)
        if error & RX_ERRORS:
            return None
        collision = None
        if error & COLL_ERR:
            position = self.read(COLL)
            if position & COLL_POS_NOT_VALID:
                return None
            collision = position & 0x1F or 32
        count = self.read(FIFO_LEVEL)
        return Answer([self.read(FIFO_DATA) for _ in range(count)], collision)

    def crc(self, data: list[int]) -> list[int]:
        """CRC_A of a frame (low byte first), by the chip's coprocessor, stopped again once read."""
        self.write(COMMAND, IDLE)  # ends whatever ran before: a CalcCRC left running would swallow our bytes
        self.write(DIV_IRQ, CRC_IRQ)
        self.write(FIFO_LEVEL, 0x80)
        for byte in data:
            self.write(FIFO_DATA, byte)
        self.write(COMMAND, CALC_CRC)
        for _ in range(self.max_wait_reads):
            if self.read(DIV_IRQ) & CRC_IRQ:
                break
        else:
            raise ChipFault("the chip never finished a CRC")
        self.write(COMMAND, IDLE)
        return [self.read(CRC_RESULT_LOW), self.read(CRC_RESULT_HIGH)]

    def request(self, command: int = REQA) -> bool:
        """REQA (idle cards) or WUPA (idle and halted cards): does any card answer? A collided ATQA is an answer."""
        return self.transceive([command], last_bits=7) is not None

    def anticollision(self, level: int) -> list[int] | None:
        """UID CLn and BCC of one card at this cascade level. On a collision, the bits known so far plus a 1 at the
        collided bit are sent again (NVB counting them): only the cards matching them answer the rest."""
        self.write(COLL, 0x00)  # ValuesAfterColl cleared: bits received after a collision read 0
        part, known = [0] * 5, 0
        for _ in range(33):  # each collision teaches at least one bit of the 32
            whole, bits = divmod(known, 8)
            sent = [*part[:whole], part[whole] & ((1 << bits) - 1)] if bits else part[:whole]
            answer = self.transceive([level, (2 + whole) << 4 | bits, *sent], last_bits=bits, rx_align=bits)
            if answer is None or whole + len(answer.data) != 5:
                return None
            for index, byte in enumerate(answer.data):
                mine = (1 << bits) - 1 if index == 0 else 0  # the first byte's low bits are ours, not received
                part[whole + index] = (part[whole + index] & mine) | (byte & ~mine & 0xFF)
            if answer.collision is None:
                return part
            collided = whole * 8 + answer.collision - 1  # counted from the first bit of UID CLn
            if not known <= collided < 32:
                return None
            part[collided // 8] |= 1 << (collided % 8)
            known = collided + 1
        return None

    def select_part(self, level: int, part: list[int]) -> int | None:
        """SELECT one UID CLn; the SAK, or None when no card (or a corrupt answer) came back."""
        frame = [level, 0x70, *part]
        answer = self.transceive(frame + self.crc(frame))
        if answer is None or answer.collision is not None or len(answer.data) != 3:
            return None
        sak = answer.data
        return sak[0] if self.crc(sak[:1]) == sak[1:] else None

    def select(self) -> bytes | None:
        """Anticollision and SELECT, level after level; one card's full UID, or None if it went away."""
        uid: list[int] = []
        for level in CASCADE:
            part = self.anticollision(level)
            if part is None or part[0] ^ part[1] ^ part[2] ^ part[3] != part[4]:
                return None  # gone, or a BCC mismatch: a corrupt read
            sak = self.select_part(level, part)
            if sak is None:
                return None
            if sak & 0x04:  # UID not complete: the first byte is the cascade tag
                if part[0] != CASCADE_TAG:
                    return None
                uid += part[1:4]
                continue
            return bytes(uid + part[:4])
        return None

    def still_there(self, uid: bytes) -> bool:
        """Is this (halted) card still in the field? WUPA, SELECT it by its UID, HLTA it again."""
        if not self.request(WUPA):
            return False
        parts = cascade_parts(uid)
        if any(self.select_part(level, part) is None for level, part in zip(CASCADE[: len(parts)], parts, strict=True)):
            return False
        self.halt()
        return True

    def enumerate(self, within_budget: Callable[[], bool]) -> tuple[list[bytes], bool]:
        """Every card answering REQA, each selected then halted, until none answers; and whether a card
        answered but could not be read (pulled away mid-read, or corrupt)."""
        found: list[bytes] = []
        while len(found) < MAX_CARDS and within_budget() and self.request(REQA):
            uid = self.select()
            if uid is None or uid in found:  # unreadable, or a card that ignores HLTA
                return found, uid is None
            self.halt()
            found.append(uid)
        return found, False

    def halt(self) -> None:
        frame = [HLTA, 0x00]
        self.transceive(frame + self.crc(frame))  # a halted card does not answer: no answer is success

    def version(self) -> int:
        return self.read(VERSION)


class Mfrc522Source:
    def __init__(self, reader: ReaderConfig, clock: Clock) -> None:
        import RPi.GPIO as gpio  # noqa: N813 - only on the device (or behind the tests' fake)
        from mfrc522 import MFRC522

        self.config = reader
        self.name = reader.name
        self.gpio = gpio
        self.sleep = clock.wait
        self.monotonic = lambda: clock.monotonic_ns() / 1e9
        self.online = False
        gpio.setwarnings(False)
        gpio.setmode(gpio.BCM)
        self.driver = MFRC522(bus=reader.spi_bus, device=reader.spi_device, pin_mode=gpio.BCM, pin_rst=reader.reset_pin)
        self.protocol = Protocol(self.driver)
        self.in_field: dict[bytes, float] = {}  # UID -> when it was last seen (monotonic seconds)
        self.gone_after_s = max(GONE_AFTER_S, 3 * reader.poll_interval_s)

    def prepare(self) -> None:
        self.check_health()

    def hard_reset(self) -> None:
        """Reset pin low, then high, then initialise again: the only way back for a hung chip."""
        self.gpio.output(self.config.reset_pin, 0)
        self.sleep(0.05)
        self.gpio.output(self.config.reset_pin, 1)
        self.sleep(0.05)
        self.driver.MFRC522_Init()
        self.driver.MFRC522_StopCrypto1()  # a crypto session left on makes new cards invisible

    def check_health(self) -> bool:
        try:
            version = self.protocol.version()
        except OSError as error:
            version, problem = None, str(error)
        else:
            problem = f"version register reads 0x{version:02X}"
        healthy = version in GENUINE_VERSIONS
        if healthy != self.online:
            event(
                logger,
                "reader_online" if healthy else "reader_offline",
                logging.INFO if healthy else logging.ERROR,
                reader=self.name,
                detail=problem,
                fix="" if healthy else "check the SPI cable, power and reset pin wiring",
            )
        self.online = healthy
        if not healthy:
            self.hard_reset()
        return healthy

    def poll(self) -> BadgeRead | BadRead | None:
        """One look at the field: a read only when a card arrived, carrying every card in the field."""
        now = self.monotonic()
        deadline = now + POLL_BUDGET_S
        found, unreadable = self.protocol.enumerate(lambda: self.monotonic() < deadline)
        held, unchecked = [], []  # unchecked: seen lately, not asked again this poll for lack of time
        for uid, seen in self.in_field.items():
            if uid in found or now - seen >= self.gone_after_s:
                continue
            if self.monotonic() >= deadline:
                unchecked.append(uid)
            elif self.protocol.still_there(uid):
                held.append(uid)
        arrived = [uid for uid in found if now - self.in_field.get(uid, -math.inf) >= self.gone_after_s]
        self.in_field = {uid: seen for uid, seen in self.in_field.items() if now - seen < self.gone_after_s}
        self.in_field.update(dict.fromkeys(found + held, now))
        if arrived:
            others = [uid for uid in found + held + unchecked if uid not in arrived]
            texts = [uid.hex().upper() for uid in arrived + others]
            return BadgeRead(texts[0], self.name, int(now * 1e9), also_in_field=tuple(texts[1:]))
        if unreadable:
            return BadRead(self.name, "card answered but its UID could not be read (pulled away, or a corrupt read)")
        return None

    def reads(self, stop: threading.Event) -> Iterator[BadgeRead | BadRead]:
        next_health = 0.0
        while not stop.is_set():
            if self.monotonic() >= next_health:
                next_health = self.monotonic() + HEALTH_EVERY_S
                if not self.check_health():
                    stop.wait(1.0)
                    continue
            try:
                read = self.poll()
            except (ChipFault, OSError) as error:
                event(logger, "reader_fault", logging.ERROR, reader=self.name, problem=str(error))
                next_health = 0.0
                read = None
            if isinstance(read, BadRead):
                # A card pulled away mid-read is common at a gate: no red light, the next poll tries again.
                event(logger, "partial_read", logging.DEBUG, reader=self.name, problem=read.problem)
            elif read is not None:
                yield read
            stop.wait(self.config.poll_interval_s)
