"""Keyboard-wedge readers: standard input in development, evdev on the device (behind a fake evdev module)."""

from __future__ import annotations

import io
import os
import sys
import threading
import types
from collections import namedtuple

import pytest

from sitegate.clock import SYSTEM
from sitegate.reader.sources import BadgeRead, BadRead, EvdevSource, LineSource

Event = namedtuple("Event", "type code value")
# The Linux input codes (linux/input-event-codes.h) of what a wedge reader types.
KEYS = {
    11: "KEY_0",
    **{n + 1: f"KEY_{n}" for n in range(1, 10)},
    30: "KEY_A",
    48: "KEY_B",
    46: "KEY_C",
    32: "KEY_D",
    18: "KEY_E",
    33: "KEY_F",
    28: "KEY_ENTER",
    42: "KEY_LEFTSHIFT",
    79: "KEY_KP1",
}
CODES = {name: code for code, name in KEYS.items()}


def typed(text: str) -> list[Event]:
    events = []
    for char in text:
        code = CODES["KEY_ENTER"] if char == "\n" else CODES[f"KEY_{char}"]
        events += [Event(1, code, 1), Event(1, code, 0)]  # key down, key up
    return events


@pytest.fixture
def fake_evdev(monkeypatch):
    module = types.ModuleType("evdev")
    module.ecodes = types.SimpleNamespace(EV_KEY=1, KEY=KEYS)
    devices = {}

    class InputDevice:
        def __init__(self, path):
            if path not in devices:
                raise FileNotFoundError(2, "No such file or directory", path)
            self.read_end, self.write_end = os.pipe()
            self.fd, self.queue, self.grabbed = self.read_end, list(devices[path]), False
            os.write(self.write_end, b"x")

        def grab(self):
            self.grabbed = True

        def read(self):
            os.read(self.read_end, 1)
            events, self.queue = self.queue, []
            return iter(events)

    module.InputDevice = InputDevice
    monkeypatch.setitem(sys.modules, "evdev", module)
    return devices


def test_evdev_source_types_uids_from_key_presses(fake_evdev, tmp_path):
    path = str(tmp_path / "event-kbd")
    fake_evdev[path] = typed("04A1B2C3\n") + [Event(1, CODES["KEY_LEFTSHIFT"], 1)] + typed("0D\n")
    source = EvdevSource(path, "desk", SYSTEM)
    source.prepare()
    assert source.device.grabbed
    stop, reads = threading.Event(), []
    for read in source.reads(stop):
        reads.append(read)
        if len(reads) == 2:
            stop.set()
    assert isinstance(reads[0], BadgeRead) and reads[0].uid == "04A1B2C3" and reads[0].reader == "desk"
    assert isinstance(reads[1], BadRead)  # "0D" is no UID: a corrupt read, reported, never registered


def test_missing_input_device_says_what_to_check(fake_evdev, tmp_path):
    from sitegate.errors import SitegateError

    with pytest.raises(SitegateError, match="input_device"):
        EvdevSource(tmp_path / "nothing", "desk", SYSTEM).prepare()


def test_standard_input_in_development():
    source = LineSource(io.StringIO("04a1b2c3\n\nnot-a-uid\n04:11:22:33:44:55:66 exit\n"), "desk", SYSTEM)
    reads = list(source.reads(threading.Event()))
    assert [type(r).__name__ for r in reads] == ["BadgeRead", "BadRead", "BadgeRead"]
    assert reads[2].uid == "04112233445566" and reads[2].reader == "exit"


def test_a_stuck_key_is_one_bad_read_of_bounded_size(fake_evdev, tmp_path):
    path = str(tmp_path / "event-kbd")
    fake_evdev[path] = typed("A" * 5000 + "\n04A1B2C3\n")
    stop, reads = threading.Event(), []
    for read in EvdevSource(path, "desk", SYSTEM).reads(stop):
        reads.append(read)
        if len(reads) == 2:
            stop.set()
    assert isinstance(reads[0], BadRead) and len(reads[0].problem) < 200
    assert isinstance(reads[1], BadgeRead) and reads[1].uid == "04A1B2C3"
