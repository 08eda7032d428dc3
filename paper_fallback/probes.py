"""The evidence of an unavailability: which hop failed, each probe with its time and what it showed.

The procedure exempts workers only when the cause is verifiably a third party or the service. One probe of the
service host cannot tell "the internet is down" from "the service is down" from "our settings are wrong"; so the
probes also look at hops that do not depend on the service: the gateway (a TCP connection answered, even
refused, proves the local network), and an independent HTTPS host (`outage.reference_url`: reachable with a
valid certificate means the internet works). The verdict is the one rule of queue/failures.py.
"""

from __future__ import annotations

import socket
import ssl
from collections.abc import Callable
from dataclasses import asdict, dataclass
from datetime import datetime
from ipaddress import ip_address
from pathlib import Path
from urllib.parse import urlparse

import dns.exception
import dns.resolver

from sitegate.clock.timefmt import format_utc, show
from sitegate.config import Config
from sitegate.queue.delivery import QueueSummary
from sitegate.queue.failures import Cause, Symptom, cause

GATEWAY_PORT = 53  # a site router answers on its DNS port; a refused connection proves it is there as well
SERVICE_PATH = ("gateway", "dns", "service_connect", "service_tls", "service_answer")
SERVICE_HOPS = ("dns", "service_connect", "service_tls")  # the way to the service itself, gateway aside
# What only the service itself can have answered (a captive portal's page only with the service's certificate).
SERVICE_SPOKE = {Symptom.CREDENTIALS, Symptom.SERVICE_ERROR, Symptom.OFF_CONTRACT, Symptom.PROXY_PAGE}


@dataclass(frozen=True)
class Probe:
    name: str  # gateway, dns, service_connect, service_tls, service_answer, reference, own
    ok: bool
    detail: str
    at_utc: str
    symptom: str | None = None  # a failures.Symptom value when it failed
    channels: tuple[str, ...] | None = None  # service_answer: the channels the failed call tried (with a fallback)

    def as_dict(self) -> dict:
        return {key: value for key, value in asdict(self).items() if value is not None}


@dataclass(frozen=True)
class ProbeVerdict:
    """What a round of probes shows: is registration impossible, and whose fault is it."""

    failing: bool
    cause: Cause | None
    internet_ok: bool | None
    symptom: str | None


def verdict(probes: list[Probe]) -> ProbeVerdict:
    """Our own faults first (no exemption may be claimed by mistake); then the service's own answer, when it gave
    one over a path that works; else the first failed hop to the service."""
    by_name = {probe.name: probe for probe in probes}
    reference = by_name.get("reference")
    internet_ok = reference.ok if reference else None
    own = [p for p in probes if p.name == "own" and not p.ok]
    if own:
        return ProbeVerdict(True, Cause.OURS, internet_ok, own[0].symptom)
    tls = by_name.get("service_tls")
    verified = tls is not None and tls.ok
    answer = by_name.get("service_answer")
    if answer is not None and not answer.ok and service_reachable(probes) and answer.symptom in SERVICE_SPOKE:
        # The service answered (a refused token, an error, a page over its own certificate): the way to it works,
        # whatever a gateway or reference probe says, and its answer decides.
        if answer.symptom != Symptom.PROXY_PAGE or verified:
            return ProbeVerdict(True, cause(answer.symptom, internet_ok, verified), internet_ok, answer.symptom)
    # A reference reached proves the local network too: a gateway that ignores our probe (a router dropping
    # its DNS port) must not turn a fault of ours into an "exempt" infrastructure outage.
    names = [name for name in SERVICE_PATH if name != "gateway" or not internet_ok]
    path = [by_name[name] for name in names if name in by_name]
    if all(p.ok for p in path if p.name != "gateway"):
        return ProbeVerdict(False, None, internet_ok, None)  # the service answers: registration works
    failed = next(p for p in path if not p.ok)
    symptom = failed.symptom or Symptom.NO_CONNECTION
    return ProbeVerdict(True, cause(symptom, internet_ok, verified), internet_ok, symptom)


