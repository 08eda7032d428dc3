"""The device as a command opens it: read-only unless the command signs."""

from __future__ import annotations

import sys

from sitegate import config as configuration
from sitegate.clock import SYSTEM
from sitegate.device import Device


def open_device(args, signing: bool = False, key_note: bool = True) -> Device:
    """The device; signing=False for a command that only reads: it needs the log's public key, not device.key (and
    never makes one). A key the daemon cannot use is said on stderr (key_note) while the command goes on."""
    device = Device.open(configuration.load(args.config), SYSTEM, signing=signing)
    problem = None if signing or not key_note else device.key_problem()
    if problem:
        print(f"warning: {problem.problem}; the daemon cannot start\nfix: {problem.fix}", file=sys.stderr)
    return device
