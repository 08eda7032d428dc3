"""The forwarder killed with SIGKILL mid-batch: nothing lost, resends bounded by one batch per kill."""

from __future__ import annotations

import json
import os
import random
import signal
import subprocess
import sys
import time

import pytest
from conftest import CONFIG_TEXT, REPO, registration, run_sitegate
from simulator_process import SimulatorProcess, client_credentials, service_section

from sitegate import config as configuration
from sitegate.device import Device
from sitegate.queue import delivery
from sitegate.registration import append_registration

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
        device.close()
    finally:
        simulator.stop()
