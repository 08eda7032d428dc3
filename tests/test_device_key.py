"""A lost device key: reading commands never make one, the daemon says what to do, and `sitegate key replace`
continues the log under a new key (the real daemon, the simulator, the command as a technician types it)."""

from __future__ import annotations

import json
import os
import signal

import pytest
from conftest import registration, run_sitegate
from gate_site import DaemonProcess, uid, wait_until, write_site
from simulator_process import SimulatorProcess, client_credentials, service_section

from sitegate import config as configuration
from sitegate.clock import SYSTEM
from sitegate.device import Device
from sitegate.domain.registration import append_registration
from sitegate.errors import DeviceKeyError, StorageError
from sitegate.key_replace import replace_key
from sitegate.queue.records import Kind
from sitegate.queue.signing import fingerprint

TECHNICIAN = "anna.technician"
READING = (("status",), ("queue",), ("verify",), ("key", "show"), ("export", "--out", "EXPORT"))


def _feed(fifo, uids) -> None:
    with open(fifo, "w") as pipe:
        pipe.write("".join(f"{badge}\n" for badge in uids))


def test_reading_commands_never_make_a_key_and_say_how_to_fix_it(tmp_path):
    config = write_site(tmp_path, workers=2)
    run_sitegate("roster", "import", str(tmp_path / "roster.csv"), config=config, check=True)  # the key, a record
    key_file = tmp_path / "data" / "device.key"
    key_file.unlink()
    export = tmp_path / "export.jsonl"
    codes = {}
    for args in READING:
        result = run_sitegate(*[str(export) if a == "EXPORT" else a for a in args], config=config)
        said = result.stdout + result.stderr
        assert not key_file.exists(), f"`sitegate {' '.join(args)}` made a device.key"
        assert f"the device key {key_file} is missing" in said and "sitegate key replace" in said, (args, said)
        assert "restore device.key from the backup" in said and "Traceback" not in said, (args, said)
        codes[args[0]] = result.returncode
    assert codes == {"status": 2, "queue": 0, "verify": 0, "key": 2, "export": 0}
    assert json.loads(export.read_text().splitlines()[0])["public_key"]  # exported with the log's public key
    assert run_sitegate("verify", "--export", str(export), config=config).returncode == 0
    refused = run_sitegate("outage", "reference", "REF-1", config=config)  # a change needs the key: refused, named
    assert refused.returncode == 2 and "is missing" in refused.stderr and "sitegate key replace" in refused.stderr
    assert not key_file.exists()


def test_a_process_holding_the_old_key_cannot_sign_after_a_replacement(tmp_path, config_file):
    config = configuration.load(config_file)
    running = Device.open(config, SYSTEM)  # as a daemon would: the key loaded, then lost on disk
    append_registration(running.log, registration(0))
    config.key_path.unlink()
    replaced = replace_key(config, running.log.clock, TECHNICIAN, "SD card replaced", lambda n: None)
    assert replaced.found == "missing" and replaced.change.old_public_key == running.key.public_key_hex
    with pytest.raises(DeviceKeyError, match="restart it"):
        append_registration(running.log, registration(1))
    reopened = Device.open(config, SYSTEM)
    assert append_registration(reopened.log, registration(1)).seq == replaced.change.seq + 1
    assert [r.kind for r in reopened.log.records()][-2:] == [Kind.KEY_REPLACED, Kind.REGISTRATION]
    running.close()
    reopened.close()


def test_a_log_that_grows_during_a_replacement_is_refused_and_no_key_is_left(config_file):
    """A writer still holding the old key (a daemon its heartbeat did not show) appends while the log is verified:
    the replacement is refused, and the new key it made is removed (it signed nothing)."""
    config = configuration.load(config_file)
    running = Device.open(config, SYSTEM)
    append_registration(running.log, registration(0))
    config.key_path.unlink()
    grown = []

    def meanwhile(count: int) -> None:
        if not grown:
            grown.append(append_registration(running.log, registration(1)))

    with pytest.raises(StorageError, match="changed while it was verified"):
        replace_key(config, running.log.clock, TECHNICIAN, "card died", meanwhile)
    assert grown and not config.key_path.exists()
    running.close()


def test_replace_is_refused_when_the_key_is_there(config_file, clock):
    device = Device.open(configuration.load(config_file), clock)
    append_registration(device.log, registration(0))
    device.close()
    refused = run_sitegate("key", "replace", "--reason", "just because", config=config_file)
    assert refused.returncode == 2 and "nothing to replace" in refused.stderr
    empty = run_sitegate("key", "replace", "--reason", " ", config=config_file)
    assert empty.returncode == 2 and "--reason" in empty.stderr


