"""The simulator inside the test process, sharing the test's clock: for accelerated runs (soak, backoff)."""

from __future__ import annotations

from contextlib import contextmanager

from conftest import CONFIG_TEXT
from simulator_process import service_section

from sitegate import config as configuration
from sitegate.device import Device
from sitegate.queue.forwarder import Forwarder
from sitegate.service.client import ServiceClient
from sitegate.simulator import SimulatedService, SimulatorServer


@contextmanager
def simulated_site(tmp_path, clock, credentials, batch_size=200, **forwarder_options):
    service = SimulatedService(reception_delay_s=900, clock=clock)
    server = SimulatorServer(service).start()
    path = tmp_path / "sitegate.toml"
    path.write_text(
        CONFIG_TEXT + service_section(server.base_url, server.token_url, credentials, batch_size=batch_size)
    )
    device = Device.open(configuration.load(path), clock)
    client = ServiceClient(device.config.service, clock=clock)
    forwarder = Forwarder(device.ledger, device.config, client, clock=clock, **forwarder_options)
    try:
        yield device, service, forwarder
    finally:
        server.shutdown()
        server.server_close()
        device.close()
