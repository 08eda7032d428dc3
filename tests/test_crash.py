"""Green means durable: a process killed with SIGKILL at random moments loses nothing it acknowledged."""

import os
import random
import signal
import sqlite3
import subprocess
import sys
import threading
import time

import pytest
from conftest import REPO, run_sitegate

ROUNDS = 50


def run_and_kill(config_file, rng: random.Random) -> list[int]:
    process = subprocess.Popen(
        [sys.executable, str(REPO / "tests" / "helpers" / "append_forever.py"), str(config_file)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    acknowledged: list[int] = []
    first = threading.Event()

    def read() -> None:
        for line in process.stdout:
            acknowledged.append(int(line))
            first.set()

    reader = threading.Thread(target=read, daemon=True)
    reader.start()
    assert first.wait(30), process.stderr.read() if process.poll() is not None else "no append within 30 s"
    time.sleep(rng.uniform(0, 0.08))
    os.kill(process.pid, signal.SIGKILL)
    process.wait()
    reader.join(10)
    return acknowledged


@pytest.mark.slow
def test_sigkill_never_loses_an_acknowledged_append(config_file, tmp_path):
    rng = random.Random(int(os.environ.get("SITEGATE_CRASH_SEED", "20261122")))
    database = tmp_path / "data" / "sitegate.db"
    total_acknowledged = 0
    for round_number in range(ROUNDS):
        acknowledged = run_and_kill(config_file, rng)
        total_acknowledged += len(acknowledged)
        conn = sqlite3.connect(database)
        stored = {row[0] for row in conn.execute("SELECT seq FROM records")}
        assert conn.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
        conn.close()
        lost = [seq for seq in acknowledged if seq not in stored]
        assert not lost, f"round {round_number}: acknowledged but lost: {lost[:10]}"
        verified = run_sitegate("verify", "--json", config=config_file)
        assert verified.returncode == 0, f"round {round_number}: {verified.stdout} {verified.stderr}"
    assert total_acknowledged > ROUNDS  # the kills really landed mid-stream, not before the first append
