"""`sitegate doctor` against the fake MFRC522, gpiozero's MockFactory, the simulator and python-escpos' Dummy."""

from __future__ import annotations

import dataclasses
import json

import gpiozero
import pytest
from conftest import CONFIG_TEXT, run_sitegate
from gpiozero.pins.mock import MockFactory

from sitegate import config as configuration
from sitegate import doctor
from sitegate.clock import SYSTEM
from sitegate.clock.timefmt import format_utc
from sitegate.clock.timesource import TimeReading
from sitegate.device import Device
from sitegate.paper_fallback.printing import escpos_printers
from sitegate.queue.records import Kind
from sitegate.reader.feedback import PATTERNS, Feedback
from sitegate.service.credentials import make_self_signed
from sitegate.service.online import ChannelCheck

SYNCED = TimeReading("chrony", True, 0.002, 0.01)


@pytest.fixture
def gate(tmp_path, service):
    """A gate with an SPI reader, a thermal printer and the simulator's token URL."""
    key, cert = make_self_signed(tmp_path / "credentials", SYSTEM.now(), "company")
    text = CONFIG_TEXT.replace('source = "fifo"', 'source = "mfrc522"') + (
        f'\n[service]\nbase_url = "{service.base_url}"\ntoken_url = "{service.token_url}"\nclient_id = "gate"\n'
        f'key_file = "{key}"\ncert_file = "{cert}"\n'
        '\n[printer]\nformat = "escpos"\nescpos = "usb:0x04b8:0x0202"\n'
    )
    path = tmp_path / "sitegate.toml"
    path.write_text(text)
    device = Device.open(configuration.load(path), SYSTEM)
    yield device, path
    device.close()


class Bench:
    """Fakes for every step, each remembering what it was asked to do."""

    def __init__(self) -> None:
        self.printer = escpos_printers.Dummy()
        self.feedback: Feedback | None = None
        self.hardware = doctor.Hardware(
            feedback=self.make_feedback,
            printer=lambda spec: self.printer,
            clock_reading=lambda config: SYNCED,
            watchdog=lambda: "30s",
            disk_free=lambda config: 8 * 2**30,
        )

    def make_feedback(self, config) -> Feedback:
        # In the background: the patterns overlap instead of taking their 13 s in turn, and all are played.
        self.feedback = Feedback(config.gpio, background=True, pin_factory=MockFactory())
        return self.feedback


def test_every_step_passes_and_the_run_is_signed(chip, gate, clock):
    device, _ = gate
    bench = Bench()
    steps, seq = doctor.run(device, clock, bench.hardware)
    assert [(s.name, s.result) for s in steps] == [
        ("reader gate", "pass"),
        ("signals", "pass"),
        ("printer", "pass"),
        ("service token", "pass"),
        ("clock", "pass"),
        ("disk", "pass"),
        ("watchdog", "pass"),
    ], steps
    assert "0x92" in steps[0].detail
    assert bench.feedback.shown == list(PATTERNS)
    assert b"test slip" in bench.printer.output
    record = device.log.get(seq)
    assert record.kind == Kind.COMMISSIONING
    payload = json.loads(record.payload)
    assert payload["by"] and [s["result"] for s in payload["steps"]] == ["pass"] * 7
    assert payload["at_utc"] == "2026-11-22T07:00:00.000000Z" == format_utc(clock.now())  # as every record's time


def test_each_failure_says_what_to_fix(chip, gate, service):
    device, _ = gate
    chip.version = 0x00  # a reader that does not answer
    bench = Bench()
    bench.hardware.clock_reading = lambda config: TimeReading("chrony", False, None, None, "Not synchronised")
    bench.hardware.watchdog = lambda: None
    bench.hardware.disk_free = lambda config: 10 * 2**20
    bench.hardware.printer = lambda spec: (_ for _ in ()).throw(OSError("USB device not found"))
    bench.hardware.channel = lambda name, config: (_ for _ in ()).throw(OSError("refused"))
    steps = {step.name: step for step in doctor.run(device, SYSTEM, bench.hardware)[0]}
    for name in ("reader gate", "printer", "service token", "clock", "disk", "watchdog"):
        assert steps[name].result == "fail" and steps[name].fix, steps[name]
    assert "SPI" in steps["reader gate"].fix and "USB device not found" in steps["printer"].detail
    assert steps["signals"].result == "pass"


