"""The device's stores, opened from the configuration: key, signed log, roster, delivery ledger."""

from __future__ import annotations

from dataclasses import dataclass

import sqlite_utils

from sitegate.clock import Clock
from sitegate.config import Config
from sitegate.domain.roster import RosterStore
from sitegate.errors import DeviceKeyError
from sitegate.queue import database
from sitegate.queue.keychain import KeyChain
from sitegate.queue.log import LogView, RegistrationLog, check_signer
from sitegate.queue.signing import DeviceKey


def signing_key(config: Config) -> DeviceKey:
    """The key that signs the log: its file, made only on a new gate whose log no key has signed yet."""
    db = database.connect(config.database_path, with_ledger=False)
    try:
        return DeviceKey.for_log(config.key_path, LogView(db).signing_key())
    finally:
        db.close()


@dataclass
class Device:
    config: Config
    db: sqlite_utils.Database
    key: DeviceKey | None  # None when opened for reading: the private key is then never touched
    log: RegistrationLog
    roster: RosterStore
    ledger: sqlite_utils.Database  # delivery state, written by the forwarder (and `sitegate forward --once`)

    @classmethod
    def open(cls, config: Config, clock: Clock, signing: bool = True) -> Device:
        """Open the database (creating it on first start) and, to sign, the key (made only for a new log).

        signing=False: a reader (status, verify, export, ...) needs only the public key, which the log holds: no
        device.key is loaded, and none is ever made (`key_problem` only looks at the file)."""
        db = database.connect(config.database_path)
        key = DeviceKey.for_log(config.key_path, LogView(db).signing_key()) if signing else None
        log = RegistrationLog(db, key, clock, config.device_id)
        return cls(config, db, key, log, RosterStore(db), database.connect_ledger(config.database_path))

    @property
    def keys(self) -> KeyChain | None:
        """The keys the log was signed with (None before the first signed record)."""
        return KeyChain.of_log(self.log)

    def key_problem(self) -> DeviceKeyError | None:
        """Why the daemon could not sign with device.key now (missing, unusable, not the log's key), read without
        ever making one; None when it can."""
        signs_for = self.log.signing_key()
        if signs_for is None:
            return None  # a new gate: the daemon makes its key at the first start
        try:
            check_signer(DeviceKey.load(self.config.key_path, signs_for), signs_for)
        except DeviceKeyError as error:
            return error
        return None

    def close(self) -> None:
        self.db.close()
        self.ledger.close()
