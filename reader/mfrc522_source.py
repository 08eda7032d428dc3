"""The MFRC522 badge source, on the `mfrc522` package's low-level MFRC522 class.

The package gives register access over SPI, chip initialisation and CRC; this module does the card protocol
itself, because the package's read() spins the CPU while no card is present and stops at cascade level 1
(so 7-byte UIDs of DESFire and NTAG badges come back truncated):
- our own transceive stops on the chip's timer interrupt (no card) instead of spinning;
- REQA, then anticollision and SELECT through cascade levels 1 to 3 (4, 7 and 10-byte UIDs), BCC checked and
  never part of the UID, then HLTA, so a card left on the reader stays silent: one read, not a stream;
- a card that answers only every other REQA (seen on real chips) is held off by a time window;
- a periodic health check reads the version register; a chip that stops answering is reset through its
  reset pin (low, then high, then re-initialised: re-creating the driver object does not recover it).
Imported only when a reader is configured with source = "mfrc522".
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Iterator

from sitegate.config import ReaderConfig
from sitegate.jsonlog import event
from sitegate.queue.clock import SYSTEM, Clock
from sitegate.reader.sources import BadgeRead, BadRead

logger = logging.getLogger("sitegate.reader")

REQA, HLTA = 0x26, 0x50
CASCADE = (0x93, 0x95, 0x97)
CASCADE_TAG = 0x88
GENUINE_VERSIONS = {0x88, 0x90, 0x91, 0x92, 0x12, 0xB2}  # 0x88: FM17522 clone; 0x12, 0xB2: common clones
HOLD_OFF_S = 1.0  # the same UID again within this time is the same presentation
HEALTH_EVERY_S = 5.0

# Registers and commands (MFRC522 datasheet, section 9).
COMMAND, COMM_IRQ, ERROR = 0x01, 0x04, 0x06
FIFO_DATA, FIFO_LEVEL, BIT_FRAMING, VERSION = 0x09, 0x0A, 0x0D, 0x37
IDLE, TRANSCEIVE = 0x00, 0x0C
RX_IRQ, IDLE_IRQ, ERR_IRQ, TIMER_IRQ = 0x20, 0x10, 0x02, 0x01


class ChipFault(Exception):
    """The chip does not answer as an MFRC522 does."""


class Protocol:
    """ISO/IEC 14443-3 type A card selection over the package's register access."""

    def __init__(self, driver, max_wait_reads: int = 50) -> None:
        self.driver = driver
        self.max_wait_reads = max_wait_reads

    def read(self, register: int) -> int:
        return self.driver.Read_MFRC522(register)

    def write(self, register: int, value: int) -> None:
        self.driver.Write_MFRC522(register, value)

    def transceive(self, data: list[int], last_bits: int = 0) -> list[int] | None:
        """Send a frame and return the answer, or None when no card answered (timer) or on a receive error."""
        self.write(COMMAND, IDLE)
        self.write(COMM_IRQ, 0x7F)  # clear all interrupt flags
        self.write(FIFO_LEVEL, 0x80)  # flush the FIFO
        for byte in data:
            self.write(FIFO_DATA, byte)
        self.write(BIT_FRAMING, last_bits & 0x07)
        self.write(COMMAND, TRANSCEIVE)
        self.write(BIT_FRAMING, 0x80 | (last_bits & 0x07))  # StartSend
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
        if self.read(ERROR) & 0x1B:  # buffer overflow, collision, parity, protocol
            return None
        count = self.read(FIFO_LEVEL)
        return [self.read(FIFO_DATA) for _ in range(count)]

    def crc(self, data: list[int]) -> list[int]:
        return list(self.driver.CalulateCRC(data))

    def request(self, command: int = REQA) -> bool:
        answer = self.transceive([command], last_bits=7)
        return answer is not None and len(answer) == 2

    def select(self) -> bytes | None:
        """Anticollision and SELECT, level after level; the full UID, or None if the card went away."""
        uid: list[int] = []
        for level in CASCADE:
            answer = self.transceive([level, 0x20])
            if answer is None or len(answer) != 5:
                return None
            if answer[0] ^ answer[1] ^ answer[2] ^ answer[3] != answer[4]:
                return None  # BCC mismatch: a corrupt read
            frame = [level, 0x70, *answer]
            sak = self.transceive(frame + self.crc(frame))
            if sak is None or len(sak) != 3 or self.crc(sak[:1]) != sak[1:]:
                return None
            if sak[0] & 0x04:  # UID not complete: the first byte is the cascade tag
                if answer[0] != CASCADE_TAG:
                    return None
                uid += answer[1:4]
                continue
            return bytes(uid + answer[:4])
        return None

    def halt(self) -> None:
        frame = [HLTA, 0x00]
        self.transceive(frame + self.crc(frame))  # a halted card does not answer: no answer is success

    def version(self) -> int:
        return self.read(VERSION)


class Mfrc522Source:
    def __init__(self, reader: ReaderConfig, clock: Clock = SYSTEM) -> None:
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
        self.last_uid: str | None = None
        self.last_seen = 0.0

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
        """One look for a card; a read only for a new presentation."""
        if not self.protocol.request(REQA):
            return None
        uid = self.protocol.select()
        if uid is None:
            return BadRead(self.name, "card answered but its UID could not be read (pulled away, or a corrupt read)")
        self.protocol.halt()
        text, now = uid.hex().upper(), self.monotonic()
        held = text == self.last_uid and now - self.last_seen < HOLD_OFF_S
        self.last_uid, self.last_seen = text, now
        return None if held else BadgeRead(text, self.name, int(now * 1e9))

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
