"""Issue 23 §3 and §4: what a technician and a foreman do with the site's warnings, on a real mosquitto (TLS, the
shipped configuration and ACL) and real daemons: gate-a, gate-b and gate-c run; gate-c's password is also what
the tests misuse to send messages every gate rejects.

§3: a rejection warns while recent until a technician acknowledges it (a signed record); only newer ones warn.
§4: a worker whose direction was decided apart (the bus down, toggle readers) is flagged wherever people look.
"""

from __future__ import annotations

import functools
import json

import pytest
from gate_site import wait_until as wait
from site_bus import badge, client, roster_rows, running_site

from sitegate.commissioning import actor
from sitegate.queue import database
from sitegate.queue.log import LogView
from sitegate.queue.records import Kind
from sitegate.site import topics
from sitegate.site.broker import SITE, LocalBroker

pytestmark = pytest.mark.slow

FIRST_UID = 0x60000000
ROSTER = roster_rows(FIRST_UID, 4 * 10**16, "Ops", 20)
worker_uid = functools.partial(badge, FIRST_UID)
REJECTION = "message(s) from the bus failed verification"


@pytest.fixture(scope="module")
def site(tmp_path_factory):
    with running_site(tmp_path_factory.mktemp("ops"), ROSTER) as (broker, gates, _):
        yield broker, gates


def garbage_as_gate_c(broker: LocalBroker, count: int = 1) -> None:
    """What someone holding gate-c's password can publish: every gate rejects it."""
    connection = client(broker, "gate-c", "test-misused-gate-c")
    try:
        wait(connection.is_connected, "gate-c's credentials connected")
        for _ in range(count):
            connection.publish(topics.topic(SITE, "gate-c", topics.RECORDS), b"not json", qos=1).wait_for_publish(30)
    finally:
        connection.loop_stop()
        connection.disconnect()


def fleet_state(gate, device: str) -> dict:
    return next(g for g in gate.json("fleet") if g["device"] == device)


def rejection_warnings(status: dict) -> list[str]:
    return [w for w in status["warnings"] if REJECTION in w]


def test_3_a_technician_acknowledges_the_rejections_and_only_newer_ones_warn(site):
    broker, gates = site
    a, b = gates["gate-a"], gates["gate-b"]
    wait(lambda: b.sitegate("status").returncode == 0, "gate-b healthy: every peer heard")
    garbage_as_gate_c(broker, 3)
    status = wait(lambda: (s := b.json("status"))["bus"]["rejected_last_hour"] >= 3 and s, "gate-b rejects them")
    assert rejection_warnings(status) and b.sitegate("status").returncode == 1
    wait(lambda: fleet_state(a, "gate-b")["state"] == "warning", "the fleet shows gate-b amber")
    assert b.sitegate("site").returncode == 1

    assert b.sitegate("site", "acknowledge").returncode == 2  # no reason: refused, nothing signed
    done = b.sitegate("site", "acknowledge", "--reason", "gate-c's password misused by the test", "--json")
    assert done.returncode == 0, done.stderr
    acknowledged = json.loads(done.stdout)
    assert acknowledged["acknowledged"] >= 3 and acknowledged["by"] == actor()
    assert all(r["device"] == "gate-c" and r["reason"] == "not JSON" for r in acknowledged["latest"])
    with database.connect(b.directory / "data" / "sitegate.db") as db:
        record = next(LogView(db).newest(Kind.BUS_REJECTIONS_ACK))
    assert record.seq == acknowledged["record"] and record.data["reason"] == "gate-c's password misused by the test"
    assert record.data["rejections"] == acknowledged["acknowledged"] and record.data["by"] == actor()
    again = b.sitegate("site", "acknowledge", "--reason", "once more", "--lang", "fr")
    assert again.returncode == 0 and "aucun message rejeté à prendre en compte depuis l'enregistrement" in again.stdout

    status = b.json("status")
    assert not rejection_warnings(status) and status["bus"]["rejected"] >= 3  # the total stays shown
    assert status["bus"]["rejections_acknowledged"]["seq"] == record.seq
    assert b.sitegate("status").returncode == 0
    wait(lambda: fleet_state(a, "gate-b")["state"] == "ok", "the fleet shows gate-b healthy again")
    shown = b.sitegate("site")
    assert shown.returncode == 0 and f"acknowledged up to record {record.seq} by {actor()}" in shown.stdout
    assert b.json("verify")["ok"]
    assert a.sitegate("status").returncode == 1  # each gate's technician acknowledges its own

    garbage_as_gate_c(broker, 1)
    status = wait(lambda: (s := b.json("status"))["bus"]["rejected_last_hour"] == 1 and s, "a newer one counts")
    assert rejection_warnings(status) and b.sitegate("status").returncode == 1
    nl = b.sitegate("site", "acknowledge", "--reason", "again the test", "--lang", "nl")
    assert nl.returncode == 0 and "1 geweigerd(e) bericht(en) erkend door" in nl.stdout, nl.stdout
    assert "POORT" in nl.stdout and "ONTVANGEN" in nl.stdout  # the table's columns, in Dutch
