"""Badge sources: where card UIDs come from. Each yields BadgeRead (or BadRead for a corrupt line) until stopped.

- FifoSource: a named pipe, one hex UID per line, optionally followed by a space and the reader name
  (the demo, the tests and site acceptance tests feed it);
- LineSource: any text stream, such as standard input for a USB keyboard-wedge reader in development;
- the MFRC522 source lives in reader/mfrc522_source.py and is imported only when configured.
"""

from __future__ import annotations

import os
import select
import stat
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol, TextIO

from sitegate.clock import Clock
from sitegate.domain.identifiers import normalise_badge_uid
from sitegate.errors import IdentifierError, SitegateError

MAX_LINE_BYTES = 256  # a UID line is at most 20 hex digits and a reader name: anything longer is not a badge


@dataclass(frozen=True)
class BadgeRead:
    """A card read; also_in_field: the other cards answering at the same time (a badge in a wallet), for the
    gate to choose the badge among them."""

    uid: str
    reader: str
    monotonic_ns: int
    also_in_field: tuple[str, ...] = ()

    @property
    def uids(self) -> tuple[str, ...]:
        return (self.uid, *self.also_in_field)


@dataclass(frozen=True)
class BadRead:
    """A read that cannot be a badge (noise, a truncated line, a corrupt UID): logged, never registered."""

    reader: str
    problem: str


class BadgeSource(Protocol):
    name: str
    online: bool

    def prepare(self) -> None:
        """Get ready to read (create the pipe, open the device) before the daemon says READY."""

    def reads(self, stop: threading.Event) -> Iterator[BadgeRead | BadRead]: ...


def overlong(reader: str) -> BadRead:
    return BadRead(reader, f"a line longer than {MAX_LINE_BYTES} bytes is not a badge UID: dropped")


def parse_line(line: str, default_reader: str, monotonic_ns: int) -> BadgeRead | BadRead | None:
    text = line.strip()
    if not text:
        return None
    uid_text, _, reader = text.partition(" ")
    try:
        uid = normalise_badge_uid(uid_text)
    except IdentifierError as error:
        return BadRead(reader.strip() or default_reader, error.problem)
    return BadgeRead(uid, reader.strip() or default_reader, monotonic_ns)


class FifoSource:
    def __init__(self, path: Path, name: str, clock: Clock) -> None:
        self.clock = clock
        self.path = Path(path)
        self.name = name
        self.online = False
        self._descriptor: int | None = None

    def prepare(self) -> None:
        if self._descriptor is None:
            self._descriptor = self._open()

    def _open(self) -> int:
        if not self.path.exists():
            self.path.parent.mkdir(parents=True, exist_ok=True)
            os.mkfifo(self.path, 0o660)
        elif not stat.S_ISFIFO(self.path.stat().st_mode):
            raise SitegateError(
                f"{self.path} exists and is not a named pipe", "remove it or set reader.fifo_path to another path"
            )
        # Read and write: the pipe never reports end-of-file when a writer closes, and open never blocks.
        return os.open(self.path, os.O_RDWR | os.O_NONBLOCK)

    def reads(self, stop: threading.Event) -> Iterator[BadgeRead | BadRead]:
        self.prepare()
        descriptor, self._descriptor = self._descriptor, None
        self.online = True
        pending, dropping = b"", False  # dropping: the rest of an overlong line, up to its newline
        try:
            while not stop.is_set():
                ready, _, _ = select.select([descriptor], [], [], 0.2)
                if not ready:
                    continue
                pending += os.read(descriptor, 65536)
                *lines, pending = pending.split(b"\n")
                for raw in lines:
                    if dropping or len(raw) > MAX_LINE_BYTES:
                        dropping = False
                        yield overlong(self.name)
                        continue
                    read = parse_line(raw.decode("utf-8", "replace"), self.name, self.clock.monotonic_ns())
                    if read is not None:
                        yield read
                if len(pending) > MAX_LINE_BYTES:  # never hold more than one line's worth
                    pending, dropping = b"", True
        finally:
            self.online = False
            os.close(descriptor)


class LineSource:
    """A keyboard-wedge reader types the UID and Enter: in development, that is standard input."""

    def __init__(self, stream: TextIO, name: str, clock: Clock) -> None:
        self.clock = clock
        self.stream = stream
        self.name = name
        self.online = True

    def prepare(self) -> None:
        pass

    def reads(self, stop: threading.Event) -> Iterator[BadgeRead | BadRead]:
        for line in self.stream:
            if stop.is_set():
                return
            read = parse_line(line, self.name, self.clock.monotonic_ns())
            if read is not None:
                yield read
        self.online = False


class EvdevSource:
    """A USB keyboard-wedge reader on the device: its key presses read from /dev/input with evdev (grabbed, so
    the UIDs it types go nowhere else). Imported only when configured."""

    def __init__(self, device_path: Path, name: str, clock: Clock) -> None:
        self.clock = clock
        import evdev  # only on the device (or behind the tests' fake)

        self.evdev = evdev
        self.device_path = Path(device_path)
        self.name = name
        self.online = False
        self.device = None

    def prepare(self) -> None:
        if self.device is None:
            try:
                self.device = self.evdev.InputDevice(str(self.device_path))
            except OSError as error:
                raise SitegateError(
                    f"keyboard reader {self.device_path}: {error}",
                    "check reader.input_device (ls -l /dev/input/by-id/) and the input group",
                ) from None
            self.device.grab()

    def reads(self, stop: threading.Event) -> Iterator[BadgeRead | BadRead]:
        self.prepare()
        self.online = True
        typed: list[str] = []
        codes = self.evdev.ecodes
        try:
            while not stop.is_set():
                ready, _, _ = select.select([self.device.fd], [], [], 0.2)
                if not ready:
                    continue
                for key in self.device.read():
                    if key.type != codes.EV_KEY or key.value != 1:  # key down only
                        continue
                    name = codes.KEY[key.code]
                    if name in ("KEY_ENTER", "KEY_KPENTER"):
                        line = "".join(typed)
                        typed.clear()
                        if len(line) > MAX_LINE_BYTES:
                            read = overlong(self.name)
                        else:
                            read = parse_line(line, self.name, self.clock.monotonic_ns())
                        if read is not None:
                            yield read
                    elif len(typed) > MAX_LINE_BYTES:
                        continue  # a stuck key: kept no longer, the line is one bad read at Enter
                    elif name.startswith("KEY_") and len(name) == 5:
                        typed.append(name[4])
                    elif name.startswith("KEY_KP") and name[6:].isdigit():
                        typed.append(name[6:])
        finally:
            self.online = False
