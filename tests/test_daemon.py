"""The whole daemon, as a process: badges through the fifo, SIGKILL during a rush, SIGTERM, a corrupt database."""

from __future__ import annotations

import json
import os
import random
import signal
import sqlite3
import threading
import time

import pytest
from conftest import run_sitegate
from gate_site import DaemonProcess, uid, write_site

ROUNDS = 30


def feed(fifo, uids, stop: threading.Event, pause: float = 0.002) -> None:
    """Write badges into the gate's pipe; a killed daemon leaves the pipe without a reader (that ends it)."""
    try:
        with open(fifo, "w") as pipe:
            for badge in uids:
                if stop.is_set():
                    return
                pipe.write(badge + "\n")
                pipe.flush()
                time.sleep(pause)
    except BrokenPipeError:
        pass


@pytest.mark.slow
def test_sigkill_during_a_rush_loses_no_logged_registration(tmp_path):
    config = write_site(tmp_path, workers=ROUNDS * 200)
    assert run_sitegate("roster", "import", str(tmp_path / "roster.csv"), config=config).returncode == 0
    rng = random.Random(4)
    logged: list[int] = []
    for round_number in range(ROUNDS):
        daemon = DaemonProcess(config)
        daemon.wait_ready()
        stop = threading.Event()
        writer = threading.Thread(
            target=feed, args=(tmp_path / "badges.fifo", [uid(round_number * 200 + i) for i in range(200)], stop)
        )
        writer.start()
        time.sleep(rng.uniform(0.05, 0.3))
        daemon.kill(signal.SIGKILL)
        stop.set()
        writer.join(10)
        logged += daemon.registered()
    conn = sqlite3.connect(tmp_path / "data" / "sitegate.db")
    stored = {row[0] for row in conn.execute("SELECT seq FROM records WHERE kind = 'registration'")}
    assert conn.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
    conn.close()
    assert len(logged) > ROUNDS and not [seq for seq in logged if seq not in stored]
    assert run_sitegate("verify", config=config).returncode == 0


def test_badges_flow_to_log_and_sigterm_stops_cleanly(tmp_path):
    config = write_site(tmp_path, workers=10)
    run_sitegate("roster", "import", str(tmp_path / "roster.csv"), config=config, check=True)
    daemon = DaemonProcess(config)
    daemon.wait_ready()
    feed(tmp_path / "badges.fifo", [uid(1), uid(2), uid(1), "DEADBEEF", "not-a-uid"], threading.Event())
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline and len([e for e in daemon.lines if e.get("event") == "badge"]) < 5:
        time.sleep(0.05)
    status = json.loads(run_sitegate("status", "--json", config=config).stdout)
    assert status["daemon_running"] and status["readers_online"] == ["gate"]
    daemon.kill(signal.SIGTERM)
    assert daemon.process.returncode == 0
    outcomes = [e["outcome"] for e in daemon.lines if e.get("event") == "badge"]
    assert outcomes == ["registered", "registered", "duplicate_suppressed", "unknown_badge", "bad_read"]
    assert all("1000000000000000" not in json.dumps(e) for e in daemon.lines)  # numbers masked in logs
    assert any(e.get("event") == "stopped" for e in daemon.lines)
    assert not [e for e in daemon.lines if e.get("event") == "thread_died" or e["level"] in ("error", "critical")]
    stopped = run_sitegate("status", "--json", config=config)
    assert stopped.returncode == 2 and not json.loads(stopped.stdout)["daemon_running"]


def test_corrupt_database_is_moved_aside_and_kept(tmp_path):
    config = write_site(tmp_path, workers=2)
    data = tmp_path / "data"
    data.mkdir()
    (data / "sitegate.db").write_bytes(b"this is not a database" * 100)
    old_head = json.dumps({"seq": 37, "hash": "a" * 64, "wall_utc": "x", "reason": "stop", "signature": "b" * 128})
    (data / "sitegate-head.json").write_text(old_head)  # the corrupt log's witness must go with it
    daemon = DaemonProcess(config)
    daemon.wait_ready()
    daemon.kill(signal.SIGTERM)
    kept = list(data.glob("sitegate.db.corrupt-*"))
    assert kept and kept[0].read_bytes().startswith(b"this is not a database")
    assert [p.read_text() for p in data.glob("sitegate-head.json.corrupt-*")] == [old_head]
    assert any(e.get("event") == "database_moved_aside" and e["level"] == "critical" for e in daemon.lines)
    assert run_sitegate("verify", config=config).returncode == 0


def test_corrupt_ledger_is_rebuilt_from_the_log(tmp_path):
    config = write_site(tmp_path, workers=3)
    run_sitegate("roster", "import", str(tmp_path / "roster.csv"), config=config, check=True)
    daemon = DaemonProcess(config)
    daemon.wait_ready()
    feed(tmp_path / "badges.fifo", [uid(0), uid(1)], threading.Event())
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline and len(daemon.registered()) < 2:
        time.sleep(0.05)
    daemon.kill(signal.SIGTERM)
    assert len(daemon.registered()) == 2, daemon.lines
    ledger = tmp_path / "data" / "sitegate-delivery.db"
    for suffix in ("-wal", "-shm"):
        (tmp_path / "data" / f"sitegate-delivery.db{suffix}").unlink(missing_ok=True)
    ledger.write_bytes(b"garbage" * 1000)
    daemon = DaemonProcess(config)
    daemon.wait_ready()
    daemon.kill(signal.SIGTERM)
    moved = [e for e in daemon.lines if e.get("event") == "database_moved_aside"]
    assert [e["file"] for e in moved] == [str(ledger)], moved
    assert list((tmp_path / "data").glob("sitegate-delivery.db.corrupt-*"))
    queue = json.loads(run_sitegate("queue", "--json", config=config).stdout)
    # nothing lost: both are to be sent again (the new forwarder may have them in flight when it was stopped)
    assert queue["pending"] + queue["in_flight"] + queue["delivered"] == 2
    assert run_sitegate("verify", config=config).returncode == 0


def test_missing_hardware_is_named_with_the_fix(tmp_path):
    config = write_site(tmp_path, workers=1)
    config.write_text(config.read_text().replace('source = "fifo"', 'source = "mfrc522"'))
    result = run_sitegate("run", config=config, env={**os.environ, "GPIOZERO_PIN_FACTORY": "mock"})
    assert result.returncode == 2
    assert "MFRC522 driver cannot start" in result.stderr and "enable SPI" in result.stderr
    no_gpio = run_sitegate("run", config=config, env={**os.environ, "GPIOZERO_PIN_FACTORY": "nonexistent"})
    assert no_gpio.returncode == 2 and "GPIOZERO_PIN_FACTORY=mock" in no_gpio.stderr
