"""A local stand-in for Check In and Out at Work: token endpoint, bulk call, remarks, and switchable faults.

A tool beside the flow, not a part of it: nothing in the gate or the queue imports it. It speaks the contract of
`sitegate.service.presence_rest_v1` (paths, bulk limit) and takes them from there, so a correction made in the
contract module reaches the simulator too.

`sitegate simulator` runs it as a real HTTP(S) server for the demo, the tests and site acceptance. It keeps
what it received (GET /_sim/received), computes from registrations alone the remarks 14, 15, 21, 22, 24, 25,
32, 36 and 37, and can misbehave on demand (POST /_sim/fault): refuse, 500/503 (with or without Retry-After),
429, slow, timeout, an HTML page as a proxy sends, malformed JSON, partial bulk success, expired tokens,
revoked tokens (every bulk call answered 401, even after a fresh token); and, for the bulk call,
registering the items and then losing the answer (answer_timeout, answer_reset, answer_malformed).
"""

from __future__ import annotations

import json
import secrets
import socket
import ssl
import struct
import threading
import time
from collections import defaultdict
from datetime import datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import parse_qs, urlparse

import jwt

from sitegate.clock import SYSTEM, Clock
from sitegate.service import presence_rest_v1 as contract
from sitegate.simulator import soap
from sitegate.value_checks import BELGIUM_LATITUDE, BELGIUM_LONGITUDE

BULK_ROUTE = contract.BASE_PATH + contract.BULK_PATH
# Faults of the bulk call only (the token call is left alone), then every fault.
BULK_ONLY_FAULTS = (
    "partial",
    "expire_token",
    "reject_batch",
    "revoked_token",
    "answer_timeout",
    "answer_reset",
    "answer_malformed",
)
FAULTS = ("refuse", "500", "503", "503_retry_after", "429", "slow", "timeout", "html", "malformed", *BULK_ONLY_FAULTS)
GARBLED = b'{"items": [ {"createdPres'


