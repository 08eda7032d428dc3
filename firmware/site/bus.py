"""The site bus: this gate's signed records out to the broker, its peers' records in to the mirror (MQTT, paho).

One thread of its own, beside the gate, never on the badge path: the gate appends and answers the worker as
before, then only sets `wake`. The bus thread publishes every record of the own log unchanged (QoS 1), in seq
order, and keeps the highest seq the broker acknowledged (all before it included) in the mirror file, so a
restart (or a SIGKILL) resumes there: at-least-once, receivers are idempotent on (device, seq).

Catch-up by request, not retained state: on every (re)connect, and on every gap it sees, a gate publishes on its
own `catchup` topic which seqs it wants of which device. The traffic grows with the records missed, not with the
square of the gate count (issue 23): the owner answers on its own `records` topic, which every gate reads, once
for everyone who asked within a moment (the lowest seq asked for), and only up to what its publisher had sent
already (the rest comes through the publisher); a peer relays from its mirror (the records are signed by their
origin, so a relay cannot alter them) only while the owner is silent. Every answer stays within the 48 h horizon
and goes out in pages. After a reconnect a gate holds its backlog and its answers until every peer is heard
again (or HOLD_AFTER_CONNECT_NS): after a broker restart the gates come back within the reconnect delay, and
what the first one published before the others were listening would have to be sent again. The request made on
a (re)connect names its session, the probe published just before it: an owner that saw the probe sends only what
it had published before then. Topics carry no
worker identifier, and the broker keeps nothing but the health messages and each gate's latest checkpoint.

The retained checkpoint is a witness off the device: rolling back the whole data directory (log, ledger, head file)
fools every witness on it, not the broker. At each connect the gate reads its own retained checkpoint back (a probe
of its own, echoed after it, says it has been read, or that there is none) and hands it to the daemon, which judges
the log against it like any witness; only then does the gate publish its newer checkpoints, and never one older
than what the broker holds: the evidence of a rollback stays there. The peers are witnesses too: each keeps the
newest checkpoint of every peer it verified (the peer's pinned key), and sends it back on its `witness` topic when
that peer asks to catch up, so a broker that lost its retained messages does not lose the evidence.
"""

from __future__ import annotations

import itertools
import json
import logging
import secrets
import threading
import typing
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta

import paho.mqtt.client as mqtt
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties

from sitegate.clock import Clock
from sitegate.clock.timefmt import format_utc, parse_utc
from sitegate.config import BusConfig, Config
from sitegate.errors import ConfigError
from sitegate.jsonlog import event
from sitegate.queue import checkpoints, database
from sitegate.queue.log import LogView
from sitegate.queue.records import Kind, Record, canonical_json
from sitegate.settings import Problem
from sitegate.site import topics
from sitegate.site.inbox import Inbox
from sitegate.site.mirror import Mirror, Verdict
from sitegate.site.mirror import connect as connect_mirror

logger = logging.getLogger("sitegate.site.bus")
daemon_logger = logging.getLogger("sitegate.daemon")  # a restart of the bus is the daemon's line, as it always was
RESTART_PAUSE_S = 5.0
CATCHUP_WINDOW = timedelta(hours=48)  # what a catch-up answer offers at most: the decisions' own horizon
CATCHUP_COOLDOWN_NS = int(10e9)  # a gate asking again for what it was sent just now is answered after this
MAX_UNACKED = 500  # records published and not yet acknowledged, before the publisher waits
RECONNECT_MOST_S = 4  # paho's reconnect delay doubles from 1 s up to this: the gates return within it
# The backlog waits this long at most for the peers after a reconnect: two reconnect delays and a margin for a
# busy gate; a dead peer holds nobody longer (it asks when it comes back, and is answered once).
HOLD_AFTER_CONNECT_NS = int((2 * RECONNECT_MOST_S + 2) * 1e9)
COALESCE_NS = int(0.5e9)  # requests for the same device within this moment share one answer
ANSWER_PAGE = 1000  # records in one round of an answer; the rest in the next rounds
MIRROR_KEEP = CATCHUP_WINDOW  # the gate's decisions read 48 h back, the day's listing less (a peer's own log keeps all)
PRUNE_EVERY_NS = int(3600e9)
PUBLISHED_SEQ = "published_seq"
PEER_CHECKPOINT = "checkpoint:"  # + a peer's device id: its newest checkpoint we verified (canonical JSON)
CONNECTED = "connected"  # "1" or "0", with CONNECTED_SINCE: for `sitegate status` and the metrics, read elsewhere
CONNECTED_SINCE = "connected_since_utc"
MAX_PACKET_BYTES = 2**20  # the largest message a gate takes in: a record is a few kB (a listing's names ~20 bytes a
# worker), a health message less; the broker drops larger ones for us (MQTT 5 Maximum Packet Size) before they
# reach our memory, whoever sent them
INBOX_MOST_BYTES = 16 * MAX_PACKET_BYTES  # messages waiting for the bus thread; beyond, dropped (site/inbox.py)
GAP_REQUEST_FIRST_NS = int(2e9)  # a gap asked for again after 2 s, then 4, 8 … at most every 5 minutes, while
GAP_REQUEST_MOST_NS = int(300e9)  # nobody holds the records (their gate dead and no relay has them)