def test_the_command_prints_a_table_or_json_with_exit_codes(chip, gate, monkeypatch):
    _, path = gate
    bench = Bench()
    monkeypatch.setattr(doctor, "Hardware", lambda: bench.hardware)
    shown = run_sitegate("doctor", config=path)
    assert shown.returncode == 0 and "commissioning record" in shown.stdout and "PASS" in shown.stdout
    bench.hardware.watchdog = lambda: None
    as_json = run_sitegate("doctor", "--json", config=path)
    data = json.loads(as_json.stdout)
    assert as_json.returncode == 2 and {s["name"]: s["result"] for s in data["steps"]}["watchdog"] == "fail"
    bench.hardware.watchdog = lambda: "30s"
    bench.hardware.clock_reading = lambda config: TimeReading("ntp", True, 120.0, 0.1)  # synced, 120 s off: a warning
    assert run_sitegate("doctor", config=path).returncode == 1
    assert run_sitegate("verify", config=path).returncode == 0  # the commissioning records are in the chain


def test_a_step_with_nothing_to_test_is_skipped_not_passed(config_file, monkeypatch):
    """A FIFO reader has no chip to ask and no printer is configured: SKIP, shown and counted as such, not PASS."""
    bench = Bench()
    bench.hardware.channel = lambda name, config: ChannelCheck(name, True, "token obtained")
    monkeypatch.setattr(doctor, "Hardware", lambda: bench.hardware)
    shown = run_sitegate("doctor", config=config_file)
    assert shown.returncode == 0, shown.stdout + shown.stderr  # nothing failed: a skip is not a failure
    table = shown.stdout.splitlines()
    width = table[1].index(" ")  # the step column, as wide as its dashes
    rows = {line[:width].strip(): line[width:].split()[0] for line in table[2:9]}
    assert rows == {
        "reader gate": "SKIP",
        "signals": "PASS",
        "printer": "SKIP",
        "service token": "PASS",
        "clock": "PASS",
        "disk": "PASS",
        "watchdog": "PASS",
    }, shown.stdout
    assert "5 passed, 0 warning(s), 0 failed, 2 skipped (not tested)" in shown.stdout
    data = json.loads(run_sitegate("doctor", "--json", config=config_file).stdout)
    assert data["counts"] == {"pass": 5, "warning": 0, "fail": 0, "skip": 2}
    device = Device.open(configuration.load(config_file), SYSTEM)
    try:
        payload = json.loads(device.log.get(data["record"]).payload)
    finally:
        device.close()
    assert {s["name"]: s["result"] for s in payload["steps"]}["printer"] == "skip"  # the signed record says so too


def test_no_gpio_gets_the_errors_own_fix_not_the_wiring(config, monkeypatch):
    """Off a Pi, gpiozero finds no pin factory: the fix is rpi-lgpio or GPIOZERO_PIN_FACTORY=mock, not the wiring."""
    monkeypatch.setattr(gpiozero.Device, "pin_factory", None)
    monkeypatch.setenv("GPIOZERO_PIN_FACTORY", "nonexistent")
    step = doctor.signals_step(config, doctor.Hardware())  # the real feedback, on this machine's (absent) GPIO
    assert step.result == "fail" and "no GPIO on this machine" in step.detail, step
    assert "GPIOZERO_PIN_FACTORY=mock" in step.fix and "wiring" not in step.fix, step


def test_a_reader_driver_that_cannot_start_is_not_blamed_on_the_cable(config_file):
    """Off a Pi the MFRC522 driver does not load (here: no RPi.GPIO; in a VM: "can only be run on a Raspberry Pi"):
    the step says so with the daemon's own fix, never "check the SPI cable"."""
    config_file.write_text(config_file.read_text().replace('source = "fifo"', 'source = "mfrc522"'))
    [step] = doctor.reader_steps(configuration.load(config_file), doctor.Hardware())
    assert step.result == "fail" and "the MFRC522 driver cannot start" in step.detail, step
    assert "cable" not in step.fix and 'source = "fifo"' in step.fix, step


def test_each_configured_channel_is_one_step_and_a_soap_only_gate_asks_no_token(config_file):
    asked = []
    hardware = doctor.Hardware(channel=lambda name, config: asked.append(name) or ChannelCheck(name, True, "accepted"))
    config = configuration.load(config_file)
    soap_first = dataclasses.replace(config.service, channel="soap", fallback="rest")
    steps = doctor.service_steps(dataclasses.replace(config, service=soap_first), hardware)
    assert [(s.name, s.result) for s in steps] == [("service soap", "pass"), ("service token", "pass")]
    soap_only = dataclasses.replace(config.service, channel="soap", fallback="")
    refused = ChannelCheck("soap", False, "the service refuses our signature", "check service.cert_file")
    hardware.channel = lambda name, config: asked.append(name) or refused
    [step] = doctor.service_steps(dataclasses.replace(config, service=soap_only), hardware)
    assert (step.name, step.result, step.fix) == ("service soap", "fail", "check service.cert_file")
    assert asked == ["soap", "rest", "soap"]
