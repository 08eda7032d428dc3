"""An MQTT 5 broker in this process, for the bus's rules tested through `SiteBus`'s public face (fast, no timing).

Only what the gates use, as the specification says it: topic filters with `+` and `#`, QoS 1 acknowledged at
once, retained messages (sent on subscribe with the retain flag, cleared by an empty payload), the No Local
subscription option, the last will on a broken connection, and the broker refusing a publish its ACL forbids
(here: any topic outside the sender's own device level, as the shipped ACL does). The real mosquitto, with the
shipped configuration, is what tests/test_site_*.py marked slow run against.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

import paho.mqtt.client as mqtt
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.reasoncodes import ReasonCode

from sitegate.site import topics

SUCCESS = ReasonCode(PacketTypes.PUBACK, "Success")
NOT_AUTHORIZED = ReasonCode(PacketTypes.PUBACK, "Not authorized")


def matches(topic_filter: str, topic: str) -> bool:
    """MQTT 5 §4.7: `+` one level, `#` the rest (and the parent level itself)."""
    wanted, levels = topic_filter.split("/"), topic.split("/")
    for index, part in enumerate(wanted):
        if part == "#":
            return True
        if index >= len(levels) or (part != "+" and part != levels[index]):
            return False
    return len(wanted) == len(levels)


@dataclass
class Published:
    sender: str
    topic: str
    payload: bytes
    retain: bool


class Info:
    def __init__(self, mid: int) -> None:
        self.mid = mid

    def wait_for_publish(self, timeout: float | None = None) -> None:
        """Acknowledged at once."""


@dataclass
class LoopbackClient:
    """The part of paho's `mqtt.Client` a gate calls; the callbacks run in the caller's thread."""

    broker: LoopbackBroker
    user: str
    will: tuple[str, str] | None
    on_connect: Callable | None = None
    on_disconnect: Callable | None = None
    on_message: Callable | None = None
    on_publish: Callable | None = None
    on_subscribe: Callable | None = None
    subscriptions: list[tuple[str, bool]] = field(default_factory=list)  # (filter, no_local)
    connected: bool = False
    wants_connection: bool = False
    next_mid: int = 0

    def connect_async(self, host: str, port: int, **options: object) -> None:
        self.wants_connection = True
        self.broker.used("username and password (the ACL keys on it)")
        if options.get("clean_start") is True:
            self.broker.used("clean start")
        properties = options.get("properties")
        if properties is not None:
            for name in properties.json():
                self.broker.used(f"CONNECT property {name}")
        if self.will is not None:
            self.broker.used("retained last will")

    connect = connect_async  # paho's connect opens the socket; the CONNACK still comes through the loop

    def loop_start(self) -> None:
        self.broker.clients.append(self)
        if self.broker.up:
            self.broker.connect(self)

    def loop_stop(self) -> None:
        if self in self.broker.clients:
            self.broker.clients.remove(self)

    def disconnect(self) -> None:
        self.wants_connection = self.connected = False  # a clean disconnect: no last will

    def is_connected(self) -> bool:
        return self.connected

    def subscribe(self, wanted: str | list[tuple[str, mqtt.SubscribeOptions]], qos: int = 0) -> None:
        if isinstance(wanted, str):
            wanted = [(wanted, mqtt.SubscribeOptions(qos=qos))]
        for topic_filter, options in wanted:
            self.broker.check_topic(topic_filter)
            self.broker.used(f"subscribe QoS {options.QoS}")
            if options.noLocal:
                self.broker.used("subscription option No Local")
            self.subscriptions.append((topic_filter, options.noLocal))
            for topic, (payload, _) in sorted(self.broker.retained.items()):
                if matches(topic_filter, topic):
                    self.deliver(topic, payload, retain=True)
        if self.on_subscribe:
            self.on_subscribe(self, None, 1, [SUCCESS], None)

    def publish(self, topic: str, payload: str | bytes, qos: int = 0, retain: bool = False) -> Info:
        self.next_mid += 1
        if not self.connected:
            return Info(self.next_mid)  # paho would queue it: a test says when the broker is away
        body = payload.encode() if isinstance(payload, str) else payload
        self.broker.check_topic(topic)
        self.broker.used(f"publish QoS {qos}" + (", retained" if retain else ""))
        allowed = topics.parse(topic) is not None and topics.parse(topic).device == self.user
        if allowed:
            self.broker.route(self, topic, body, retain)
        if self.broker.hold_acks:
            self.broker.pending_acks.append((self, self.next_mid, allowed))
        elif self.on_publish:
            self.on_publish(self, None, self.next_mid, SUCCESS if allowed else NOT_AUTHORIZED, None)
        return Info(self.next_mid)

    def deliver(self, topic: str, payload: bytes, retain: bool) -> None:
        message = mqtt.MQTTMessage(topic=topic.encode())
        message.payload, message.retain = payload, retain
        if self.on_message:
            self.on_message(self, None, message)


class LoopbackBroker:
    def __init__(self) -> None:
        self.clients: list[LoopbackClient] = []
        self.retained: dict[str, tuple[bytes, str]] = {}
        self.published: list[Published] = []
        self.up = True
        self.hold_acks = False  # PUBACKs kept back, then released in the order a test says
        self.pending_acks: list[tuple[LoopbackClient, int, bool]] = []
        self.lose: dict[str, int] = {}  # user -> messages to it lost on the way (a network's loss, a broker's fault)
        self.features: set[str] = set()  # what the clients asked of the broker, in the specification's words

    def used(self, feature: str) -> None:
        self.features.add(feature)

    def check_topic(self, name: str) -> None:
        """Only the gates' own tree: no `$SYS`, no broker-specific topic (MQTT 5 §4.7.2: `$` topics are the
        broker's own, and differ from one broker to another)."""
        if not name.startswith(f"{topics.ROOT}/"):
            raise AssertionError(f"{name!r}: a topic outside {topics.ROOT}/, not every broker has it")

    def client(self, config, client_id: str, will: tuple[str, str] | None = None) -> LoopbackClient:
        """SiteBus's make_client: the gate's user name is its device id, as with the shipped ACL."""
        return LoopbackClient(self, config.bus.username or config.device_id, will)

    def connect(self, client: LoopbackClient) -> None:
        client.connected, client.subscriptions = True, []
        if client.on_connect:
            client.on_connect(client, None, {}, ReasonCode(PacketTypes.CONNACK, "Success"), None)

    def route(self, sender: LoopbackClient, topic: str, payload: bytes, retain: bool) -> None:
        self.published.append(Published(sender.user, topic, payload, retain))
        if retain:
            if payload:
                self.retained[topic] = (payload, sender.user)
            else:
                self.retained.pop(topic, None)
        for receiver in list(self.clients):
            if not receiver.connected:
                continue
            no_local = [nl for f, nl in receiver.subscriptions if matches(f, topic)]
            if no_local and not (receiver is sender and all(no_local)):
                if self.lose.get(receiver.user, 0) > 0:
                    self.lose[receiver.user] -= 1
                    continue
                receiver.deliver(topic, payload, retain=False)

    def go_down(self) -> None:
        """The broker killed: every connection breaks (the last wills are lost with it)."""
        self.up = False
        for client in self.clients:
            if client.connected:
                client.connected = False
                if client.on_disconnect:
                    client.on_disconnect(
                        client, None, {}, ReasonCode(PacketTypes.DISCONNECT, "Unspecified error"), None
                    )

    def come_back(self, *order: str) -> None:
        """The broker back: the clients reconnect, in this order of users (those not named: not yet)."""
        self.up = True
        for user in order:
            for client in self.clients:
                if client.user == user and client.wants_connection and not client.connected:
                    self.connect(client)

    def held_acks(self, user: str) -> list[int]:
        return [mid for client, mid, _ in self.pending_acks if client.user == user]

    def release_ack(self, user: str, mid: int) -> None:
        for pending in list(self.pending_acks):
            client, held_mid, allowed = pending
            if client.user == user and held_mid == mid:
                self.pending_acks.remove(pending)
                client.on_publish(client, None, mid, SUCCESS if allowed else NOT_AUTHORIZED, None)

    def records_published(self) -> list[Published]:
        return [p for p in self.published if p.topic.endswith(f"/{topics.RECORDS}")]