def service_reachable(probes: list[Probe]) -> bool:
    """This round reached the service: its name resolved, a connection and (for https) a verified handshake."""
    hops = [probe for probe in probes if probe.name in SERVICE_HOPS]
    return bool(hops) and all(probe.ok for probe in hops)


def default_gateway(route_file: Path = Path("/proc/net/route")) -> str | None:
    """The default gateway's address, from the kernel's routing table (no command, no privilege)."""
    try:
        for line in route_file.read_text().splitlines()[1:]:
            fields = line.split()
            if fields[1] == "00000000" and int(fields[3], 16) & 0x2:
                return socket.inet_ntoa(bytes.fromhex(fields[2])[::-1])
    except (OSError, IndexError, ValueError):
        return None
    return None


def _host_port(text: str, default_port: int) -> tuple[str, int]:
    host, _, port = text.rpartition(":") if text.count(":") == 1 else (text, "", "")
    return (host, int(port)) if port else (text, default_port)


class Prober:
    """One round of probes towards the configured targets; `now` is injected for the evidence's times."""

    def __init__(self, config: Config, now: Callable[[], datetime], route_file: Path = Path("/proc/net/route")) -> None:
        self.outage = config.outage
        self.service = config.service
        self.now = now
        self.route_file = route_file

    def _probe(self, name: str, ok: bool, detail: str, symptom: Symptom | None = None) -> Probe:
        return Probe(name, ok, detail, format_utc(self.now()), None if ok else str(symptom))

    def round(self, summary: QueueSummary, own_faults: list[tuple[Symptom, str]]) -> list[Probe]:
        """Every probe, in the order a technician would check: ours, the gateway, the service, the reference."""
        probes = [self._probe("own", False, detail, symptom) for symptom, detail in own_faults]
        gateway = self.gateway()
        if gateway:
            probes.append(gateway)
        probes += self.service_path()
        probes.append(self.service_answer(summary))
        if self.outage.reference_url:
            probes.append(self.reference())
        return probes

    def gateway(self) -> Probe | None:
        target = self.outage.gateway
        if not target:
            return None
        if target == "auto":
            found = default_gateway(self.route_file)
            if found is None:
                return self._probe("gateway", False, "no default route", Symptom.NO_ROUTE)
            target = found
        host, port = _host_port(target, GATEWAY_PORT)
        try:
            socket.create_connection((host, port), timeout=self.outage.probe_timeout_s).close()
            return self._probe("gateway", True, f"{host}:{port} connected")
        except ConnectionRefusedError:
            return self._probe("gateway", True, f"{host}:{port} answered (refused): the local network works")
        except OSError as error:
            return self._probe("gateway", False, f"{host}:{port}: {error}", Symptom.NO_ROUTE)

    def resolve(self, host: str, port: int) -> tuple[str | None, Symptom | None, str]:
        """The host's address, through the configured resolver (asked directly) or the system's."""
        try:
            ip_address(host)
            return host, None, f"{host} is an address"
        except ValueError:
            pass
        if self.outage.dns_resolver:
            server, server_port = _host_port(self.outage.dns_resolver, 53)
            resolver = dns.resolver.Resolver(configure=False)
            resolver.nameservers, resolver.port = [server], server_port
            resolver.lifetime = self.outage.probe_timeout_s
            try:
                answer = resolver.resolve(host, "A")
                return answer[0].address, None, f"{host} -> {answer[0].address} (resolver {server}:{server_port})"
            except (dns.resolver.NXDOMAIN, dns.resolver.NoAnswer):
                return None, Symptom.NAME_UNKNOWN, f"{host}: no such name (resolver {server}:{server_port} answered)"
            except dns.exception.DNSException as error:
                return None, Symptom.DNS, f"{host}: resolver {server}:{server_port}: {error}"
        try:
            address = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)[0][4][0]
            return address, None, f"{host} -> {address}"
        except socket.gaierror as error:
            unknown = error.errno in (socket.EAI_NONAME, getattr(socket, "EAI_NODATA", socket.EAI_NONAME))
            return None, Symptom.NAME_UNKNOWN if unknown else Symptom.DNS, f"{host}: {error}"

    def _tls(self, connection: socket.socket, host: str, ca_file: Path | None) -> tuple[Symptom | None, str]:
        if ca_file is not None and not ca_file.is_file():
            return Symptom.CONFIGURATION, f"service.ca_file {ca_file} does not exist: our configuration"
        try:
            context = ssl.create_default_context(cafile=str(ca_file) if ca_file else None)
            with context.wrap_socket(connection, server_hostname=host):
                return None, "handshake and certificate ok"
        except ssl.SSLCertVerificationError as error:
            return Symptom.TLS_UNTRUSTED, f"certificate not trusted: {error.verify_message}"
        except ssl.SSLError as error:
            untrusted = "certificate" in str(error).lower() or "PEM" in str(error)
            return (Symptom.TLS_UNTRUSTED if untrusted else Symptom.TLS_FAILED), str(error)[:200]
        except OSError as error:
            return Symptom.TLS_FAILED, f"handshake broke off: {error}"[:200]

    def _connect(self, url: str, ca_file: Path | None, prefix: str) -> list[Probe]:
        """DNS, TCP and (for https) TLS towards one URL, stopping where the chain breaks."""
        parsed = urlparse(url)
        host, port = parsed.hostname or "", parsed.port or (443 if parsed.scheme == "https" else 80)
        address, symptom, detail = self.resolve(host, port)
        probes = [self._probe("dns" if prefix == "service" else f"{prefix}_dns", address is not None, detail, symptom)]
        if address is None:
            return probes
        try:
            connection = socket.create_connection((address, port), timeout=self.outage.probe_timeout_s)
        except ConnectionRefusedError as error:
            return [*probes, self._probe(f"{prefix}_connect", False, f"{address}:{port}: {error}", Symptom.REFUSED)]
        except OSError as error:
            return [
                *probes,
                self._probe(f"{prefix}_connect", False, f"{address}:{port}: {error}", Symptom.NO_CONNECTION),
            ]
        probes.append(self._probe(f"{prefix}_connect", True, f"{address}:{port} connected"))
        with connection:
            if parsed.scheme == "https":
                symptom, detail = self._tls(connection, host, ca_file)
                probes.append(self._probe(f"{prefix}_tls", symptom is None, detail, symptom))
        return probes

    def service_path(self) -> list[Probe]:
        return self._connect(self.service.base_url, self.service.ca_file, "service")

    def reference(self) -> Probe:
        """The independent HTTPS host, checked with the system's trust store: one probe, ok or where it broke."""
        chain = self._connect(self.outage.reference_url, None, "reference")
        failed = next((p for p in chain if not p.ok), None)
        host = urlparse(self.outage.reference_url).hostname
        if failed is None:
            return self._probe("reference", True, f"{host}: reachable, certificate valid")
        return self._probe("reference", False, f"{host}: {failed.detail}", Symptom(failed.symptom))

    def service_answer(self, summary: QueueSummary) -> Probe:
        """The service's own answer, as the forwarder last saw it."""
        failing = summary.last_error_utc and (
            not summary.last_delivery_utc or summary.last_error_utc > summary.last_delivery_utc
        )
        if failing:
            since = show(summary.first_failure_utc or summary.last_error_utc)  # Brussels time: a person reads it
            detail = f"{summary.failed_attempts} failed call(s) since {since}: {summary.last_error}"
            channels = summary.last_error_channels or None
            return Probe("service_answer", False, detail, summary.last_error_utc, summary.last_error_symptom, channels)
        last = show(summary.last_delivery_utc) if summary.last_delivery_utc else "never"
        return self._probe("service_answer", True, f"last delivery {last}")
