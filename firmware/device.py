"""The device's stores, opened from the configuration: key, signed log, roster, delivery ledger."""

from __future__ import annotations

from dataclasses import dataclass

import sqlite_utils

from sitegate.config import Config
from sitegate.queue import database
from sitegate.queue.clock import Clock, SystemClock
from sitegate.queue.log import RegistrationLog
from sitegate.queue.signing import DeviceKey
from sitegate.roster import RosterStore


@dataclass
class Device:
    config: Config
    db: sqlite_utils.Database
    key: DeviceKey
    log: RegistrationLog
    roster: RosterStore
    ledger: sqlite_utils.Database  # delivery state, written by the forwarder (and `sitegate forward --once`)

    @classmethod
    def open(cls, config: Config, clock: Clock | None = None) -> Device:
        """Open (creating on first start) the key and the database under the data directory."""
        key = DeviceKey.load_or_create(config.key_path)
        db = database.connect(config.database_path)
        log = RegistrationLog(db, key, clock or SystemClock(), config.device_id)
        return cls(config, db, key, log, RosterStore(db), database.connect_ledger(config.database_path))

    def close(self) -> None:
        self.db.close()
        self.ledger.close()