def mqtt_client(config: Config, client_id: str, will: tuple[str, str] | None = None) -> mqtt.Client:
    """A paho client with this gate's credentials and TLS settings (the daemon, `sitegate fleet`)."""
    bus = config.bus
    client = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id=client_id, protocol=mqtt.MQTTv5)
    username = bus.username or config.device_id
    password = None
    if bus.password_file is not None:
        try:
            password = bus.password_file.read_text(encoding="utf-8").strip()
        except OSError as error:
            fix = "install the gate's broker password there (mode 0640, group sitegate)"
            raise ConfigError([Problem("bus.password_file", str(error), fix)], config.source) from None
    client.username_pw_set(username, password)
    if bus.tls:
        client.tls_set(ca_certs=str(bus.ca_file) if bus.ca_file else None)
    if will:
        client.will_set(will[0], will[1], qos=1, retain=True)
    client.reconnect_delay_set(1, RECONNECT_MOST_S)
    return client


_RECORD_TYPES = typing.get_type_hints(Record)
_SQLITE_INTEGERS = range(-(2**63), 2**63)


def received_record(fields: object) -> Record:
    """A peer's record from a message, each field of the type the log writes (TypeError naming the field
    otherwise): until its signature is checked it is anybody's text, and a field of another type must be
    rejected as such, never break a comparison or a query on the bus thread."""
    if not isinstance(fields, dict):
        raise TypeError("the record is not a JSON object")
    for name, value in fields.items():
        expected = _RECORD_TYPES.get(name)
        if expected is None:
            continue  # an unknown field: Record() names it
        if isinstance(value, bool) or not isinstance(value, expected):
            raise TypeError(f"field {name!r} is not {expected}")
        if isinstance(value, int) and value not in _SQLITE_INTEGERS:
            raise TypeError(f"field {name!r} is out of range")
    return Record(**fields)


def connect_properties() -> Properties:
    """What a gate's MQTT 5 CONNECT says of itself: the largest packet it accepts."""
    properties = Properties(PacketTypes.CONNECT)
    properties.MaximumPacketSize = MAX_PACKET_BYTES
    return properties


def record_message(origin: str, record: Record, anchor: bool = False) -> str:
    message = {"origin": origin, "record": record.as_dict()}
    if anchor:
        message["anchor"] = True
    return canonical_json(message)


ClientFactory = Callable[[Config, str, tuple[str, str] | None], mqtt.Client]


@dataclass(frozen=True)
class Wanted:
    """What is owed to the site for one device: its records from `start` (to `end` for our own: the publisher
    sends what follows), not before `not_before_ns` (monotonic: gathering the requests of a moment, or a cooldown)."""

    start: int
    end: int | None
    not_before_ns: int
    next_page: bool = False  # the rest of an answer (not a new one: the cooldown counts from its first page)


@dataclass
class BusCounters:
    """What the bus has done since it started (metrics and `sitegate site`)."""

    connected: bool = False
    published: int = 0
    stored: int = 0
    rejected: int = 0
    gaps: int = 0
    # device -> (the seq last asked for, when (monotonic ns), the interval before asking again)
    gap_requests: dict[str, tuple[int, int | None, int]] = field(default_factory=dict)


