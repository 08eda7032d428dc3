"""`sitegate doctor`: commissioning a gate, step by step, each step passing or saying what to fix.

The reader's version register, every signal pattern on the LEDs and buzzer, a test slip, a token from the service,
the clock, free disk and the unit's watchdog. The whole run is signed into the log (kind `commissioning`), so the
day a gate was proven to work, and by whom, is part of the record. The hardware is reached through `Hardware`, whose
factories the tests replace with the fake chip, gpiozero's MockFactory and python-escpos' Dummy printer.
"""

from __future__ import annotations

import shutil
import subprocess
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from typing import TYPE_CHECKING

from sitegate import health
from sitegate.clock import SYSTEM, Clock
from sitegate.clock.timefmt import format_utc
from sitegate.clock.timesource import TimeReading
from sitegate.commissioning import actor
from sitegate.config import Config, ReaderConfig
from sitegate.device import Device
from sitegate.errors import SitegateError
from sitegate.queue.records import Kind

if TYPE_CHECKING:
    from sitegate.service.online import ChannelCheck

PASS, WARN, FAIL = "pass", "warning", "fail"
SKIP = "skip"  # nothing here to test (no printer configured, a reader without a chip to ask): neither pass nor fail


@dataclass(frozen=True)
class Step:
    name: str
    result: str  # pass, warning, fail or skip
    detail: str
    fix: str = ""


def _systemd_watchdog() -> str | None:
    """The running unit's watchdog as systemd shows it ("30s"); None where systemd does not run the unit."""
    if not shutil.which("systemctl"):
        return None
    shown = subprocess.run(
        ["systemctl", "show", "sitegate.service", "--property=WatchdogUSec", "--value"],
        capture_output=True,
        text=True,
        timeout=10,
    )
    text = shown.stdout.strip()
    return text if shown.returncode == 0 and text not in ("", "0", "infinity") else None


def _real_reader(reader: ReaderConfig):
    """The daemon's own way to open it: a driver that cannot start (not a Pi, no rpi-lgpio, lgpio's pipe) says why,
    instead of the step's fix blaming the SPI cable."""
    from sitegate.reader.factory import make_source  # noqa: PLC0415 - the real driver only on the device

    return make_source(reader, SYSTEM)


def _real_feedback(config: Config):
    from sitegate.reader.feedback import Feedback  # noqa: PLC0415

    return Feedback(config.gpio, background=False)


def _real_printer(spec: str):
    from sitegate.paper_fallback.printing import escpos_device  # noqa: PLC0415

    return escpos_device(spec)


def _real_channel(name: str, config: Config) -> ChannelCheck:
    from sitegate.service.online import check_channel  # noqa: PLC0415

    return check_channel(name, config, SYSTEM)


def _real_clock(config: Config) -> TimeReading:
    from sitegate.clock.timesource import best_reading  # noqa: PLC0415
    from sitegate.clock.watch import default_sources  # noqa: PLC0415

    return best_reading(default_sources(config.clock.ntp_server, config.clock.trust_system_clock))


@dataclass
class Hardware:
    """How each step reaches what it tests; the defaults are the device's own."""

    reader: Callable[[ReaderConfig], object] = _real_reader
    feedback: Callable[[Config], object] = _real_feedback
    printer: Callable[[str], object] = _real_printer
    channel: Callable[[str, Config], ChannelCheck] = _real_channel
    clock_reading: Callable[[Config], TimeReading] = _real_clock
    watchdog: Callable[[], str | None] = _systemd_watchdog
    disk_free: Callable[[Config], int] = field(default=lambda config: shutil.disk_usage(config.data_dir).free)


def _guarded(name: str, fix: str, check: Callable[[], Step]) -> Step:
    """A step whose hardware raises says so, with the fix, instead of stopping the run. A SitegateError knows its
    own cause better than the step does (no GPIO at all is not a wiring fault): its fix wins over `fix`."""
    try:
        return check()
    except Exception as error:  # noqa: BLE001 - every failure of a step is that step's result
        own_fix = error.fix if isinstance(error, SitegateError) else ""
        return Step(name, FAIL, f"{type(error).__name__}: {getattr(error, 'problem', error)}", own_fix or fix)


