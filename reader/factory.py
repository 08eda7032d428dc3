"""The badge sources a configuration asks for: the MFRC522 (only on the device), a keyboard wedge, a named pipe."""

from __future__ import annotations

import sys

from sitegate.clock import Clock
from sitegate.config import ReaderConfig
from sitegate.errors import SitegateError
from sitegate.reader.sources import BadgeSource, EvdevSource, FifoSource, LineSource


def make_source(reader: ReaderConfig, clock: Clock) -> BadgeSource:
    """clock: the process's one clock, which stamps every read (the gate compares those stamps)."""
    if reader.source == "fifo":
        return FifoSource(reader.fifo_path, reader.name, clock)
    if reader.source == "keyboard":
        # On the device, the wedge's event device; in development (no input_device), standard input.
        if reader.input_device:
            return EvdevSource(reader.input_device, reader.name, clock)
        return LineSource(sys.stdin, reader.name, clock)
    try:
        from sitegate.reader.mfrc522_source import Mfrc522Source  # only on the device

        return Mfrc522Source(reader, clock)
    except (ImportError, RuntimeError, OSError) as error:
        if ".lgd-nfy" in f"{getattr(error, 'filename', '')} {error}":  # lgpio's notify pipe, in $LG_WD or the cwd
            fix = "run the installed `sitegate` command or the unit (both set LG_WD to the state directory)"
        else:
            fix = 'on a Raspberry Pi: enable SPI and run `sudo make install`; on another machine use source = "fifo"'
        raise SitegateError(f"reader {reader.name}: the MFRC522 driver cannot start ({error})", fix) from None