class SiteBus:
    def __init__(
        self,
        config: Config,
        clock: Clock,
        on_peer_registration: Callable[[str, Record], None] = lambda device, record: None,
        health: Callable[[], dict] | None = None,
        on_own_checkpoint: Callable[[checkpoints.Checkpoint, str], None] = lambda checkpoint, held_by: None,
        make_client: ClientFactory = mqtt_client,
    ) -> None:
        """on_own_checkpoint: this gate's checkpoint as the broker ("broker") or a peer ("peer gate-b") holds it,
        from the bus thread; judged by the caller (a peer cannot forge one: it is signed by this gate's key).
        make_client: the MQTT client (paho's, with this gate's credentials; another for the tests)."""
        self.make_client = make_client
        self.config = config
        self.bus: BusConfig = config.bus
        self.device = config.device_id
        self.clock = clock
        self.on_peer_registration = on_peer_registration
        self.health = health
        self.wake = threading.Event()
        self.counters = BusCounters()
        self._inbox = Inbox(INBOX_MOST_BYTES)  # filled by paho's thread, emptied by ours
        self._acked_mids: list[int] = []
        self._connected_now = threading.Event()
        self._offline: set[str] = set()  # peers whose last health message said offline
        self._wanted: dict[str, Wanted] = {}  # origin -> what the site asked for, not yet sent
        self._answered: dict[str, tuple[int, int]] = {}  # origin -> (from seq, when (monotonic ns)): the last answer
        self._connected_at_ns: int | None = None  # since a (re)connect, until the hold is over
        self._heard_live: set[str] = set()  # peers heard since our connect (not a retained message): listening
        self._listening: dict[str, tuple[str, int]] = {}  # peer -> (its session, our published seq when it began)
        self._unacked: dict[int, int] = {}  # mid -> seq
        self._published_to = 0  # highest seq handed to paho
        self._acked_to = 0  # every seq up to this one acknowledged by the broker
        self._records_topic = topics.topic(self.bus.site, self.device, topics.RECORDS)
        self._health_topic = topics.topic(self.bus.site, self.device, topics.HEALTH)
        self._checkpoint_topic = topics.topic(self.bus.site, self.device, topics.CHECKPOINT)
        self.on_own_checkpoint = on_own_checkpoint
        self._probe = ""  # echoed on our checkpoint topic after the retained checkpoint: "read back" once it is seen
        self._checkpoint_read_back = False
        self._broker_checkpoint_seq = 0  # the highest checkpoint of ours seen on the broker
        self._witness_sent: dict[str, tuple[str, int]] = {}  # peer -> its checkpoint last sent back, and when (ns)
        self._witness_wanted: set[str] = set()  # peers that asked to catch up: their checkpoint goes back to them

    # paho's thread: only hand over to ours.

    def _on_connect(self, client, userdata, flags, reason_code, properties) -> None:
        if reason_code.is_failure:
            event(logger, "bus_refused", logging.ERROR, host=self.bus.host, reason=str(reason_code))
            return
        # no_local: the broker does not echo our own records back to us; our checkpoint topic it does (read back)
        client.subscribe(
            [
                (topics.site_filter(self.bus.site), mqtt.SubscribeOptions(qos=1, noLocal=True)),
                (self._checkpoint_topic, mqtt.SubscribeOptions(qos=1, noLocal=False)),
            ]
        )
        self._connected_now.set()
        self.wake.set()

    def _on_disconnect(self, client, userdata, flags, reason_code, properties) -> None:
        if self.counters.connected:
            event(logger, "bus_disconnected", logging.WARNING, host=self.bus.host, reason=str(reason_code))
        self.counters.connected = False

    def _on_message(self, client, userdata, message: mqtt.MQTTMessage) -> None:
        if self._inbox.put(message):
            self.wake.set()

    def _on_publish(self, client, userdata, mid, reason_code, properties) -> None:
        if not reason_code.is_failure:
            self._acked_mids.append(mid)
            self.wake.set()
        else:  # the broker refused it (the ACL): said loudly, never counted as acknowledged
            event(logger, "bus_publish_refused", logging.ERROR, mid=mid, reason=str(reason_code))

    # The bus thread.

    def keep_running(self, stop: threading.Event) -> None:
        """The daemon's bus loop: restarted after any failure, it must never take the gate down with it."""
        while not stop.is_set():
            try:
                self.run(stop)
            except Exception as error:  # noqa: BLE001 - the gate goes on without the bus, loudly
                daemon_logger.exception(
                    "site bus failed", extra={"fields": {"event": "bus_failed", "problem": str(error)}}
                )
                self.clock.wait(RESTART_PAUSE_S, stop)

    def run(self, stop: threading.Event) -> None:
        self.open()
        try:
            while not stop.is_set():
                self.wake.wait(1.0)
                self.wake.clear()
                self.step()
        finally:
            self.close()

    def open(self) -> None:
        """Open the log and the mirror, start connecting (paho's thread retries until the broker answers)."""
        self.log = LogView(database.connect(self.config.database_path))  # the ledger attached: its checkpoints
        self.mirror = Mirror(connect_mirror(self.config.mirror_path), self.device, self.bus.peer_keys)
        self._acked_to = self._published_to = int(self.mirror.state(PUBLISHED_SEQ) or 0)
        self._offline_message = canonical_json({"device_id": self.device, "site": self.bus.site, "online": False})
        will = (self._health_topic, self._offline_message)
        self.client = client = self.make_client(self.config, f"sitegate-{self.bus.site}-{self.device}", will)
        client.on_connect, client.on_disconnect = self._on_connect, self._on_disconnect
        client.on_message, client.on_publish = self._on_message, self._on_publish
        client.connect_async(
            self.bus.host, self.bus.port, keepalive=15, clean_start=True, properties=connect_properties()
        )
        client.loop_start()
        self._next_health_ns, self._shown_connected, self._next_prune_ns = 0, None, 0

    def step(self) -> None:
        """One round of the bus thread: what came in, what was acknowledged, what is owed to the broker."""
        client, log, mirror = self.client, self.log, self.mirror
        if self._connected_now.is_set():
            self._connected_now.clear()
            self._connected(client, mirror)
        if self.counters.connected != self._shown_connected:
            self._shown_connected = self.counters.connected
            mirror.set_state(CONNECTED, "1" if self._shown_connected else "0")
            mirror.set_state(CONNECTED_SINCE, format_utc(self.clock.now()))
        self._take_messages(client, log, mirror)
        self._take_acks(mirror)
        if self.counters.connected:
            self._publish_checkpoint(client, log)
            if not self._holding():
                self._answer_waiting(client, log, mirror)  # before the backlog: a requester takes them in order
                self._publish_own(client, log)
            self._send_witnesses(client, mirror)
            if self.health and self.clock.monotonic_ns() >= self._next_health_ns:
                client.publish(self._health_topic, canonical_json(self.health()), qos=1, retain=True)
                self._next_health_ns = self.clock.monotonic_ns() + int(self.bus.health_every_s * 1e9)
        if self.clock.monotonic_ns() >= self._next_prune_ns:
            mirror.prune(self.clock.now() - MIRROR_KEEP)
            self._next_prune_ns = self.clock.monotonic_ns() + PRUNE_EVERY_NS

    def close(self) -> None:
        client, mirror = self.client, self.mirror
        if self.counters.connected:  # a clean stop is not a crash: say offline ourselves
            try:
                client.publish(self._health_topic, self._offline_message, qos=1, retain=True).wait_for_publish(2)
            except (RuntimeError, ValueError):  # the broker went away meanwhile: the last will says it
                pass
        client.disconnect()
        client.loop_stop()
        mirror.set_state(CONNECTED, "0")
        mirror.set_state(CONNECTED_SINCE, format_utc(self.clock.now()))
        self.log.db.close()
        mirror.db.close()

    def _holding(self) -> bool:
        """Just reconnected and a peer not heard yet: what we publish now it would miss (and ask for again)."""
        if self._connected_at_ns is None:
            return False
        waited = self.clock.monotonic_ns() - self._connected_at_ns
        unheard = sorted(set(self.bus.peer_keys) - self._heard_live)
        if waited < HOLD_AFTER_CONNECT_NS and unheard:
            return True
        event(logger, "bus_hold_over", waited_ms=waited // 10**6, unheard=unheard)  # who will ask for it again
        self._connected_at_ns = None
        return False

    def _connected(self, client: mqtt.Client, mirror: Mirror) -> None:
        """A (re)connect: resume publishing from the last acknowledged seq, ask the site what we missed."""
        self.counters.connected = True
        self._connected_at_ns, self._heard_live = self.clock.monotonic_ns(), set()
        self._unacked.clear()
        self._published_to = self._acked_to
        event(logger, "bus_connected", host=self.bus.host, resume_after=self._acked_to)
        self._checkpoint_read_back, self._probe = False, secrets.token_hex(8)
        client.publish(self._checkpoint_topic, canonical_json({"probe": self._probe}), qos=1)  # after the subscribe
        self._request(client, {device: mirror.next_seq(device) for device in self.bus.peer_keys}, self._probe)

    def _request(self, client: mqtt.Client, want: dict[str, int], session: str | None = None) -> None:
        """want: device -> the first seq missing. session: on a (re)connect, the probe published just before (a
        peer that saw it knows what it published since reached us); never on a gap (a record lost on the way)."""
        if want:
            topic = topics.topic(self.bus.site, self.device, topics.CATCHUP)
            client.publish(topic, canonical_json({"want": want, **({"session": session} if session else {})}), qos=1)

    def _publish_own(self, client: mqtt.Client, log: LogView) -> None:
        room = MAX_UNACKED - len(self._unacked)
        if room <= 0:
            return
        for record in log.records(self._published_to + 1):
            info = client.publish(self._records_topic, record_message(self.device, record), qos=1)
            self._unacked[info.mid] = record.seq
            self._published_to = record.seq
            self.counters.published += 1
            room -= 1
            if room <= 0:
                self.wake.set()  # more to send once acknowledgements come
                return

    def _publish_checkpoint(self, client: mqtt.Client, log: LogView) -> None:
        """The ledger's newest checkpoint, retained, once the broker's was read back and only when newer."""
        latest = checkpoints.latest_in_ledger(log.db)
        if self._checkpoint_read_back and latest is not None and latest.seq > self._broker_checkpoint_seq:
            client.publish(self._checkpoint_topic, canonical_json(latest.as_dict()), qos=1, retain=True)
            self._broker_checkpoint_seq = latest.seq

    def _take_own_checkpoint(self, body: object) -> None:
        if isinstance(body, dict) and set(body) == {"probe"}:
            self._checkpoint_read_back = self._checkpoint_read_back or body["probe"] == self._probe
            return
        try:
            held = checkpoints.Checkpoint.from_dict(body)
        except ValueError as error:  # only this gate's password writes here: a bug, or a break-in, said loudly
            event(logger, "bus_checkpoint_unreadable", logging.ERROR, problem=str(error))
            return
        self._broker_checkpoint_seq = max(self._broker_checkpoint_seq, held.seq)
        self.on_own_checkpoint(held, "broker")

    def _take_peer_checkpoint(self, mirror: Mirror, origin: str, body: object) -> None:
        """A peer's checkpoint: kept, when its key signed it, if newer than the one kept (never an older one)."""
        if isinstance(body, dict) and set(body) == {"probe"}:
            # The peer reading its own retained checkpoint back, just (re)connected and subscribed: whatever we
            # publish from now on reaches it; its catch-up request of this session needs only what came before.
            self._listening[origin] = (str(body["probe"]), self._published_to)
            return
        try:
            held = checkpoints.Checkpoint.from_dict(body)
        except ValueError as error:
            mirror.reject_message(origin, f"not a checkpoint: {error}", self.clock.now())
            return
        if not held.signed_by(self.bus.peer_keys[origin]):
            mirror.reject_message(origin, "a checkpoint not signed by the gate's pinned key", self.clock.now())
            return
        kept = mirror.state(f"{PEER_CHECKPOINT}{origin}")
        if kept is None or json.loads(kept)["seq"] < held.seq:
            mirror.set_state(f"{PEER_CHECKPOINT}{origin}", canonical_json(held.as_dict()))

    def _send_witnesses(self, client: mqtt.Client, mirror: Mirror) -> None:
        """Each asking peer's newest checkpoint we hold, back to it; the same one again only at the end of the
        catch-up cooldown (asking again and again earns one small message per cooldown, never none)."""
        now_ns = self.clock.monotonic_ns()
        for requester in list(self._witness_wanted):
            kept = mirror.state(f"{PEER_CHECKPOINT}{requester}")
            sent, at_ns = self._witness_sent.get(requester, (None, None))
            if kept is not None and kept == sent and at_ns is not None and now_ns - at_ns < CATCHUP_COOLDOWN_NS:
                continue  # sent just now: again at the cooldown's end
            self._witness_wanted.discard(requester)
            if kept is None:
                continue
            self._witness_sent[requester] = (kept, now_ns)
            topic = topics.topic(self.bus.site, self.device, topics.WITNESS)
            client.publish(topic, canonical_json({"of": requester, "checkpoint": json.loads(kept)}), qos=1)

    def _take_witness(self, sender: str, body: object) -> None:
        """A peer sending back our own checkpoint as it holds it."""
        if not isinstance(body, dict) or body.get("of") != self.device:
            return
        try:
            held = checkpoints.Checkpoint.from_dict(body.get("checkpoint"))
        except ValueError as error:
            event(logger, "bus_checkpoint_unreadable", logging.ERROR, sender=sender, problem=str(error))
            return
        self.on_own_checkpoint(held, f"peer {sender}")

    def _take_acks(self, mirror: Mirror) -> None:
        acked = False
        while self._acked_mids:
            seq = self._unacked.pop(self._acked_mids.pop(), None)
            acked = acked or seq is not None
        if not acked:
            return
        waiting = min(self._unacked.values(), default=self._published_to + 1)
        if waiting - 1 > self._acked_to:
            self._acked_to = waiting - 1
            mirror.set_state(PUBLISHED_SEQ, str(self._acked_to))

    def _take_messages(self, client: mqtt.Client, log: LogView, mirror: Mirror) -> None:
        for sender, count in self._inbox.dropped().items():
            most = INBOX_MOST_BYTES // 2**20
            reason = f"{count} message(s) dropped unread: {most} MiB were waiting already (a flood on the bus?)"
            mirror.reject_message(sender, reason, self.clock.now())
            self.counters.rejected += count
        while (message := self._inbox.take()) is not None:
            where = topics.parse(message.topic)
            if where is not None and where.device == self.device and where.what == topics.CHECKPOINT:
                try:
                    self._take_own_checkpoint(json.loads(message.payload))
                except (ValueError, RecursionError):
                    event(logger, "bus_checkpoint_unreadable", logging.ERROR, problem="not JSON")
                continue
            if where is not None and where.device in self.bus.peer_keys and not message.retain:
                self._heard_live.add(where.device)  # connected now, and subscribed (it subscribes first)
            if (
                where is None
                or where.device == self.device
                or where.what not in (topics.RECORDS, topics.CATCHUP, topics.HEALTH, topics.CHECKPOINT, topics.WITNESS)
            ):
                continue
            now = self.clock.now()
            try:
                body = json.loads(message.payload)
            except (ValueError, RecursionError):  # RecursionError: nested too deep for the parser
                mirror.reject_message(where.device, "not JSON", now)
                continue
            if where.what == topics.RECORDS:
                self._take_record(client, mirror, where.device, body, now)
            elif where.what == topics.CATCHUP:
                self._answer(client, log, mirror, body, where.device)
                if where.device in self.bus.peer_keys:
                    self._witness_wanted.add(where.device)
            elif where.what == topics.CHECKPOINT and where.device in self.bus.peer_keys:
                self._take_peer_checkpoint(mirror, where.device, body)
            elif where.what == topics.WITNESS and where.device in self.bus.peer_keys:
                self._take_witness(where.device, body)
            elif where.what == topics.HEALTH and isinstance(body, dict):
                if body.get("online"):
                    self._offline.discard(where.device)
                    mirror.heard(where.device, now)
                else:
                    self._offline.add(where.device)

    def _take_record(self, client: mqtt.Client, mirror: Mirror, sender: str, body: dict, now: datetime) -> None:
        try:
            origin, record = body["origin"], received_record(body["record"])
            if not isinstance(origin, str):
                raise TypeError("the origin is not a device id")
        except (KeyError, TypeError) as error:
            mirror.reject_message(sender, f"not a record message: {error}", now)
            self.counters.rejected += 1
            return
        # A relay's later start counts only while the owner is silent here too (the rule `_answer` follows):
        # else anyone with a gate's password could make a new gate skip a live owner's earlier records.
        anchor = bool(body.get("anchor")) and (sender == origin or self._silent(mirror, origin))
        accepted = mirror.accept(origin, record, now, anchor=anchor)
        if accepted.verdict == Verdict.STORED:
            self.counters.stored += 1
            if record.kind == Kind.REGISTRATION:
                self.on_peer_registration(origin, record)
        elif accepted.verdict == Verdict.REJECTED:
            self.counters.rejected += 1
        elif accepted.verdict == Verdict.GAP:
            self.counters.gaps += 1
            now_ns = self.clock.monotonic_ns()
            seq, at_ns, interval = self.counters.gap_requests.get(origin, (0, None, GAP_REQUEST_FIRST_NS))
            if seq != accepted.next_seq:  # the mirror moved on since the last request: back to the short interval
                interval = GAP_REQUEST_FIRST_NS
            if at_ns is None or now_ns - at_ns >= interval:
                self.counters.gap_requests[origin] = (accepted.next_seq, now_ns, min(2 * interval, GAP_REQUEST_MOST_NS))
                event(
                    logger, "bus_gap", logging.WARNING, device=origin, missing_from=accepted.next_seq, seen=record.seq
                )
                self._request(client, {origin: accepted.next_seq})

    def _answer(self, client: mqtt.Client, log: LogView, mirror: Mirror, body: dict, requester: str) -> None:
        """A catch-up request of a configured peer: noted, answered by `_answer_waiting` once for everyone who
        asked within COALESCE_NS; our own records up to what the publisher sent already, a peer's only while that
        peer is silent (its owner answers otherwise)."""
        want = body.get("want") if isinstance(body, dict) else None
        if not isinstance(want, dict) or requester not in self.bus.peer_keys:  # a configured peer's, or no one's
            return
        now_ns = self.clock.monotonic_ns()
        for origin, start in want.items():
            if not isinstance(start, int) or isinstance(start, bool) or start < 1:
                continue
            if origin == self.device:
                end: int | None = self._published_to
                listening = self._listening.get(requester)
                if listening is not None and listening[0] == body.get("session"):
                    end = min(self._published_to, listening[1])  # what followed reached it
                if start > end:
                    continue  # nothing sent yet from there: the publisher sends it to everyone
            elif origin in self.bus.peer_keys and self._silent(mirror, origin):
                end = None
            else:
                continue
            not_before = now_ns + COALESCE_NS
            answered_from, answered_at = self._answered.get(origin, (0, None))
            if answered_at is not None and answered_from <= start and now_ns - answered_at < CATCHUP_COOLDOWN_NS:
                not_before = answered_at + CATCHUP_COOLDOWN_NS  # sent just now: asked again, sent again at its end
            waiting = self._wanted.get(origin)
            if waiting is not None:
                start, not_before = min(start, waiting.start), min(not_before, waiting.not_before_ns)
                end = None if end is None or waiting.end is None else max(end, waiting.end)
            continuing = waiting is not None and waiting.next_page and start == waiting.start
            self._wanted[origin] = Wanted(start, end, not_before, continuing)

    def _answer_waiting(self, client: mqtt.Client, log: LogView, mirror: Mirror) -> None:
        """Send what is owed and due, one page (ANSWER_PAGE) per device a round; within the 48 h horizon. One small
        request a second (a gate's bug, or anyone with its password) earns one answer per CATCHUP_COOLDOWN_NS."""
        now_ns = self.clock.monotonic_ns()
        window_start = format_utc(self.clock.now() - CATCHUP_WINDOW)
        for origin, wanted in list(self._wanted.items()):
            if now_ns < wanted.not_before_ns:
                continue
            del self._wanted[origin]
            if origin == self.device:
                recent = log.first_since(window_start) or log.count() + 1
                first = max(wanted.start, recent)
                end = wanted.end or 0
                page = itertools.islice(log.records(first), ANSWER_PAGE)
                records: list[Record] = [record for record in page if record.seq <= end]
            elif self._silent(mirror, origin):
                first = wanted.start
                records = list(mirror.records_of(origin, first, since_utc=window_start, limit=ANSWER_PAGE))
            else:
                continue  # the owner spoke meanwhile: it answers
            if not wanted.next_page:
                self._answered[origin] = (wanted.start, now_ns)
            # Only the owner, or a relay while the owner is silent, may offer a later start as an anchor: a relay's
            # later start must not win over the owner's earlier one (workers in between would be missed).
            for index, record in enumerate(records):
                anchor = index == 0 and record.seq > wanted.start
                client.publish(self._records_topic, record_message(origin, record, anchor), qos=1)
            if len(records) == ANSWER_PAGE and (wanted.end is None or records[-1].seq < wanted.end):
                self._wanted[origin] = Wanted(records[-1].seq + 1, wanted.end, now_ns, next_page=True)
                self.wake.set()

    def _silent(self, mirror: Mirror, device: str) -> bool:
        """Offline by its last will (or a clean stop), or unheard for bus.stale_after_s."""
        heard = mirror.peer_state(device).heard_utc
        stale = heard is None or (self.clock.now() - parse_utc(heard)).total_seconds() > self.bus.stale_after_s
        return device in self._offline or stale