@pytest.mark.slow
def test_a_lost_key_is_replaced_and_the_gate_delivers_what_waited(tmp_path):
    simulator = SimulatorProcess()
    try:
        service = service_section(simulator.base_url, simulator.token_url, client_credentials(tmp_path / "cred"))
        config = write_site(tmp_path, workers=6, service=service)
        run_sitegate("roster", "import", str(tmp_path / "roster.csv"), config=config, check=True)
        key_file, fifo = tmp_path / "data" / "device.key", tmp_path / "badges.fifo"
        simulator.fault("503")  # the service is down: the registrations wait in the log
        daemon = DaemonProcess(config)
        daemon.wait_ready()
        _feed(fifo, [uid(i) for i in range(3)])
        wait_until(lambda: len(daemon.registered()) == 3, "3 registrations", said=lambda: daemon.lines[-5:])
        old_key = json.loads(run_sitegate("key", "show", "--json", config=config).stdout)["public_key"]
        key_file.unlink()  # lost while the daemon runs: it still holds the key and goes on
        as_technician = {**os.environ, "SUDO_USER": TECHNICIAN}
        busy = run_sitegate("key", "replace", "--reason", "card died", config=config, env=as_technician)
        assert busy.returncode == 2 and "the daemon is running" in busy.stderr and not key_file.exists()
        _feed(fifo, [uid(3)])
        wait_until(lambda: len(daemon.registered()) == 4, "a 4th registration with the key in memory")
        daemon.kill(signal.SIGTERM)
        assert daemon.process.returncode == 0

        stuck = run_sitegate("run", config=config, env={**os.environ, "GPIOZERO_PIN_FACTORY": "mock"})
        assert stuck.returncode == 2 and not key_file.exists()
        assert "is missing" in stuck.stderr and "sitegate key replace" in stuck.stderr, stuck.stderr

        replaced = run_sitegate("key", "replace", "--reason", "SD card died, no backup", "--json", config=config,
                                env=as_technician)  # fmt: skip
        assert replaced.returncode == 1, replaced.stderr  # done, and worth a look
        change = json.loads(replaced.stdout)
        assert change["by"] == TECHNICIAN and change["old_fingerprint"] == fingerprint(old_key)
        assert change["last_verified_seq"] == change["seq"] - 1 and change["key_file_found"] == "missing"
        assert oct(key_file.stat().st_mode & 0o777) == "0o600"
        assert (
            change["new_public_key"]
            == json.loads(run_sitegate("key", "show", "--json", config=config).stdout)["public_key"]
        )
        between = run_sitegate("verify", "--json", config=config)  # the old key's checkpoints still hold
        assert between.returncode == 1 and all(w["state"] == "extends" for w in json.loads(between.stdout)["witnesses"])

        simulator.fault(None)
        daemon = DaemonProcess(config)
        daemon.wait_ready()
        assert [e["key"] for e in daemon.lines if e.get("event") == "ready"] == [change["new_fingerprint"]]
        _feed(fifo, [uid(4), uid(5)])
        wait_until(lambda: len(daemon.registered()) == 2, "2 registrations under the new key")

        def delivered() -> bool:
            return json.loads(run_sitegate("queue", "--json", config=config).stdout)["delivered"] == 6

        wait_until(delivered, "every registration delivered", timeout=60)
        daemon.kill(signal.SIGTERM)
        assert simulator.summary()["distinct"] == 6

        verified = run_sitegate("verify", "--json", config=config)
        result = json.loads(verified.stdout)
        assert verified.returncode == 1 and result["ok"], verified.stdout  # a warning, never a failure (2)
        [shown] = result["key_changes"]
        assert shown["by"] == TECHNICIAN and shown["seq"] == change["seq"]
        assert result["witnesses"] and all(w["state"] == "extends" for w in result["witnesses"])
        assert f"since record {change['seq']}, started by {TECHNICIAN}" in run_sitegate("status", config=config).stdout
        text = run_sitegate("verify", config=config).stdout
        assert f"KEY REPLACED at record {change['seq']}" in text and TECHNICIAN in text
        for fingerprint_given in (fingerprint(old_key), change["new_fingerprint"]):  # paper printed before or after
            given = run_sitegate("verify", "--fingerprint", fingerprint_given, config=config)
            assert given.returncode == 1, given.stdout + given.stderr
        export = tmp_path / "export.jsonl"
        assert run_sitegate("export", "--out", str(export), config=config).returncode == 0
        assert run_sitegate("verify", "--export", str(export), config=config).returncode == 1
    finally:
        simulator.stop()


def test_a_forged_key_change_fails_verification(tmp_path, config_file, clock):
    """Someone who appends a `key_replaced` record naming a key that did not sign the log gets a failure (2)."""
    from sitegate.queue.log import RegistrationLog
    from sitegate.queue.signing import DeviceKey

    config = configuration.load(config_file)
    device = Device.open(config, clock)
    append_registration(device.log, registration(0))
    stranger, last = DeviceKey.generate(), device.log.last()
    payload = {
        "by": "mallory",
        "reason": "take-over",
        "old_public_key": stranger.public_key_hex,  # not the key that signed the log
        "old_fingerprint": stranger.fingerprint,
        "new_public_key": stranger.public_key_hex,
        "last_verified_seq": last.seq,
        "last_verified_hash": last.hash,
        "key_file_found": "missing",
    }
    RegistrationLog(device.db, None, clock, "gate-01").start_key(stranger, payload, device.log._tail(device.db.conn))
    device.close()
    result = run_sitegate("verify", config=config_file)
    assert result.returncode == 2 and "names key" in result.stderr, result.stdout + result.stderr
