"""`sitegate metrics`: the Prometheus metrics the daemon writes as a node_exporter textfile, computed now."""

from __future__ import annotations

from sitegate.clock import SYSTEM
from sitegate.commands.device import open_device
from sitegate.metrics import Metrics
from sitegate.output import Report


def metrics(args) -> Report:
    device = open_device(args)
    metrics = Metrics()
    metrics.refresh(device, SYSTEM.now())
    text = metrics.text()
    return Report({"exposition": text}, text.rstrip())
