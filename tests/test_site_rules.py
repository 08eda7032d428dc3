"""The site bus's rules through `SiteBus`'s public face (open, step, close) on an in-process broker
(tests/site_loopback.py): catch-up, acknowledgements, anchors, the inbox bound, the fleet view. Fast: no thread,
no timing; the clock is a ManualClock and each round of the bus thread is one `step()`."""

from __future__ import annotations

import dataclasses
import json
from datetime import timedelta

import paho.mqtt.client as mqtt
import pytest
from conftest import registration
from site_loopback import LoopbackBroker

from sitegate.device import Device
from sitegate.domain.registration import append_registration
from sitegate.site import topics
from sitegate.site.bus import (
    CATCHUP_COOLDOWN_NS,
    CATCHUP_WINDOW,
    COALESCE_NS,
    HOLD_AFTER_CONNECT_NS,
    INBOX_MOST_BYTES,
    MAX_PACKET_BYTES,
    PUBLISHED_SEQ,
    SiteBus,
    record_message,
)

SITE = "site-1"


class Gate:
    """One gate in this process: its device (log, key) and its bus on the loopback broker."""

    def __init__(self, device: Device, bus: SiteBus) -> None:
        self.device, self.bus = device, bus
        self.name = device.config.device_id
        self.stopped = False

    def stop(self) -> None:
        """The daemon stopping cleanly: its bus says offline."""
        self.bus.close()
        self.stopped = True

    def badge(self, count: int, first: int = 0) -> None:
        for index in range(first, first + count):
            append_registration(self.device.log, registration(index % 60, "IN" if index % 2 == 0 else "OUT"))
            self.device.log.clock.advance(1)  # the same worker twice in one second: remark 14

    def mirrored(self, peer: str) -> int:
        return self.bus.mirror.next_seq(peer) - 1


@pytest.fixture
def site(tmp_path, config, clock):
    """make(n): n gates on one loopback broker, their buses open (connected), the broker and the gates."""
    broker, opened = LoopbackBroker(), []

    def make(count: int, **bus_options) -> tuple[LoopbackBroker, list[Gate]]:
        names = [f"gate-{chr(ord('a') + i)}" for i in range(count)]
        devices = []
        for name in names:
            device_config = dataclasses.replace(
                config, device=dataclasses.replace(config.device, id=name, data_dir=tmp_path / name)
            )
            devices.append(Device.open(device_config, clock))
        keys = {device.config.device_id: device.key.public_key_hex for device in devices}
        gates = []
        for device in devices:
            name = device.config.device_id
            peers = tuple((other, key) for other, key in keys.items() if other != name)
            bus_config = dataclasses.replace(config.bus, host="127.0.0.1", site=SITE, peers=peers, **bus_options)
            device.config = dataclasses.replace(device.config, bus=bus_config)
            bus = SiteBus(device.config, clock, make_client=broker.client)
            bus.open()
            gates.append(Gate(device, bus))
        opened.extend(gates)
        return broker, gates

    yield make
    for gate in opened:
        if not gate.stopped:
            gate.bus.close()
        gate.device.close()


def rounds(gates: list[Gate], clock, count: int = 3, seconds: float = 1.0) -> None:
    """`count` rounds of every gate's bus thread, `seconds` apart."""
    for _ in range(count):
        for gate in gates:
            gate.bus.step()
        clock.advance(seconds)


def settle(gates, clock) -> None:
    """Rounds until the hold after connecting and the gathering of requests are over for everyone."""
    rounds(gates, clock, count=int(HOLD_AFTER_CONNECT_NS / 1e9) + 3)


def converged(gates: list[Gate]) -> bool:
    return all(g.mirrored(p.name) == p.device.log.count() for g in gates for p in gates if p is not g)


def sent_by(broker, device: str, since: int = 0) -> list[dict]:
    """The record messages `device` published, from the `since`-th record message of the site on."""
    return [json.loads(p.payload) for p in broker.records_published()[since:] if p.sender == device]


