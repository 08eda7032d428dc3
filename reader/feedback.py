"""What the worker sees and hears: green and red LEDs and a buzzer, on gpiozero.

Each outcome has its own pattern, so a worker with gloves in the rain can tell "IN", "OUT", "unknown badge",
"registered but something needs attention" and "the device is faulty" apart. Tests use gpiozero's MockFactory.

One owner: the badge threads, the print button's thread and the daemon's fault handler all signal, but gpiozero's
`blink` is not safe from two threads (one can join a blink thread another has not started yet). So `show()` only
queues the signal and returns at once (the badge path never waits for a pattern); one player thread is the only
caller of the LEDs and the buzzer, and each new pattern replaces what those devices were playing.
"""

from __future__ import annotations

import logging
import threading
from dataclasses import dataclass
from enum import StrEnum
from queue import SimpleQueue

from gpiozero import LED, Buzzer, Device
from gpiozero.exc import BadPinFactory

from sitegate.config import GpioConfig
from sitegate.errors import SitegateError
from sitegate.jsonlog import event

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class Blink:
    device: str  # "green", "red" or "buzzer"
    on_time: float
    off_time: float = 0.0
    times: int = 1


class Signal(StrEnum):
    """What the gate tells the worker (and the foreman): each has its own pattern below."""

    REGISTERED_IN = "registered_in"
    REGISTERED_OUT = "registered_out"
    ALREADY_REGISTERED = "already_registered"
    WARNING = "warning"
    UNKNOWN_BADGE = "unknown_badge"
    FAULT = "fault"
    PRINTED = "printed"
    PRINT_FAILED = "print_failed"
    ONE_BADGE_AT_A_TIME = "one_badge_at_a_time"
    FOREMAN_NOTED = "foreman_noted"
    PRINT_REQUESTED = "print_requested"


# Both LEDs together read as amber on a two-colour LED.
PATTERNS: dict[Signal, tuple[Blink, ...]] = {
    Signal.REGISTERED_IN: (Blink("green", 1.0), Blink("buzzer", 0.1)),
    Signal.REGISTERED_OUT: (Blink("green", 0.25, 0.15, 2), Blink("buzzer", 0.08, 0.08, 2)),
    Signal.ALREADY_REGISTERED: (Blink("green", 0.3),),
    Signal.WARNING: (Blink("green", 1.0), Blink("red", 0.15, 0.15, 3), Blink("buzzer", 0.08, 0.12, 3)),
    Signal.UNKNOWN_BADGE: (Blink("red", 1.5), Blink("buzzer", 0.6)),
    Signal.FAULT: (Blink("red", 0.1, 0.1, 8), Blink("buzzer", 1.2)),
    Signal.PRINTED: (Blink("buzzer", 0.05, 0.05, 4),),
    Signal.PRINT_FAILED: (Blink("buzzer", 0.4, 0.2, 3), Blink("red", 0.4, 0.2, 3)),
    # Two roster badges in the field at once: amber flashing, two beeps; nobody registered.
    Signal.ONE_BADGE_AT_A_TIME: (Blink("green", 0.2, 0.2, 4), Blink("red", 0.2, 0.2, 4), Blink("buzzer", 0.2, 0.2, 2)),
    # A foreman's first read: two quick green flicks, "seen" (the IN/OUT signal follows unless a second read comes).
    Signal.FOREMAN_NOTED: (Blink("green", 0.05, 0.1, 2),),
    # A foreman's badge twice: green and buzzer ticking three times; PRINTED or PRINT_FAILED follows.
    Signal.PRINT_REQUESTED: (Blink("green", 0.1, 0.1, 3), Blink("buzzer", 0.03, 0.17, 3)),
}


class Feedback:
    def __init__(self, gpio: GpioConfig, background: bool = True, pin_factory=None) -> None:
        """background=False plays each pattern to its end inside `show()`, in the caller's thread (tests)."""
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
        self.shown: list[str] = []  # the last 100 signals played, oldest first
        self.signals: SimpleQueue[str | None] = SimpleQueue()
        self.player: threading.Thread | None = None
        if background:
            self.player = threading.Thread(target=self._play_queued, name="feedback", daemon=True)
            self.player.start()

    def show(self, signal: str) -> None:
        """Signal an outcome; returns at once (with background=False, once the pattern has played)."""
        if signal not in PATTERNS:
            raise KeyError(f"no feedback pattern named {signal!r}")
        if self.player is None:
            self._play(signal)
        else:
            self.signals.put(signal)

    def _play_queued(self) -> None:
        while (signal := self.signals.get()) is not None:
            try:
                self._play(signal)
            except Exception as error:  # noqa: BLE001 - a pin fault must not silence every later signal
                event(logger, "feedback_fault", logging.ERROR, signal=signal, problem=str(error))

    def _play(self, signal: str) -> None:
        for blink in PATTERNS[signal]:
            device = self.devices.get(blink.device)
            if device is not None:
                device.blink(
                    on_time=blink.on_time,
                    off_time=blink.off_time or 0.01,
                    n=blink.times,
                    background=self.player is not None,
                )
        self.shown.append(signal)
        del self.shown[:-100]

    def close(self) -> None:
        """Lets the player finish what is queued (patterns cut short), then releases the pins."""
        if self.player is not None:
            self.signals.put(None)
            self.player.join(10)
        for device in self.devices.values():
            device.close()
