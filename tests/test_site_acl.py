"""Issue 23: the shipped broker configuration and ACL keep each user in its lane, on a real mosquitto started from
them (`LocalBroker`: the shipped files, paths and port rewritten), with bare MQTT 5 clients holding each user's
password: what someone with a gate's or the fleet's password can do.

A refusal is the broker's: a PUBACK that is a failure, and the message reaches no one who may read that topic
(gate-b's listener reads the whole of site-1 and every gate's health), nor stays retained.
"""

from __future__ import annotations

import json
import threading

import paho.mqtt.client as mqtt
import pytest
from gate_site import wait_until as wait
from simulator_process import SimulatorProcess
from site_bus import SiteGate, badge, client, roster_rows, send_too_large, simulator_service

from sitegate.clock import SYSTEM
from sitegate.queue import database
from sitegate.queue.log import LogView
from sitegate.site import topics
from sitegate.site.broker import SITE, LocalBroker, shipped
from sitegate.site.bus import MAX_PACKET_BYTES

pytestmark = pytest.mark.slow

NOT_AUTHORIZED = 0x87
OTHER_SITE = "site-2"


@pytest.fixture(scope="module")
def broker(tmp_path_factory):
    running = LocalBroker(tmp_path_factory.mktemp("acl"), SYSTEM).start()
    try:
        yield running
    finally:
        running.stop()


class Listener:
    """gate-b's view: its site and every gate's health, as its ACL lets it read."""

    def __init__(self, broker: LocalBroker, name: str) -> None:
        self.heard: list[tuple[str, bytes]] = []
        self.connection = client(broker, "gate-b", name)
        self.connection.on_message = lambda c, u, message: self.heard.append((message.topic, message.payload))
        subscribed = threading.Event()
        self.connection.on_subscribe = lambda *args: subscribed.set()
        wait(self.connection.is_connected, "gate-b's listener connected")
        self.connection.subscribe([(topics.site_filter(SITE), 1), (topics.FLEET_HEALTH, 1)])
        assert subscribed.wait(10), "gate-b's listener was not subscribed"

    def payloads(self) -> list[bytes]:
        return [payload for _, payload in self.heard]

    def close(self) -> None:
        self.connection.loop_stop()
        self.connection.disconnect()


def publish(broker: LocalBroker, user: str, topic: str, payload: bytes, retain: bool = False) -> mqtt.ReasonCode:
    """One QoS 1 message with `user`'s password; the broker's PUBACK reason code."""
    answers: list[mqtt.ReasonCode] = []
    connection = client(broker, user, f"test-{user}-{len(payload)}-{topic.replace('/', '-')}")
    connection.on_publish = lambda c, u, mid, reason, props: answers.append(reason)
    try:
        wait(connection.is_connected, f"{user}'s credentials connected")
        connection.publish(topic, payload, qos=1, retain=retain).wait_for_publish(30)
        wait(lambda: answers, f"the broker acknowledged {user}'s message")
        return answers[0]
    finally:
        connection.loop_stop()
        connection.disconnect()


def retained_now(broker: LocalBroker, topic: str) -> list[bytes]:
    """What a new subscriber of `topic` is given at once (the fleet's view of retained health)."""
    fresh = Listener(broker, f"test-retained-{topic.replace('/', '-')}")
    try:
        marker = b"after-the-retained"
        assert publish(broker, "gate-a", topics.topic(SITE, "gate-a", topics.HEALTH), marker).value == 0
        wait(lambda: marker in fresh.payloads(), "the marker after the retained messages arrived")
        return [payload for where, payload in fresh.heard if where == topic]
    finally:
        fresh.close()


REFUSED = [
    # The fleet user is read-only: no catch-up request (every gate would resend its mirror) ...
    ("fleet", topics.topic(SITE, "fleet", topics.CATCHUP), False),
    # ... and no retained health planting a gate that `sitegate fleet` would show.
    ("fleet", topics.topic(SITE, "fleet", topics.HEALTH), True),
    ("fleet", topics.topic(SITE, "gate-a", topics.HEALTH), True),
    # A gate of site-1 writes nothing into another site (every gate there would count a rejection) ...
    ("gate-a", topics.topic(OTHER_SITE, "gate-a", topics.RECORDS), False),
    ("gate-a", topics.topic(OTHER_SITE, "gate-a", topics.HEALTH), True),
    # ... nothing as another gate of its own site, nothing outside its three topics.
    ("gate-a", topics.topic(SITE, "gate-b", topics.RECORDS), False),
    ("gate-a", topics.topic(SITE, "gate-a", "test"), False),
    ("gate-a", f"{topics.ROOT}/{SITE}/gate-a", False),
]


