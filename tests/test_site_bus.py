"""Issue 10: three real gates on a real mosquitto (TLS, the shipped ACL), one site.

The site: gate-a, gate-b, gate-c, each `sitegate run` with a fifo reader and its own data folder, delivering to
one simulator; the broker on loopback with one user per gate.
"""

from __future__ import annotations

import functools
import signal

import pytest
from gate_site import wait_until as wait
from pypdf import PdfReader
from site_bus import BOUW, badge, client, roster_rows, running_site

from sitegate.queue.records import GENESIS_HASH, Kind, Record, canonical_json, digest
from sitegate.queue.signing import DeviceKey
from sitegate.site import topics
from sitegate.site.broker import SITE

pytestmark = pytest.mark.slow

FIRST_UID = 0x30000000
ROSTER = roster_rows(FIRST_UID, 2 * 10**16, "Sitewide", 200)
worker_uid = functools.partial(badge, FIRST_UID)


@pytest.fixture(scope="module")
def site(tmp_path_factory):
    with running_site(tmp_path_factory.mktemp("site"), ROSTER) as running:
        yield running


def on_site(gate) -> dict[str, str]:
    """Last name -> gate, from `sitegate site --json` at this gate."""
    return {p["last_name"]: p["gate"] for p in gate.json("site")["present"]}


def peer(gate, device: str) -> dict:
    return next(g for g in gate.json("site")["gates"] if g["device"] == device)


def test_in_at_a_then_out_at_b_is_an_out_with_no_remark(site):
    _, gates, _ = site
    a, b = gates["gate-a"], gates["gate-b"]
    a.badge(worker_uid(0))
    assert a.badges()[-1]["direction"] == "IN"
    wait(lambda: on_site(b).get("Sitewide0") == "gate-a", "gate-b mirrors gate-a's IN")
    b.badge(worker_uid(0))
    out = b.badges()[-1]
    assert out["outcome"] == "registered" and out["direction"] == "OUT"
    assert "expected_remarks" not in out  # none anticipated: the site's IN was seen
    wait(lambda: "Sitewide0" not in on_site(a), "gate-a sees the OUT made at gate-b")


def test_a_listing_printed_at_c_holds_every_gates_workers(site):
    _, gates, _ = site
    for index, gate in zip((150, 151, 152), gates.values(), strict=True):
        gate.badge(worker_uid(index))
    c = gates["gate-c"]
    wait(lambda: {"Sitewide150", "Sitewide151", "Sitewide152"} <= set(on_site(c)), "gate-c mirrors gate-a and gate-b")
    out = c.directory / "listing.pdf"
    printed = c.sitegate("paper", "print", "--out", str(out), "--lang", "en")
    assert printed.returncode == 0, printed.stderr
    text = "".join(page.extract_text() for page in PdfReader(out).pages)
    for index in (150, 151, 152):
        assert f"Sitewide{index}" in text and f"{2 * 10**16 + index:017d}" in text
    assert all(f"{device}:" in text for device in gates)  # which gates' records it holds, and how fresh


def forged(seq: int, prev_hash: str, uid: str, number: str) -> Record:
    """A well-formed registration record of gate-a, signed with a key that is not gate-a's."""
    payload = {
        "worker": {"kind": "limosa", "number": number, "last_name": "Forged", "first_name": "Fake"},
        "employer": BOUW,
        "direction": "IN",
        "works_declaration": "1Y101DRUNWB5Z",
        "badge_uid": uid,
        "reader": "gate",
        "expected_remarks": [],
    }
    fields = (seq, Kind.REGISTRATION, payload, "2026-11-22T21:00:00.000000Z", 1, "boot", "synced", 0, prev_hash)
    from sitegate.queue.records import signed_message

    message = signed_message(*fields)
    key = DeviceKey.generate()
    return Record(seq, Kind.REGISTRATION, canonical_json(payload), *fields[3:], digest(message), key.sign(message))


def test_a_forged_record_is_rejected_and_never_used(site):
    broker, gates, _ = site
    b = gates["gate-b"]
    before = b.json("site")["rejected_records"]
    state = peer(b, "gate-a")
    record = forged(state["records"] + 1, GENESIS_HASH, "DEADBEEF", "20000000000009999")
    impostor = client(broker, "gate-a", "test-forger")  # gate-a's credentials stolen: the signature still fails
    try:
        message = canonical_json({"origin": "gate-a", "record": record.as_dict()})
        impostor.publish(topics.topic(SITE, "gate-a", topics.RECORDS), message, qos=1).wait_for_publish(10)
    finally:
        impostor.loop_stop()
        impostor.disconnect()
    shown = wait(lambda: (s := b.json("site"))["rejected_records"] > before and s, "gate-b rejects the forgery")
    assert "Forged" not in {p["last_name"] for p in shown["present"]}
    assert any(e["device"] == "gate-a" for e in b.events("bus_record_rejected"))


