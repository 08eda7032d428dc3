"""Crash-test worker: the daemon's forwarder loop, as a process of its own, until it is killed."""

import sys

from sitegate import config as configuration
from sitegate.clock import SYSTEM
from sitegate.device import Device
from sitegate.queue.forwarder import Forwarder
from sitegate.service.client import ServiceClient

device = Device.open(configuration.load(sys.argv[1]), SYSTEM)
forwarder = Forwarder(device.ledger, device.config, ServiceClient(device.config.service, clock=SYSTEM), SYSTEM)
print("started", flush=True)
forwarder.run(idle_s=0.2)
