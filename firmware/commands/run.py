"""`sitegate run`: the gate itself, as the systemd service runs it."""

from __future__ import annotations

from sitegate import config as configuration
from sitegate import jsonlog, startfailure
from sitegate.clock import SYSTEM
from sitegate.daemon import wire
from sitegate.errors import SitegateError


def run(args) -> int:
    jsonlog.setup()
    config = configuration.load(args.config)
    try:
        return wire(config, SYSTEM).run()  # the process's one clock: the watch gives it its state
    except SitegateError as error:  # left for `sitegate status`, which otherwise says only "not running"
        startfailure.record(config, error, SYSTEM.now())
        raise
