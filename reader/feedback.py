"""What the worker sees and hears: green and red LEDs and a buzzer, on gpiozero.

Each outcome has its own pattern, so a worker with gloves in the rain can tell "IN", "OUT", "unknown badge",
"registered but something needs attention" and "the device is faulty" apart. Patterns run in gpiozero's
background threads: showing one never holds up the next badge. Tests use gpiozero's MockFactory.
"""

from __future__ import annotations

from dataclasses import dataclass

from gpiozero import LED, Buzzer, Device
from gpiozero.exc import BadPinFactory

from sitegate.config import GpioConfig
from sitegate.errors import SitegateError


@dataclass(frozen=True)
class Blink:
    device: str  # "green", "red" or "buzzer"
    on_time: float
    off_time: float = 0.0
    times: int = 1


# Both LEDs together read as amber on a two-colour LED.
PATTERNS: dict[str, tuple[Blink, ...]] = {
    "registered_in": (Blink("green", 1.0), Blink("buzzer", 0.1)),
    "registered_out": (Blink("green", 0.25, 0.15, 2), Blink("buzzer", 0.08, 0.08, 2)),
    "already_registered": (Blink("green", 0.3),),
    "warning": (Blink("green", 1.0), Blink("red", 0.15, 0.15, 3), Blink("buzzer", 0.08, 0.12, 3)),
    "unknown_badge": (Blink("red", 1.5), Blink("buzzer", 0.6)),
    "fault": (Blink("red", 0.1, 0.1, 8), Blink("buzzer", 1.2)),
    "printed": (Blink("buzzer", 0.05, 0.05, 4),),
    "print_failed": (Blink("buzzer", 0.4, 0.2, 3), Blink("red", 0.4, 0.2, 3)),
}


class Feedback:
    def __init__(self, gpio: GpioConfig, background: bool = True, pin_factory=None) -> None:
        self.background = background
        factory = pin_factory or Device.pin_factory
        self.pin_factory = factory
        self.devices = {}
        try:
            for name, pin, kind in (
                ("green", gpio.green_led, LED),
                ("red", gpio.red_led, LED),
                ("buzzer", gpio.buzzer, Buzzer),
            ):
                if pin is not None:
                    self.devices[name] = kind(pin, pin_factory=factory)
        except BadPinFactory as error:
            raise SitegateError(
                f"no GPIO on this machine ({error})",
                "on a Raspberry Pi: sudo make install (rpi-lgpio); for a test run elsewhere: GPIOZERO_PIN_FACTORY=mock",
            ) from None
        self.shown: list[str] = []

    def show(self, signal: str) -> None:
        """Start the pattern for `signal` (returns at once unless background=False, as in tests)."""
        self.shown.append(signal)
        del self.shown[:-100]
        for blink in PATTERNS[signal]:
            device = self.devices.get(blink.device)
            if device is not None:
                device.blink(
                    on_time=blink.on_time, off_time=blink.off_time or 0.01, n=blink.times, background=self.background
                )

    def close(self) -> None:
        for device in self.devices.values():
            device.close()