@pytest.mark.parametrize("count", [3, 6])
def test_after_the_broker_was_away_each_missed_record_is_published_once(site, clock, count):
    """Issue 23 §1: every gate that held a copy answered every request, each answer to all: 0.5·(N−1)² messages a
    missed record. Now the owner answers once for everyone, relays stay quiet while it speaks."""
    broker, gates = site(count)
    settle(gates, clock)
    broker.go_down()
    for index, gate in enumerate(gates):
        gate.badge(5, first=index * 5)
    rounds(gates, clock, count=2)
    published_before = len(broker.records_published())
    broker.come_back(*[g.name for g in gates[: count // 2]])  # the gates come back one after the other
    rounds(gates, clock, count=2)
    broker.come_back(*[g.name for g in gates[count // 2 :]])
    settle(gates, clock)
    assert converged(gates)
    missed = 5 * count
    assert len(broker.records_published()) - published_before == missed


def test_a_gate_back_alone_gets_what_it_missed_from_the_owners_once_and_not_from_relays(site, clock):
    broker, gates = site(4)
    a, b, c, d = gates
    settle(gates, clock)
    d.bus.client.connected = False  # d cut off alone (a partition): the others go on
    a.badge(7)
    b.badge(3)
    settle(gates, clock)
    before = len(broker.records_published())
    broker.come_back(d.name)
    settle(gates, clock)
    assert converged(gates)
    assert len(broker.records_published()) - before == 10  # a's 7 and b's 3, once: c held copies and stayed quiet
    assert {p.sender for p in broker.records_published()[before:]} == {a.name, b.name}


def test_a_gap_is_filled_by_its_owner_alone_from_the_first_missing_record(site, clock):
    """A record lost on the way (the broker killed after acknowledging it) shows as a gap when the next one
    comes; the mirror keeps a chain, not what came after the gap, so the owner sends from the first missing
    record to what it has published, once, and the other gate holding copies stays quiet."""
    broker, gates = site(3)
    a, b, c = gates
    settle(gates, clock)
    a.badge(2)
    settle(gates, clock)
    broker.lose[b.name] = 1  # b misses seq 3
    a.badge(4, first=2)
    before = len(broker.records_published())
    settle(gates, clock)
    assert converged(gates)
    assert [m["record"]["seq"] for m in sent_by(broker, a.name, before)] == [3, 4, 5, 6, 3, 4, 5, 6]
    assert sent_by(broker, c.name, before) == []


def test_the_owner_does_not_resend_what_it_published_after_the_requester_was_listening(site, clock):
    """A gate back on the bus publishes its probe, then its request: an owner that took the probe alone, then
    published its backlog (the hold over), must not send the backlog again for the request that follows."""
    broker, (a, b) = site(2)
    settle([a, b], clock)
    b.stop()
    broker.go_down()
    a.badge(5)
    broker.come_back(a.name)
    b_again = broker.client(b.device.config, "gate-b-back")
    b_again.connect_async("127.0.0.1", 0)
    b_again.loop_start()
    b_again.subscribe([(topics.site_filter(SITE), mqtt.SubscribeOptions(qos=1, noLocal=True))])
    b_again.publish(topics.topic(SITE, b.name, topics.CHECKPOINT), json.dumps({"probe": "s1"}), qos=1)
    before = len(broker.records_published())
    a.bus.step()  # b heard: the hold is over, the backlog goes out, b listening
    assert [m["record"]["seq"] for m in sent_by(broker, a.name, before)] == [1, 2, 3, 4, 5]
    catchup = topics.topic(SITE, b.name, topics.CATCHUP)
    for session, answered in (("s1", []), ("s2", [1, 2, 3, 4, 5])):  # s2: a session whose start a did not see
        before = len(broker.records_published())
        b_again.publish(catchup, json.dumps({"want": {a.name: 1}, "session": session}), qos=1)
        rounds([a], clock, count=2)
        assert [m["record"]["seq"] for m in sent_by(broker, a.name, before)] == answered


def test_a_relay_answers_for_a_silent_owner_and_offers_its_later_start_as_an_anchor(site, clock):
    broker, gates = site(3)
    a, b, c = gates
    settle(gates, clock)
    a.badge(4)
    settle(gates, clock)
    a.stop()  # its health says offline
    gates.remove(a)
    c.bus.mirror.db.execute("DELETE FROM mirror")  # c, wiped, asks again from 1 (its whole mirror: a new gate)
    c.bus.mirror.db.execute("DELETE FROM peers")
    b.bus.mirror.db.execute("DELETE FROM mirror WHERE seq < 3")  # b's mirror starts at 3 (pruned, or b was late)
    before = len(broker.records_published())
    broker.go_down()
    broker.come_back(b.name, c.name)
    settle(gates, clock)
    relayed = [m for m in sent_by(broker, b.name, before) if m["origin"] == a.name]
    assert [m["record"]["seq"] for m in relayed] == [3, 4] and c.mirrored(a.name) == 4
    assert [m.get("anchor", False) for m in relayed] == [True, False]  # a later start than asked: an anchor


def test_a_relay_never_answers_for_an_owner_heard_just_now(site, clock):
    broker, gates = site(3)
    a, b, c = gates
    settle(gates, clock)
    a.badge(4)
    settle(gates, clock)
    before = len(broker.records_published())
    asker = broker.client(c.device.config, "someone-with-cs-password")
    asker.connect_async("127.0.0.1", 0)
    asker.loop_start()
    asker.publish(topics.topic(SITE, c.name, topics.CATCHUP), json.dumps({"want": {a.name: 1}}), qos=1)
    settle(gates, clock)
    assert [m["origin"] for m in sent_by(broker, b.name, before)] == []  # b relays nothing: a answers
    assert [m["record"]["seq"] for m in sent_by(broker, a.name, before)] == [1, 2, 3, 4]


def test_a_flood_of_one_request_earns_one_answer_per_cooldown(site, clock):
    """One small request a second (a gate's bug, or anyone with its password) must not make the owner resend 48 h
    of records each time; asking for less than was sent within the cooldown waits for its end."""
    broker, gates = site(2)
    a, b = gates
    settle(gates, clock)
    a.badge(5)
    settle(gates, clock)
    flooder = broker.client(b.device.config, "flooder")
    flooder.connect_async("127.0.0.1", 0)
    flooder.loop_start()
    request = topics.topic(SITE, b.name, topics.CATCHUP)

    def answered(start: int, seconds: float) -> int:
        before = len(sent_by(broker, a.name))
        for _ in range(int(seconds * 10)):
            flooder.publish(request, json.dumps({"want": {a.name: start}}), qos=1)
            a.bus.step()
            clock.advance(0.1)
        return len(sent_by(broker, a.name)) - before

    assert answered(2, COALESCE_NS / 1e9 + 0.2) == 4  # gathered for a moment, then once
    assert answered(2, CATCHUP_COOLDOWN_NS / 1e9 - 2) == 0  # the flood within the cooldown: nothing resent
    assert answered(2, 3) == 4  # its end: once more
    assert answered(1, COALESCE_NS / 1e9 + 0.2) == 5  # more than was sent: at once


def test_answers_stay_within_the_horizon_and_go_out_in_pages(site, clock, monkeypatch):
    import sitegate.site.bus

    PAGE = 20
    monkeypatch.setattr(sitegate.site.bus, "ANSWER_PAGE", PAGE)  # 1000 in the field: the same rule, fewer appends
    broker, (a, b) = site(2)
    settle([a, b], clock)
    b.bus.client.connected = False  # b cut off alone: a publishes on, b misses it all
    a.badge(3)
    clock.advance((CATCHUP_WINDOW + timedelta(hours=1)).total_seconds())  # 1 to 3: beyond the horizon now
    a.badge(PAGE + 10, first=3)
    rounds([a], clock, count=3)
    assert b.mirrored(a.name) == 0
    broker.come_back(b.name)
    pages = []
    for _ in range(int(HOLD_AFTER_CONNECT_NS / 1e9) + 4):
        before = len(sent_by(broker, a.name))
        rounds([a, b], clock, count=1)
        pages.append(len(sent_by(broker, a.name)) - before)
    assert [n for n in pages if n] == [PAGE, 10]  # one page a round
    first = sent_by(broker, a.name)[-(PAGE + 10)]
    assert first["record"]["seq"] == 4 and first["anchor"] is True  # the horizon's start, offered as an anchor
    assert b.mirrored(a.name) == PAGE + 13


def test_the_publisher_resumes_after_the_highest_seq_acknowledged_with_all_before_it(site, clock):
    broker, (a, b) = site(2)
    settle([a, b], clock)
    broker.hold_acks = True
    a.badge(3)
    a.bus.step()
    mids = broker.held_acks(a.name)
    assert len(mids) == 3
    broker.release_ack(a.name, mids[1])  # seq 2 acknowledged before seq 1: nothing can be skipped on a restart
    a.bus.step()
    assert int(a.bus.mirror.state(PUBLISHED_SEQ) or 0) == 0
    broker.release_ack(a.name, mids[0])
    a.bus.step()
    assert a.bus.mirror.state(PUBLISHED_SEQ) == "2"
    broker.release_ack(a.name, mids[2])
    a.bus.step()
    assert a.bus.mirror.state(PUBLISHED_SEQ) == "3"


def test_a_flood_waits_in_a_bounded_inbox_and_what_it_drops_is_counted(site, clock):
    """Anyone with one gate's password may publish 1 MiB messages as fast as the network goes: the messages
    waiting for the bus thread stay within INBOX_MOST_BYTES and the dropped ones are named and counted."""
    broker, (a, b) = site(2)
    settle([a, b], clock)
    flooder = broker.client(b.device.config, "flooder")
    flooder.connect_async("127.0.0.1", 0)
    flooder.loop_start()
    for _ in range(40):  # paho's thread, faster than the bus thread
        flooder.publish(topics.topic(SITE, b.name, topics.RECORDS), b"[" * (MAX_PACKET_BYTES - 1000), qos=1)
    assert 16 * (MAX_PACKET_BYTES - 1000) <= INBOX_MOST_BYTES
    a.bus.step()
    reasons = [row["reason"] for row in a.bus.mirror.rejected(limit=100)]
    assert a.bus.counters.rejected == 24
    assert reasons.count("not JSON") == 16 and "24 message(s) dropped unread" in " ".join(reasons)


def test_an_edited_payload_with_the_original_hash_is_compared_and_counted(site, clock):
    """Issue 23 §6: the mirror compared hashes only, so an edit sent with the original's hash passed as a repeat."""
    broker, (a, b) = site(2)
    settle([a, b], clock)
    a.badge(1)
    settle([a, b], clock)
    original = next(a.device.log.records())
    edited = dataclasses.replace(original, payload=original.payload.replace("Worker0", "Edited0"))
    sender = broker.client(a.device.config, "someone-with-as-password")
    sender.connect_async("127.0.0.1", 0)
    sender.loop_start()
    sender.publish(topics.topic(SITE, a.name, topics.RECORDS), record_message(a.name, edited), qos=1)
    b.bus.step()
    assert b.bus.counters.rejected == 1
    assert b.bus.mirror.rejected(limit=1)[0]["reason"] == "differs from the record already mirrored at this seq"
    assert "Edited0" not in next(b.bus.mirror.records_of(a.name, 1)).payload


# What the gates need from any MQTT 5 broker (the README's "A larger site"): nothing of mosquitto's own.
MQTT5_FEATURES_USED = {
    "username and password (the ACL keys on it)",
    "clean start",
    "CONNECT property MaximumPacketSize",
    "retained last will",
    "subscribe QoS 1",
    "subscription option No Local",
    "publish QoS 1",
    "publish QoS 1, retained",
}


def test_the_gates_use_only_standard_mqtt5_features_and_their_own_topics(site, clock):
    """A broker cluster (EMQX, HiveMQ, VerneMQ…) may replace mosquitto: the gates ask only for what MQTT 5
    specifies, on topics under sitegate/ (check_topic refuses `$SYS` and the like)."""
    broker, gates = site(3)
    settle(gates, clock)
    gates[0].badge(3)
    broker.go_down()
    gates[1].badge(2)
    broker.come_back(*[g.name for g in gates])
    settle(gates, clock)
    for gate in gates:
        gate.bus.health = lambda: {"online": True}
    rounds(gates, clock, count=2)
    gates[2].stop()
    assert converged(gates[:2])
    assert broker.features == MQTT5_FEATURES_USED


def test_the_fleet_view_reads_the_retained_health_through_an_injected_client(site, clock, config):
    """`sitegate fleet` through its public face: a health message dated in the future is never OK."""
    from sitegate.clock.timefmt import format_utc
    from sitegate.site.fleet import read_fleet

    broker, gates = site(2)
    settle(gates, clock)
    now = clock.now()
    for gate, sent in ((gates[0], now), (gates[1], now + timedelta(days=1000))):
        body = {"online": True, "sent_utc": format_utc(sent), "warnings": [], "critical": []}
        gate.bus.client.publish(topics.topic(SITE, gate.name, topics.HEALTH), json.dumps(body), qos=1, retain=True)
    fleet = read_fleet(gates[0].device.config, clock, make_client=broker.client)
    assert [(g.device, g.state) for g in fleet] == [("gate-b", "unreadable"), ("gate-a", "ok")]


def test_the_gates_code_names_no_broker():
    """Only the demo and the tests start mosquitto (site/broker.py, demo/site.py); what a gate runs and the fleet
    view speak MQTT 5 to whatever broker [bus] host names."""
    import importlib.resources
    import subprocess
    import sys

    for module in ("bus", "fleet", "inbox", "mirror", "topics", "view", "acknowledge"):
        source = importlib.resources.files("sitegate.site").joinpath(f"{module}.py").read_text(encoding="utf-8")
        assert "mosquitto" not in source.lower(), module
    loaded = subprocess.run(
        [sys.executable, "-c", "import sys, sitegate.daemon, sitegate.site.fleet; print(sorted(sys.modules))"],
        capture_output=True, text=True, check=True,
    ).stdout  # fmt: skip
    assert "sitegate.site.bus" in loaded and "sitegate.site.broker" not in loaded
