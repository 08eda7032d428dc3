"""The forwarder killed with SIGKILL mid-batch, alone or inside the daemon during badge rushes: nothing lost,
resends bounded by one batch per kill."""

from __future__ import annotations

import json
import os
import random
import signal
import subprocess
import sys
import threading
import time

import pytest
from conftest import CONFIG_TEXT, REPO, registration, run_sitegate
from gate_site import DaemonProcess, uid, write_site
from simulator_process import SimulatorProcess, client_credentials, service_section
from test_daemon import feed

from sitegate import config as configuration
from sitegate.device import Device
from sitegate.domain.registration import append_registration
from sitegate.queue import delivery
from sitegate.service.remarks import needing_action

ROUNDS = 30
BATCH = 10
REGISTRATIONS = 400


@pytest.mark.slow
def test_sigkill_mid_batch_loses_nothing(tmp_path, clock):
    simulator = SimulatorProcess()
    try:
        credentials = client_credentials(tmp_path / "credentials")
        path = tmp_path / "sitegate.toml"
        path.write_text(
            CONFIG_TEXT + service_section(simulator.base_url, simulator.token_url, credentials, batch_size=BATCH)
        )
        device = Device.open(configuration.load(path), clock)
        for index in range(REGISTRATIONS):
            append_registration(device.log, registration(index))
            clock.advance(1)
        simulator.fault("slow", seconds=0.03)  # each call takes a while: kills land mid-batch
        rng = random.Random(30)
        for _ in range(ROUNDS):
            process = subprocess.Popen(
                [sys.executable, str(REPO / "tests" / "helpers" / "forward_forever.py"), str(path)],
                stdout=subprocess.PIPE,
                text=True,
            )
            assert process.stdout.readline().strip() == "started"
            time.sleep(rng.uniform(0.02, 0.25))
            os.kill(process.pid, signal.SIGKILL)
            process.wait()
        simulator.fault(None)
        done = run_sitegate("forward", "--once", "--json", config=path)
        assert done.returncode == 0, done.stdout + done.stderr
        summary = delivery.summary(device.db, clock.wall)
        counted = simulator.summary()
        assert summary.delivered == REGISTRATIONS and summary.undelivered == 0
        assert counted["distinct"] == REGISTRATIONS
        assert counted["resent"] <= summary.resends <= ROUNDS * BATCH
        print(f"kills={ROUNDS} device_resends={summary.resends} simulator_resent={counted['resent']}")
        assert summary.resends > 0  # the kills did land while batches were in flight
        # The service answered each resend with remark 14, and the device kept it.
        remarks = [json.loads(r or "[]") for (r,) in device.db.execute("SELECT remarks FROM delivery")]
        assert sum(14 in r for r in remarks) <= counted["resent"]
        # Each of them follows a send whose answer the kill lost: our own duplicate, never blamed on the worker.
        blamed = [item for item in needing_action(device.db) if item.code == 14 and item.needs_action]
        print(f"remark_14={sum(14 in r for r in remarks)} blamed_on_the_worker={len(blamed)}")
        assert not blamed
        device.close()
    finally:
        simulator.stop()


RUSH_ROUNDS = int(os.environ.get("SITEGATE_RUSH_KILL_ROUNDS", "8"))  # 40 for the figure in the issue (~4 min)
RUSH = 200  # badges per round, one every RUSH_PAUSE_S: a rush that lasts longer than the forwarder's wait for a lull
RUSH_PAUSE_S = 0.02


@pytest.mark.slow
def test_sigkill_of_the_daemon_during_rushes_resends_almost_nothing(tmp_path):
    """The daemon's real process, killed during a badge rush: an answered batch is settled before the forwarder
    waits for a lull, so the service sees at most 1 % of the registrations twice (issue 20, section 2)."""
    simulator = SimulatorProcess()
    try:
        credentials = client_credentials(tmp_path / "credentials")
        config = write_site(
            tmp_path,
            workers=RUSH_ROUNDS * RUSH,
            service=service_section(simulator.base_url, simulator.token_url, credentials),
        )
        assert run_sitegate("roster", "import", str(tmp_path / "roster.csv"), config=config).returncode == 0
        rng = random.Random(int(os.environ.get("SITEGATE_CRASH_SEED", "20")))
        registered = 0
        for round_number in range(RUSH_ROUNDS):
            daemon = DaemonProcess(config)
            daemon.wait_ready()
            stop = threading.Event()
            badges = [uid(round_number * RUSH + i) for i in range(RUSH)]
            writer = threading.Thread(target=feed, args=(tmp_path / "badges.fifo", badges, stop, RUSH_PAUSE_S))
            writer.start()
            time.sleep(rng.uniform(0.5, RUSH * RUSH_PAUSE_S))  # during the rush
            daemon.kill(signal.SIGKILL)
            stop.set()
            writer.join(10)
            registered += len(daemon.registered())
        done = run_sitegate("forward", "--once", "--json", config=config)
        assert done.returncode == 0, done.stdout + done.stderr
        counted = simulator.summary()
        assert registered > RUSH_ROUNDS * 10  # the kills landed during the rushes
        assert counted["distinct"] >= registered  # nothing logged was lost on the way
        print(f"rounds={RUSH_ROUNDS} registrations={counted['distinct']} duplicates={counted['resent']}")
        assert counted["resent"] <= 0.01 * counted["distinct"], counted
    finally:
        simulator.stop()