class SimulatedService:
    """The service's state and rules, apart from HTTP, so tests can drive it in-process or behind a server."""

    def __init__(
        self,
        reception_delay_s: int = 900,
        clock: Clock = SYSTEM,
        persons: set[str] | None = None,
        token_lifetime_s: int = 600,
    ) -> None:
        self.reception_delay_s = reception_delay_s
        self.now = clock.now
        self.persons = persons
        self.token_lifetime_s = token_lifetime_s
        self.lock = threading.Lock()
        self.tokens: dict[str, datetime] = {}
        self.fault: str | None = None
        self.fault_remaining: int | None = None  # None: until cleared
        self.slow_s = 1.0
        self.timeout_s = 30.0
        self.received: list[dict] = []
        self.created: list[dict] = []
        self.calls = 0
        self.token_calls = 0
        self._five_fields: set[tuple] = set()
        self._last_type: dict[str, tuple[str, datetime]] = {}
        self._last_in: dict[str, datetime] = {}
        self.presences = soap.SoapPresences(clock, persons)  # the SOAP channel's state (simulator/soap.py)

    def set_fault(self, fault: str | None, count: int | None = None, seconds: float | None = None) -> None:
        if fault is not None and fault not in FAULTS:
            raise ValueError(f"unknown fault {fault!r}; known: {', '.join(FAULTS)}")
        with self.lock:
            self.fault, self.fault_remaining = fault, count
            if fault == "expire_token":
                self.tokens.clear()
            if seconds is not None:
                self.slow_s = self.timeout_s = seconds

    def take_fault(self, bulk: bool) -> str | None:
        """The fault for this call, counting it down; bulk-only faults leave token calls alone."""
        with self.lock:
            fault = self.fault
            if fault in BULK_ONLY_FAULTS and not bulk:
                return None
            if fault and self.fault_remaining is not None:
                self.fault_remaining -= 1
                if self.fault_remaining <= 0:
                    self.fault, self.fault_remaining = None, None
            return fault

    def issue_token(self, assertion: str) -> dict:
        claims = jwt.decode(assertion, options={"verify_signature": False})
        for claim in ("iss", "sub", "aud", "jti", "exp"):
            if claim not in claims:
                raise ValueError(f"client assertion lacks {claim}")
        token = secrets.token_urlsafe(24)
        with self.lock:
            self.token_calls += 1
            self.tokens[token] = self.now() + timedelta(seconds=self.token_lifetime_s)
        return {"access_token": token, "token_type": "Bearer", "expires_in": self.token_lifetime_s}

    def token_valid(self, token: str) -> bool:
        with self.lock:
            expires = self.tokens.get(token)
        return expires is not None and self.now() < expires

    def register(self, items: list[dict], partial: bool = False) -> dict:
        """The bulk call's answer; remarks never refuse a registration, only invalid items are not created."""
        with self.lock:
            self.calls += 1
            received_at = self.now()
            answers = []
            for index, item in enumerate(items):
                self.received.append({"item": item, "received_utc": received_at.isoformat()})
                problem = self._invalid(item)
                if problem is None and partial and index % 2 == 1:
                    problem = "simulated: not created (partial bulk success)"
                if problem:
                    answers.append({"notCreatedPresenceRegistration": {"reason": problem}})
                    continue
                remarks = self._remarks(item, received_at)
                created = {
                    "id": f"SIM-{len(self.created) + 1:08d}",
                    "validity": "INVALID" if remarks else "VALID",
                    "remarks": [{"code": code} for code in remarks],
                }
                self.created.append({"item": item, "remarks": remarks, "id": created["id"]})
                answers.append({"createdPresenceRegistration": created})
            return {"items": answers}

    @staticmethod
    def _invalid(item: dict) -> str | None:
        person = item.get("ssin") or item.get("limosaId")
        if not isinstance(person, str) or not person.isdigit():
            return "no valid ssin or limosaId"
        if item.get("type") not in ("IN", "OUT"):
            return f"type {item.get('type')!r} is not IN or OUT"
        try:
            datetime.fromisoformat(str(item.get("registrationDate")).replace("Z", "+00:00"))
        except ValueError:
            return "registrationDate is not a timestamp"
        if not isinstance(item.get("employer"), dict):
            return "employer missing"
        return None

    def _remarks(self, item: dict, received_at: datetime) -> list[int]:
        remarks = []
        person = item.get("ssin") or item.get("limosaId")
        moment = datetime.fromisoformat(item["registrationDate"].replace("Z", "+00:00"))
        employer = json.dumps(item.get("employer"), sort_keys=True)
        place = json.dumps(item.get("placeOfWork"), sort_keys=True)
        five = (employer, item.get("ssin"), moment.replace(microsecond=0), item.get("limosaId"), place)
        if five in self._five_fields:
            remarks.append(14)
        else:
            self._five_fields.add(five)
        if self.persons is not None and item.get("ssin") and item["ssin"] not in self.persons:
            remarks.append(15)
        kind = item["type"]
        previous = self._last_type.get(person)
        if previous and previous[0] == kind and 14 not in remarks:
            remarks.append(21 if kind == "IN" else 22)
        if kind == "OUT":
            last_in = self._last_in.get(person)
            if last_in is None or moment - last_in > timedelta(hours=24):
                remarks.append(24)
        else:
            self._last_in[person] = moment
        self._last_type[person] = (kind, moment)
        place_of_work = item.get("placeOfWork") or {}
        coordinates = place_of_work.get("coordinates")
        if not coordinates:
            remarks.append(25)
        elif not (
            BELGIUM_LATITUDE[0] <= coordinates.get("latitude", 0) <= BELGIUM_LATITUDE[1]
            and BELGIUM_LONGITUDE[0] <= coordinates.get("longitude", 0) <= BELGIUM_LONGITUDE[1]
        ):
            remarks.append(36)
        address = place_of_work.get("address")
        if address is not None and not all(address.get(k) for k in ("municipalityName", "streetName", "houseNumber")):
            remarks.append(37)
        if (received_at - moment).total_seconds() >= self.reception_delay_s:
            remarks.append(32)
        return sorted(remarks)

    def summary(self) -> dict:
        with self.lock:
            per_person_moment = defaultdict(int)
            for entry in self.received:
                item = entry["item"]
                per_person_moment[
                    (item.get("ssin") or item.get("limosaId"), item.get("registrationDate"), item.get("type"))
                ] += 1
            return {
                "calls": self.calls,
                "token_calls": self.token_calls,
                "received": len(self.received),
                "created": len(self.created),
                "distinct": len(per_person_moment),
                "resent": sum(n - 1 for n in per_person_moment.values()),
                "fault": self.fault,
            }


