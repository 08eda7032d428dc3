"""The gate's own print job: the print button, or a foreman's badge read twice, sends today's listing to the
configured printer in a thread of its own (never holding up the gate) and shows how it went on the LEDs. The signed
record of the listing names who asked."""

from __future__ import annotations

import logging
import threading

from sitegate.clock import Clock
from sitegate.config import Config
from sitegate.device import Device
from sitegate.errors import SitegateError
from sitegate.jsonlog import event
from sitegate.reader.feedback import Feedback, Signal

logger = logging.getLogger("sitegate.daemon")
BUTTON = "print button"


class PrintJob:
    def __init__(self, config: Config, clock: Clock, feedback: Feedback) -> None:
        self.config = config
        self.clock = clock
        self.feedback = feedback
        self.button = None  # the print button, when one is configured (gpiozero calls it from its own thread)

    def ask(self, by: str = BUTTON) -> None:
        """A print in a short-lived thread of its own (not one of the daemon's lasting loops)."""
        threading.Thread(target=self.print_listing, args=(by,), name="print", daemon=True).start()

    def print_listing(self, by: str = BUTTON) -> None:
        """Today's listing to the configured printer; `by`: the button, or the foreman's name."""
        from sitegate.paper_fallback.printing import print_today  # python-escpos only when a listing is printed

        device = Device.open(self.config, self.clock)
        try:
            document, printed = print_today(device, self.clock.now(), by)
            event(
                logger,
                "listing_printed",
                destination=printed.destination,
                seq=printed.seq,
                workers=len(document.rows),
                warnings=printed.warnings,
            )
            self.feedback.show(Signal.PRINTED)
        except SitegateError as error:
            event(logger, "listing_print_failed", logging.ERROR, problem=error.problem, fix=error.fix)
            self.feedback.show(Signal.PRINT_FAILED)
        finally:
            device.close()

    def attach_button(self) -> None:
        """The button on `gpio.print_button`, when one is configured."""
        from gpiozero import Button

        pin = self.config.gpio.print_button
        if pin is not None:
            self.button = Button(pin, pin_factory=self.feedback.pin_factory)
            self.button.when_pressed = lambda: self.ask(BUTTON)
