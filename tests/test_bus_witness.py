"""The broker keeps each gate's latest signed checkpoint (retained), and its peers keep it too: a rollback of the
gate's whole data directory, which every witness on the device agrees with, is caught against them (Debian's
mosquitto, the real daemons)."""

from __future__ import annotations

import gc
import json
import shutil
import sqlite3
import threading

import pytest
from gate_site import wait_until
from site_bus import BOUW, badge, client, running_site

from sitegate.queue.checkpoints import Checkpoint
from sitegate.site import topics
from sitegate.site.broker import SITE
from sitegate.site.bus import PEER_CHECKPOINT

FIRST_UID = 0x30000000


def _roster(count: int) -> list[str]:
    return [f"{badge(FIRST_UID, i)},,{10**16 + 500 + i:017d},Worker{i},Test,{BOUW},," for i in range(count)]


class RetainedCheckpoint:
    """What the broker holds on a gate's checkpoint topic, as another gate's user reads it."""

    def __init__(self, broker, device: str) -> None:
        self.held: dict | None = None
        self.seen = threading.Event()
        self.connection = client(broker, "gate-b", f"listener-{device}")
        self.connection.on_message = self._message
        self.connection.subscribe(topics.topic(SITE, device, topics.CHECKPOINT), qos=1)

    def _message(self, connection, userdata, message) -> None:
        body = json.loads(message.payload)
        if "signature" in body:
            self.held = body
            self.seen.set()

    def close(self) -> None:
        self.connection.loop_stop()
        self.connection.disconnect()


@pytest.mark.slow
def test_a_rolled_back_data_directory_is_caught_by_the_brokers_checkpoint(tmp_path):
    with running_site(tmp_path, _roster(6), running=("gate-a",)) as (broker, gates, _):
        gate = gates["gate-a"]
        gate.badge(*(badge(FIRST_UID, i) for i in range(2)))
        gate.stop()
        kept = tmp_path / "copy-of-data"
        _copy_data(gate.directory / "data", kept)  # the copy an attacker (or a careless restore) puts back
        gate.start()
        gate.badge(*(badge(FIRST_UID, i) for i in range(2, 6)))
        listing = gate.sitegate("paper", "print", "--out", str(tmp_path / "listing.pdf"))  # checkpoints the head
        assert listing.returncode in (0, 1), listing.stderr
        end = gate.json("verify")["last_seq"]
        listener = RetainedCheckpoint(broker, "gate-a")
        try:
            wait_until(
                lambda: listener.held and listener.held["seq"] >= end,
                f"the broker holds checkpoint {end}",
                said=lambda: [listener.held],
            )
            gate.stop()
            end = listener.held["seq"]  # an outage or clock record may have moved the end meanwhile
            shutil.rmtree(gate.directory / "data")
            _copy_data(kept, gate.directory / "data")
            rolled_back = gate.sitegate("verify")
            assert rolled_back.returncode == 0, rolled_back.stdout  # every witness on the device agrees with it

            gate.start()
            found = wait_until(lambda: gate.events("log_witness_mismatch"), "the rollback caught", timeout=30)
            assert found[0]["witness"] == "broker" and f"holds checkpoint {end}" in found[0]["problem"], found
            assert found[0]["level"] == "critical"
            gate.stop()
            assert Checkpoint.from_dict(listener.held).seq == end  # the evidence stays on the broker
            after = gate.sitegate("verify")
            assert after.returncode == 1 and f"TRUNCATED: the broker holds checkpoint {end}" in after.stderr, (
                after.stdout + after.stderr
            )
        finally:
            listener.close()


def _copy_data(source, target) -> None:
    """A copy of a stopped gate's data directory. The in-process commands leave their connections to the garbage
    collector, whose last close folds the WAL into the database and deletes it: done first, not mid-copy."""
    gc.collect()
    shutil.copytree(source, target)


def _kept_by(gate, device: str) -> int:
    """The seq of `device`'s checkpoint that `gate` keeps in its mirror (0: none)."""
    connection = sqlite3.connect(gate.directory / "data" / "sitegate-site.db")
    try:
        row = connection.execute("SELECT value FROM bus_state WHERE key = ?", [PEER_CHECKPOINT + device]).fetchone()
    finally:
        connection.close()
    return json.loads(row[0])["seq"] if row else 0


@pytest.mark.slow
def test_a_peer_keeps_the_checkpoint_a_broker_lost_and_catches_the_rollback(tmp_path):
    with running_site(tmp_path, _roster(6), running=("gate-a", "gate-b")) as (broker, gates, _):
        gate, peer = gates["gate-a"], gates["gate-b"]
        gate.badge(badge(FIRST_UID, 0))
        gate.stop()
        kept = tmp_path / "copy-of-data"
        _copy_data(gate.directory / "data", kept)
        gate.start()
        gate.badge(*(badge(FIRST_UID, i) for i in range(1, 4)))
        assert gate.sitegate("paper", "print", "--out", str(tmp_path / "listing.pdf")).returncode in (0, 1)
        end = gate.json("verify")["last_seq"]
        wait_until(lambda: _kept_by(peer, "gate-a") >= end, f"gate-b keeps gate-a's checkpoint {end}")
        gate.stop()
        end = _kept_by(peer, "gate-a")  # an outage or clock record may have moved the end meanwhile
        owner = client(broker, "gate-a", "clearer")  # the broker loses its retained copy (a restart without
        owner.publish(topics.topic(SITE, "gate-a", topics.CHECKPOINT), b"", qos=1, retain=True).wait_for_publish(5)
        owner.loop_stop()  # persistence, say)
        owner.disconnect()
        shutil.rmtree(gate.directory / "data")
        _copy_data(kept, gate.directory / "data")

        gate.start()
        found = wait_until(lambda: gate.events("log_witness_mismatch"), "the rollback caught by the peer", timeout=30)
        assert found[0]["witness"] == "peer gate-b" and f"holds checkpoint {end}" in found[0]["problem"], found
        assert _kept_by(peer, "gate-a") == end  # the rolled-back gate's older checkpoint did not replace it


@pytest.mark.slow
def test_a_checkpoint_the_gate_never_signed_is_no_witness(tmp_path):
    """Anyone with a peer's password can send any checkpoint back: one not signed by the gate raises no alarm and
    stops no checkpoint; it is logged with who sent it."""
    with running_site(tmp_path, _roster(2), running=("gate-a",)) as (broker, gates, _):
        gate = gates["gate-a"]
        gate.badge(badge(FIRST_UID, 0))
        listener = RetainedCheckpoint(broker, "gate-a")  # published once gate-a read its own back: subscribed
        wait_until(lambda: listener.held, "gate-a's checkpoint on the broker")  # (a message before would be lost)
        listener.close()
        forged = {"seq": 999, "hash": "ab" * 32, "wall_utc": "2026-12-01T07:00:00.000000Z", "reason": "periodic"}
        peer = client(broker, "gate-b", "forger")
        body = json.dumps({"of": "gate-a", "checkpoint": {**forged, "signature": "cd" * 64}})
        peer.publish(topics.topic(SITE, "gate-b", topics.WITNESS), body, qos=1).wait_for_publish(5)
        peer.loop_stop()
        peer.disconnect()
        [logged] = wait_until(lambda: gate.events("bus_checkpoint_forged"), "the forged checkpoint logged")
        assert logged["held_by"] == "peer gate-b" and logged["seq"] == 999
        gate.stop()
        assert not gate.events("log_witness_mismatch")
        assert gate.sitegate("verify").returncode == 0