class _Handler(BaseHTTPRequestHandler):
    server: SimulatorServer
    protocol_version = "HTTP/1.1"
    # One write per answer and no Nagle: otherwise headers and body cross delayed ACKs (~40 ms a call).
    wbufsize = -1
    disable_nagle_algorithm = True

    def log_message(self, format: str, *args) -> None:  # noqa: A002 - quiet: tests and the demo read stdout
        pass

    def _send(self, status: int, body: bytes, content_type: str = "application/json", headers: dict | None = None):
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        for name, value in (headers or {}).items():
            self.send_header(name, value)
        self.end_headers()
        self.wfile.write(body)

    def _json(self, status: int, data: object, headers: dict | None = None) -> None:
        self._send(status, json.dumps(data).encode(), headers=headers)

    def _body(self) -> bytes:
        return self.rfile.read(int(self.headers.get("Content-Length") or 0))

    def _reset(self) -> None:
        """Drop the connection with a TCP reset, as a down network or firewall does."""
        self.connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        self.close_connection = True
        raise ConnectionAbortedError

    def do_GET(self) -> None:  # noqa: N802 - http.server's naming
        service = self.server.service
        path = urlparse(self.path).path
        if path == "/_sim/received":
            with service.lock:
                self._json(200, {"received": service.received, "created": service.created})
        elif path == "/_sim/summary":
            self._json(200, service.summary())
        else:
            self._json(404, {"error": f"no such path {path}"})

    def do_POST(self) -> None:  # noqa: N802
        service = self.server.service
        path = urlparse(self.path).path
        body = self._body()
        if path == "/_sim/fault":
            request = json.loads(body or b"{}")
            try:
                service.set_fault(request.get("fault"), request.get("count"), request.get("seconds"))
            except ValueError as error:
                self._json(400, {"error": str(error)})
                return
            self._json(200, {"fault": service.fault})
            return
        if path == soap.ROUTE:
            soap.answer(self, service, body)
            return
        if path not in (contract.TOKEN_PATH, BULK_ROUTE):
            self._json(404, {"error": f"no such path {path}"})
            return
        fault = service.take_fault(bulk=path == BULK_ROUTE)
        if fault == "refuse":
            self._reset()
        if fault == "timeout":
            time.sleep(service.timeout_s)
        if fault == "slow":
            time.sleep(service.slow_s)
        if fault in ("500", "503", "503_retry_after", "429"):
            status = int(fault[:3])
            headers = {"Retry-After": "7"} if fault in ("503_retry_after", "429") else None
            self._json(status, {"error": "simulated unavailability"}, headers)
            return
        if fault == "html":
            self._send(502, b"<html><body><h1>502 Bad Gateway</h1>proxy</body></html>", "text/html")
            return
        if fault == "malformed":
            self._send(200, GARBLED, "application/json")
            return
        if path == contract.TOKEN_PATH:
            form = parse_qs(body.decode())
            try:
                self._json(200, service.issue_token(form["client_assertion"][0]))
            except (KeyError, ValueError, jwt.PyJWTError) as error:
                self._json(400, {"error": "invalid_client", "error_description": str(error)})
            return
        token = self.headers.get("Authorization", "").removeprefix("Bearer ")
        if fault == "revoked_token" or not service.token_valid(token):  # revoked: even a fresh token is refused
            self._json(401, {"error": "invalid_token"})
            return
        if fault == "reject_batch":
            self._json(400, {"error": "simulated: malformed request"})
            return
        try:
            items = json.loads(body)["items"]
            assert isinstance(items, list)
        except (ValueError, KeyError, TypeError, AssertionError):
            self._json(400, {"error": 'body must be {"items": [...]}'})
            return
        if len(items) > contract.MAX_BULK:
            self._json(413, {"error": "at most 200 items per call"})
            return
        answer = service.register(items, partial=fault == "partial")
        # The lost-answer faults: the items are registered, the answer never reaches the device.
        if fault == "answer_reset":
            self._reset()
        if fault == "answer_timeout":
            time.sleep(service.timeout_s)  # the device has given up by now: the late answer goes nowhere
        if fault == "answer_malformed":
            self._send(200, GARBLED, "application/json")
            return
        self._json(200, answer)


class SimulatorServer(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True

    def __init__(
        self, service: SimulatedService, host: str = "127.0.0.1", port: int = 0, tls: tuple[Path, Path] | None = None
    ) -> None:
        self.service = service
        super().__init__((host, port), _Handler)
        if tls:
            context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
            context.load_cert_chain(certfile=str(tls[1]), keyfile=str(tls[0]))
            self.socket = context.wrap_socket(self.socket, server_side=True)
        self.scheme = "https" if tls else "http"

    def handle_error(self, request, client_address) -> None:
        pass  # resets and client timeouts are part of the simulation

    @property
    def url(self) -> str:
        host, port = self.server_address[:2]
        return f"{self.scheme}://{host}:{port}"

    @property
    def base_url(self) -> str:
        """What a device's service.base_url must be to use this simulator."""
        return self.url + contract.BASE_PATH

    @property
    def token_url(self) -> str:
        return self.url + contract.TOKEN_PATH

    def start(self) -> SimulatorServer:
        threading.Thread(target=self.serve_forever, name="simulator", daemon=True).start()
        return self