@pytest.mark.parametrize(("user", "topic", "retain"), REFUSED, ids=[f"{u}:{t}" for u, t, _ in REFUSED])
def test_the_broker_refuses_a_user_out_of_its_lane(broker, user, topic, retain):
    listener = Listener(broker, "test-listener")
    try:
        attempt = f"{user} tried {topic}".encode()
        answer = publish(broker, user, topic, attempt, retain)
        assert answer.value == NOT_AUTHORIZED, f"the broker answered {answer} to {user} on {topic}"
        marker = f"gate-a's own after {topic}".encode()
        assert publish(broker, "gate-a", topics.topic(SITE, "gate-a", topics.RECORDS), marker).value == 0
        wait(lambda: marker in listener.payloads(), "gate-a's own message arrives")
        assert attempt not in listener.payloads()
    finally:
        listener.close()
    if retain:
        assert attempt not in retained_now(broker, topic), "the refused message stayed retained"


def test_a_gate_writes_its_own_three_topics_and_its_site_reads_them(broker):
    """The refusals above are the ACL's, not a broker refusing everything."""
    listener = Listener(broker, "test-listener-own")
    try:
        sent = []
        for what in (topics.RECORDS, topics.CATCHUP, topics.HEALTH):
            payload = f"gate-a {what}".encode()
            own = topics.topic(SITE, "gate-a", what)
            answer = publish(broker, "gate-a", own, payload, retain=what == topics.HEALTH)
            assert answer.value == 0, f"gate-a refused on its own {what}: {answer}"
            sent.append(payload)
        wait(lambda: set(sent) <= set(listener.payloads()), "gate-b heard gate-a's three messages")
    finally:
        listener.close()


def max_packet_size() -> int:
    lines = [line.split() for line in shipped("sitegate.conf").splitlines()]
    return next(int(words[1]) for words in lines if words and words[0] == "max_packet_size")


def test_the_broker_refuses_a_message_larger_than_a_gate_takes_in(broker):
    """The broker's own limit, below a gate's MQTT 5 Maximum Packet Size: a message the broker passes on is one every
    gate takes; a larger one is refused to its sender (disconnected, "packet too large"), never dropped silently by
    each gate."""
    limit = max_packet_size()
    assert limit < MAX_PACKET_BYTES
    listener = Listener(broker, "test-listener-size")
    topic = topics.topic(SITE, "gate-a", topics.RECORDS)
    try:
        oversized = b"o" * limit  # with its topic and header, over the limit
        send_too_large(broker, "gate-a", topic, oversized)
        largest = b"l" * (limit - 1024)  # a topic and header fit in 1 KiB
        assert publish(broker, "gate-a", topic, largest).value == 0
        wait(lambda: largest in listener.payloads(), "the largest message allowed arrives")
        assert oversized not in listener.payloads()
    finally:
        listener.close()


def test_a_gate_answers_catch_up_requests_of_its_configured_peers_only(broker, tmp_path):
    """gate-c's password may write a catch-up request in site-1 (the ACL lists it), but gate-b is not configured
    with gate-c as a peer: gate-b must not resend its records for it (an answer can be 48 h of records)."""
    simulator = SimulatorProcess()
    service = simulator_service(simulator, tmp_path)
    peer = SiteGate(tmp_path / "gate-a", "gate-a", service)  # never started: gate-b pins its key
    b = SiteGate(tmp_path / "gate-b", "gate-b", service)
    b.configure(broker.bus_section(b.directory, "gate-b", {"gate-a": peer.public_key}, health_every_s=1.0))
    seqs: list[int] = []
    listener = client(broker, "gate-a", "test-records-of-gate-b")
    listener.on_message = lambda c, u, message: seqs.append(json.loads(message.payload)["record"]["seq"])
    subscribed = threading.Event()
    listener.on_subscribe = lambda *args: subscribed.set()
    try:
        wait(listener.is_connected, "gate-a's listener connected")
        listener.subscribe(topics.topic(SITE, "gate-b", topics.RECORDS), qos=1)
        assert subscribed.wait(10)
        b.roster(roster_rows(0x60000000, 4 * 10**16, "Peer", 3))
        b.start()
        b.badge(*(badge(0x60000000, i) for i in range(3)))
        db = database.connect_readonly(b.directory / "data" / "sitegate.db")
        try:
            newest = LogView(db).last().seq
        finally:
            db.close()
        wait(lambda: newest in seqs, "gate-b published its records")
        catchup = topics.topic(SITE, "{}", topics.CATCHUP)
        asked_by_c = json.dumps({"want": {"gate-b": 1}}).encode()
        assert publish(broker, "gate-c", catchup.format("gate-c"), asked_by_c).value == 0  # the ACL lets it ask
        asked_by_a = json.dumps({"want": {"gate-b": 2}}).encode()
        assert publish(broker, "gate-a", catchup.format("gate-a"), asked_by_a).value == 0
        # gate-b takes the requests in order: once gate-a's answer (from seq 2) is in, an answer to gate-c (from
        # seq 1) would have come before it.
        wait(lambda: seqs.count(newest) >= 2, "gate-b answered its configured peer")
        assert seqs.count(1) == 1, f"gate-b answered gate-c, not its peer: seq 1 sent {seqs.count(1)} times"
    finally:
        listener.loop_stop()
        listener.disconnect()
        b.stop()
        simulator.stop()