def test_the_broker_killed_during_a_rush_loses_nothing_and_the_gates_converge(site):
    broker, gates, simulator = site
    a, b = gates["gate-a"], gates["gate-b"]
    broker.kill()
    status = wait(lambda: not (s := a.json("status"))["bus"]["connected"] and s, "gate-a sees the broker gone")
    assert any("site bus is not connected" in w for w in status["warnings"]) and not status["critical"]
    a.badge(*[worker_uid(i) for i in range(10, 40)], worker_uid(190))
    b.badge(*[worker_uid(i) for i in range(40, 70)], worker_uid(190))  # 190 goes IN at both: decided apart
    assert len([e for e in a.badges()[-31:] if e["outcome"] == "registered"]) == 31  # the gate never waited
    assert len([e for e in b.badges()[-31:] if e["outcome"] == "registered"]) == 31
    broker.start()
    for gate in gates.values():
        for other in gates.values():
            if other is gate:
                continue
            last = other.json("status")["records"]
            wait(
                lambda g=gate, o=other, n=last: (s := peer(g, o.device))["records"] >= n and s["missing"] == 0,
                f"{gate.device} mirrors all {last} records of {other.device}",
                timeout=60,
            )
    present = on_site(gates["gate-c"])
    assert {f"Sitewide{i}" for i in range(10, 70)} <= set(present)
    conflicts = gates["gate-c"].json("site")["conflicts"]
    assert [c["direction"] for c in conflicts] == ["IN"] and "20000000000000190" not in str(conflicts)
    assert any(e["direction"] == "IN" for e in a.events("site_conflict") + b.events("site_conflict"))
    assert any(e["direction"] == "IN" for e in gates["gate-c"].events("site_conflict"))  # a third gate says it too
    for gate in gates.values():
        assert gate.json("verify")["ok"]
        # each gate delivered its own registrations to the service all along, broker or not
        wait(lambda g=gate: (q := g.json("queue"))["pending"] + q["in_flight"] == 0 and q["delivered"], "delivered")
    received = simulator.summary()
    registered = sum(len([e for e in g.badges() if e["outcome"] == "registered"]) for g in gates.values())
    assert received["created"] >= registered, received


def test_a_gate_killed_and_restarted_republishes_without_gaps(site):
    _, gates, _ = site
    a, c = gates["gate-a"], gates["gate-c"]
    a.badge(*[worker_uid(i) for i in range(70, 80)])
    a.stop(signal.SIGKILL)
    fleet = wait(lambda: (f := c.json("fleet")) and f[0]["device"] == "gate-a" and f, "the last will: gate-a offline")
    assert fleet[0]["state"] == "offline" and {g["device"] for g in fleet} == {"gate-a", "gate-b", "gate-c"}
    a.start()
    resumed = wait(lambda: a.events("bus_connected"), "gate-a back on the bus")[-1]["resume_after"]
    assert resumed > 0  # from the seq the broker acknowledged before the kill, not from the start
    a.badge(*[worker_uid(i) for i in range(80, 90)])
    last = a.json("status")["records"]
    shown = wait(lambda: (s := peer(c, "gate-a"))["records"] >= last and s, "gate-c holds all of gate-a", timeout=60)
    assert shown["missing"] == 0 and shown["records"] == last
    assert {f"Sitewide{i}" for i in range(70, 90)} <= set(on_site(c))


def test_a_late_gate_learns_who_is_on_site(site):
    _, gates, _ = site
    a, b, c = gates["gate-a"], gates["gate-b"], gates["gate-c"]
    c.stop()
    a.badge(*[worker_uid(i) for i in range(100, 110)])
    b.badge(*[worker_uid(i) for i in range(110, 120)])
    c.start()
    wait(lambda: {f"Sitewide{i}" for i in range(100, 120)} <= set(on_site(c)), "gate-c learns the site at once")


def test_the_fleet_and_the_metrics_show_every_gate_healthy(site):
    _, gates, _ = site
    a = gates["gate-a"]
    fleet = wait(lambda: (f := a.json("fleet")) and all(g["state"] != "offline" for g in f) and f, "all online")
    assert sorted(g["device"] for g in fleet) == ["gate-a", "gate-b", "gate-c"]
    bus = wait(lambda: (s := a.json("status"))["bus"]["peers_heard"] == 2 and s["bus"], "status: both peers heard")
    assert bus["connected"] and bus["peers"] == 2
    textfile = a.directory / "metrics" / "sitegate.prom"
    wait(lambda: textfile.exists() and "sitegate_bus_connected 1.0" in textfile.read_text(), "the daemon's textfile")
    text = textfile.read_text()
    assert "sitegate_bus_peers_heard 2.0" in text and 'sitegate_reader_up{reader="gate"} 1.0' in text
    assert "sitegate_bus_rejected_records 0.0" in text  # gate-a never saw the forgery made under its name
    at_b = gates["gate-b"].sitegate("metrics").stdout
    assert "sitegate_bus_rejected_records 1.0" in at_b and "sitegate_bus_peers_configured 2.0" in at_b


def test_a_new_gate_learns_a_dead_gates_workers_from_another_gate(site):
    _, gates, _ = site
    a, b, c = gates["gate-a"], gates["gate-b"], gates["gate-c"]
    a.badge(worker_uid(130))
    wait(lambda: "Sitewide130" in on_site(b), "gate-b mirrors gate-a")
    a.stop()  # a clean stop says offline
    c.stop()
    for file in (c.directory / "data").glob("sitegate-site.db*"):
        file.unlink()  # gate-c starts over: nothing mirrored
    c.start()
    try:
        wait(lambda: "Sitewide130" in on_site(c), "gate-c learns gate-a's workers from gate-b's mirror")
        assert peer(c, "gate-a")["missing"] == 0
    finally:
        a.start()