def reader_steps(config: Config, hardware: Hardware) -> list[Step]:
    from sitegate.reader.mfrc522_source import GENUINE_VERSIONS  # noqa: PLC0415

    steps = []
    for reader in config.readers:
        name, wiring = f"reader {reader.name}", "check the SPI cable, power and reset pin; SPI on (raspi-config)"
        if reader.source != "mfrc522":
            steps.append(Step(name, SKIP, f"{reader.source} source: nothing to ask; badge a card to test it"))
            continue

        def version(reader=reader, name=name, wiring=wiring) -> Step:
            value = hardware.reader(reader).protocol.version()
            if value in GENUINE_VERSIONS:
                return Step(name, PASS, f"MFRC522 answers, version register 0x{value:02X}")
            return Step(name, FAIL, f"version register reads 0x{value:02X}", wiring)

        steps.append(_guarded(name, wiring, version))
    return steps


def signals_step(config: Config, hardware: Hardware) -> Step:
    from sitegate.reader.feedback import PATTERNS  # noqa: PLC0415

    fix = "check the LED and buzzer wiring against [gpio]"

    def walk() -> Step:
        feedback = hardware.feedback(config)
        try:
            for signal in PATTERNS:
                feedback.show(signal)
        finally:
            feedback.close()
        missing = [name for name in ("green", "red", "buzzer") if name not in feedback.devices]
        detail = f"played {', '.join(PATTERNS)}: each should have been seen and heard in turn"
        if missing:
            return Step("signals", WARN, f"{detail}; no pin for {', '.join(missing)}", "set it in [gpio]")
        return Step("signals", PASS, detail)

    return _guarded("signals", fix, walk)


def printer_step(config: Config, hardware: Hardware, device_id: str) -> Step:
    spec = config.printer.escpos
    if config.printer.format != "escpos" or not spec:
        return Step("printer", SKIP, "no thermal printer configured: test the PDF with `sitegate paper print --out`")

    def slip() -> Step:
        printer = hardware.printer(spec)
        printer.text(f"sitegate {device_id}: test slip\n")
        printer.cut()
        return Step("printer", PASS, f"test slip sent to {spec}: check it came out")

    return _guarded("printer", "check the printer's power, paper and printer.escpos", slip)


def service_steps(config: Config, hardware: Hardware) -> list[Step]:
    """Each configured channel asked once, read only: REST for a token, SOAP with a signed read."""
    steps = []
    for name in filter(None, (config.service.channel, config.service.fallback)):
        title = "service token" if name == "rest" else "service soap"

        def ask(name=name, title=title) -> Step:
            found = hardware.channel(name, config)
            return Step(title, PASS if found.ok else FAIL, found.detail, found.fix)

        steps.append(_guarded(title, "run `sitegate config check --online` for the detail", ask))
    return steps


def clock_step(config: Config, hardware: Hardware) -> Step:
    from sitegate.clock.watch import assess  # noqa: PLC0415

    def clock() -> Step:
        reading = hardware.clock_reading(config)
        bound = config.clock.warn_fraction * config.site.reception_delay_s
        synced, warning = assess(reading, bound)
        detail = f"{reading.source}: offset {reading.offset_s} s (bound {bound:.0f} s)"
        if not synced:
            return Step("clock", FAIL, detail, "install and start chrony; check that NTP (UDP 123) is allowed")
        return (
            Step("clock", WARN, f"{detail}: {warning}", "check chrony's sources")
            if warning
            else Step("clock", PASS, detail)
        )

    return _guarded("clock", "install chrony (`apt-get install chrony`)", clock)


def disk_step(config: Config, hardware: Hardware) -> Step:
    free = hardware.disk_free(config)
    findings = health.disk(free)
    detail = f"{free // 2**20} MiB free on {config.data_dir}"
    if findings:
        return Step("disk", FAIL, detail, findings[0].text)
    return Step("disk", PASS, detail)


def watchdog_step(hardware: Hardware) -> Step:
    watchdog = hardware.watchdog()
    if watchdog is None:
        return Step(
            "watchdog",
            FAIL,
            "the unit has no watchdog, or systemd does not run it here",
            "sudo make install; systemctl enable --now sitegate",
        )
    return Step("watchdog", PASS, f"sitegate.service watchdog {watchdog}")


def run(device: Device, clock: Clock, hardware: Hardware | None = None) -> tuple[list[Step], int]:
    """Every step, then the signed commissioning record; returns the steps and the record's seq."""
    hardware = hardware or Hardware()
    config = device.config
    steps = [
        *reader_steps(config, hardware),
        signals_step(config, hardware),
        printer_step(config, hardware, config.device_id),
        *service_steps(config, hardware),
        clock_step(config, hardware),
        disk_step(config, hardware),
        watchdog_step(hardware),
    ]
    payload = {"by": actor(), "at_utc": format_utc(clock.now()), "steps": [asdict(step) for step in steps]}
    return steps, device.log.append(Kind.COMMISSIONING, payload).seq
