"""The outage journal: when registration is impossible, record verifiably why, and say what to do.

The procedure exempts workers only if the unavailability is *verifiable*, and only when the cause is a third
party (power, internet, phone network) or the service itself; a fault on our side (reader, configuration,
credentials, disk, clock) is for the provider to fix. So every opening, closing, change of classification and a
periodic summary of the probe evidence is a signed record in the same log as the registrations.
"""

from __future__ import annotations

import logging
import socket
import ssl
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from urllib.parse import urlparse

from sitegate.jsonlog import event
from sitegate.queue import delivery
from sitegate.queue.database import immediate
from sitegate.queue.log import RegistrationLog
from sitegate.timefmt import format_utc, parse_utc

logger = logging.getLogger("sitegate.outage")

OUR_SIDE, INFRASTRUCTURE, SERVICE, UNKNOWN = "our_side", "third_party_infrastructure", "service_unavailable", "unknown"
WHAT_TO_DO = {
    INFRASTRUCTURE: "Third-party infrastructure (power, internet or phone network): workers are exempt for the "
    "duration; keep badging, the evidence is recorded. Once it is solved, registration resumes "
    "at the next start or end of work.",
    SERVICE: "Check In and Out at Work is unavailable: workers are exempt for the duration; keep badging, the "
    "evidence is recorded and registrations are sent when it is back.",
    OUR_SIDE: "The fault is on our side (reader, configuration, credentials, disk or clock): no exemption "
    "applies. Contact the provider now. If it cannot be fixed in time, call the contact centre "
    "(02 511 51 51), note the reference number (`sitegate outage reference REF`) and print the "
    "listing (`sitegate paper print`).",
    UNKNOWN: "Cause unknown: call the contact centre (02 511 51 51), note the reference number "
    "(`sitegate outage reference REF`) and print the paper listing (`sitegate paper print`).",
}


@dataclass(frozen=True)
class Probe:
    name: str  # link, dns, tcp, tls, service
    ok: bool
    detail: str = ""


def classify(probes: list[Probe], own_faults: list[str]) -> str:
    """The procedure's table: our side first (no exemption), then the network path, then the service."""
    if own_faults:
        return OUR_SIDE
    failed = {p.name for p in probes if not p.ok}
    if failed & {"link", "dns", "tcp", "tls"}:
        return INFRASTRUCTURE
    if "service" in failed:
        return SERVICE
    return UNKNOWN


def default_route(path: Path = Path("/proc/net/route")) -> str | None:
    """The default gateway's address, from the kernel's routing table (no command, no privilege)."""
    try:
        for line in path.read_text().splitlines()[1:]:
            fields = line.split()
            if fields[1] == "00000000" and int(fields[3], 16) & 0x2:
                return socket.inet_ntoa(bytes.fromhex(fields[2])[::-1])
    except (OSError, IndexError, ValueError):
        return None
    return None


def network_probes(service_url: str, timeout: float = 5.0, ca_file: Path | None = None) -> list[Probe]:
    """Link, DNS, TCP and TLS towards the service host, each stopping the chain where it fails."""
    parsed = urlparse(service_url)
    host, port = parsed.hostname or "", parsed.port or (443 if parsed.scheme == "https" else 80)
    gateway = default_route()
    probes = [
        Probe(
            "link",
            gateway is not None or host in ("127.0.0.1", "localhost"),
            f"default gateway {gateway}" if gateway else "no default route",
        )
    ]
    try:
        address = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)[0][4][0]
        probes.append(Probe("dns", True, f"{host} -> {address}"))
    except OSError as error:
        return [*probes, Probe("dns", False, f"{host}: {error}")]
    try:
        connection = socket.create_connection((address, port), timeout=timeout)
        probes.append(Probe("tcp", True, f"{address}:{port} connected"))
    except OSError as error:
        return [*probes, Probe("tcp", False, f"{address}:{port}: {error}")]
    with connection:
        if parsed.scheme == "https":
            try:
                context = ssl.create_default_context(cafile=str(ca_file) if ca_file else None)
                with context.wrap_socket(connection, server_hostname=host):
                    probes.append(Probe("tls", True, "handshake and certificate ok"))
            except (OSError, ssl.SSLError) as error:
                probes.append(Probe("tls", False, str(error)[:200]))
    return probes


def service_probe(summary: delivery.QueueSummary) -> Probe:
    """The service's own answer, as the forwarder last saw it."""
    if summary.last_error_utc and (not summary.last_delivery_utc or summary.last_error_utc > summary.last_delivery_utc):
        return Probe("service", False, f"[{summary.last_error_class}] {summary.last_error}")
    return Probe("service", True, f"last delivery {summary.last_delivery_utc or 'never'}")


