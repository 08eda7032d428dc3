"""Crash-test worker: appends registrations as fast as it can and prints each sequence number once
append() has returned (so the parent knows which records were acknowledged), until it is killed."""

import sys

from sitegate import config as configuration
from sitegate.clock import SYSTEM
from sitegate.device import Device
from sitegate.domain.identifiers import WorkerId
from sitegate.domain.registration import Registration, append_registration

device = Device.open(configuration.load(sys.argv[1]), SYSTEM)
start = device.log.count()
for index in range(start, start + 10_000_000):
    record = append_registration(
        device.log,
        Registration(
            worker=WorkerId("limosa", f"{index:017d}"),
            employer="0403170701",
            direction="IN",
            works_declaration="1Y101DRUNWB5Z",
            badge_uid="04A1B2C3",
            reader="gate",
        ),
    )
    print(record.seq, flush=True)