class OutageJournal:
    """Opens an outage after a grace period of failures, closes it on the first success; all signed."""

    def __init__(self, log: RegistrationLog, grace_s: float, summary_every_s: float = 900.0) -> None:
        self.log = log
        self.grace = timedelta(seconds=grace_s)
        self.summary_every = timedelta(seconds=summary_every_s)
        self.failing_since: datetime | None = None
        self.last_summary: datetime | None = None

    def _meta(self, key: str) -> str | None:
        return delivery.get_meta(self.log.db, key)

    def _set(self, **values) -> None:
        with immediate(self.log.db):
            delivery.set_meta(self.log.db, **values)

    def _record(self, what: str, now: datetime, **fields) -> int:
        record = self.log.append("outage", {"event": what, "at_utc": format_utc(now), **fields})
        event(
            logger,
            f"outage_{what}",
            logging.WARNING if what != "closed" else logging.INFO,
            seq=record.seq,
            **{k: v for k, v in fields.items() if k != "probes"},
        )
        return record.seq

    def observe(self, probes: list[Probe], own_faults: list[str], now: datetime) -> str:
        """Take one round of evidence; returns the state: ok, failing, open, or never_connected."""
        evidence = [p.__dict__ for p in probes] + [{"name": "own", "ok": False, "detail": f} for f in own_faults]
        healthy = all(p.ok for p in probes) and not own_faults
        open_seq = self._meta("outage_open_seq")
        if healthy:
            self.failing_since = None
            if open_seq:
                self._record("closed", now, outage=int(open_seq), probes=evidence)
                self._set(outage_open_seq=None, outage_classification=None)
            return "ok"
        self.failing_since = self.failing_since or now
        classification = classify(probes, own_faults)
        if not delivery.get_meta(self.log.db, "last_delivery_utc", delivery.DELIVERY_META):
            return "never_connected"  # a site that never had connectivity is not in an outage (PROCEDURES.md)
        if not open_seq:
            if now - self.failing_since < self.grace:
                return "failing"
            seq = self._record(
                "opened", now, classification=classification, since_utc=format_utc(self.failing_since), probes=evidence
            )
            self._set(outage_open_seq=seq, outage_classification=classification)
            self.last_summary = now
            return "open"
        if classification != self._meta("outage_classification"):
            self._record("reclassified", now, outage=int(open_seq), classification=classification, probes=evidence)
            self._set(outage_classification=classification)
        elif self.last_summary is None or now - self.last_summary >= self.summary_every:
            self._record("evidence", now, outage=int(open_seq), classification=classification, probes=evidence)
            self.last_summary = now
        return "open"

    def power_gap(self, now: datetime, heartbeat_s: float) -> int | None:
        """At start: a silence longer than three heartbeats since the last one, without a clean stop, was power."""
        heartbeat, stopped = self._meta("heartbeat_utc"), self._meta("stopped_utc")
        if not heartbeat or (stopped and stopped >= heartbeat):
            return None
        last = parse_utc(heartbeat)
        if now - last < timedelta(seconds=3 * heartbeat_s):
            return None
        return self._record(
            "power_loss",
            now,
            classification=INFRASTRUCTURE,
            from_utc=heartbeat,
            to_utc=format_utc(now),
            duration_s=round((now - last).total_seconds()),
        )


@dataclass(frozen=True)
class Outage:
    seq: int
    start_utc: str
    end_utc: str | None
    classification: str
    evidence: list
    reference: str | None

    @property
    def what_to_do(self) -> str:
        return WHAT_TO_DO[self.classification]

    def covers(self, wall_utc: str) -> bool:
        return self.start_utc <= wall_utc and (self.end_utc is None or wall_utc <= self.end_utc)

    def as_dict(self, now: datetime) -> dict:
        end = parse_utc(self.end_utc) if self.end_utc else now
        return {
            "seq": self.seq,
            "start_utc": self.start_utc,
            "end_utc": self.end_utc,
            "duration_s": round((end - parse_utc(self.start_utc)).total_seconds()),
            "classification": self.classification,
            "reference": self.reference,
            "what_to_do": self.what_to_do,
            "evidence": self.evidence,
        }


def outages(log: RegistrationLog) -> list[Outage]:
    """The outages, rebuilt from the signed records (the log is the only truth)."""
    found: dict[int, dict] = {}
    references: list[tuple[str, str]] = []
    for record in log.records(kind="outage"):
        data = record.data
        if data["event"] == "opened":
            found[record.seq] = {
                "start": data["since_utc"],
                "end": None,
                "class": data["classification"],
                "evidence": [data["probes"]],
            }
        elif data["event"] == "power_loss":
            found[record.seq] = {
                "start": data["from_utc"],
                "end": data["to_utc"],
                "class": data["classification"],
                "evidence": [[{"name": "power", "ok": False, "detail": f"no heartbeat for {data['duration_s']} s"}]],
            }
        elif data.get("outage") in found:
            entry = found[data["outage"]]
            entry["evidence"].append(data.get("probes", []))
            if data["event"] == "reclassified":
                entry["class"] = data["classification"]
            if data["event"] == "closed":
                entry["end"] = data["at_utc"]
    for record in log.records(kind="outage_reference"):
        references.append((record.wall_utc, record.data["reference"]))
    result = []
    for seq, entry in found.items():
        reference = next(
            (
                ref
                for wall, ref in reversed(references)
                if wall >= entry["start"] and (entry["end"] is None or wall <= entry["end"])
            ),
            None,
        )
        result.append(Outage(seq, entry["start"], entry["end"], entry["class"], entry["evidence"], reference))
    return result


def record_reference(log: RegistrationLog, reference: str, now: datetime) -> int:
    """The contact centre's reference number, as a signed record (the paper listing prints it)."""
    return log.append("outage_reference", {"reference": reference.strip(), "at_utc": format_utc(now)}).seq
