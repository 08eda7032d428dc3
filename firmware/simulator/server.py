"""The simulator as an HTTP(S) server: the contract's token and bulk paths, the /_sim/ control paths, and the faults
that only a server can make (a reset connection, a late answer, a garbled body)."""

from __future__ import annotations

import json
import socket
import ssl
import struct
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import parse_qs, urlparse

import jwt
from lxml import etree

from sitegate.servers import PromptShutdown
from sitegate.service import presence_rest_v1 as contract
from sitegate.simulator import soap
from sitegate.simulator.service import SimulatedService

BULK_ROUTE = contract.BASE_PATH + contract.BULK_PATH
GARBLED = b'{"items": [ {"createdPres'


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

    def _soap(self, service: SimulatedService, body: bytes) -> None:
        """One POST to the SOAP route (simulator/soap.py holds its rules): the faults first, as the REST endpoint,
        then the signature, the XSD, the call."""
        presences = service.presences
        action = self.headers.get("SOAPAction", "").strip('"')
        fault_now = service.take_fault(bulk=action != soap.contract.GET_ACTION)  # a read is not the bulk call
        if fault_now == "refuse":
            self._reset()
        if fault_now in ("timeout", "slow"):
            time.sleep(service.timeout_s if fault_now == "timeout" else service.slow_s)
        if fault_now in ("503", "503_retry_after", "429"):
            headers = {"Retry-After": "7"} if fault_now != "503" else None
            self._send(int(fault_now[:3]), b"Service Unavailable", "text/plain", headers)
            return
        if fault_now == "html":
            self._send(502, b"<html><body><h1>502 Bad Gateway</h1>proxy</body></html>", "text/html")
            return
        if fault_now == "malformed":
            self._send(200, soap.GARBLED, soap.contract.CONTENT_TYPE)
            return
        if fault_now == "500":
            self._send(500, soap.fault("soapenv:Server", "simulated internal error"), soap.contract.CONTENT_TYPE)
            return
        try:
            if action not in (soap.contract.SOAP_ACTION, soap.contract.GET_ACTION):
                raise soap.Refused("soapenv:Client", f"SOAPAction must be {soap.contract.SOAP_ACTION}")
            try:
                root = etree.fromstring(body)
            except etree.XMLSyntaxError as error:
                raise soap.Refused("soapenv:Client", f"not XML: {error}") from None
            if fault_now == "revoked_token":
                raise soap.Refused("wsse:FailedAuthentication", "simulated: the certificate is revoked")
            try:
                presences.check_signature(root)
            except soap.Refused:
                with presences.lock:
                    presences.refused_signatures += 1
                raise
            if action == soap.contract.GET_ACTION:
                answer = soap.contract.envelope(presences.get(root))
                self._send(200, etree.tostring(answer, encoding="utf-8"), soap.contract.CONTENT_TYPE)
                return
            if fault_now == "reject_batch":
                raise soap.Refused("soapenv:Client", "simulated: malformed request")
            items = presences.request_items(root)
        except (soap.Refused, soap.contract.ContractError) as refusal:
            code, text = (
                (refusal.code, refusal.text) if isinstance(refusal, soap.Refused) else ("soapenv:Client", str(refusal))
            )
            self._send(
                500, soap.fault(code, text), soap.contract.CONTENT_TYPE
            )  # SOAP 1.1: a fault travels with status 500
            return
        response = presences.register(items, partial=fault_now == "partial")
        # The lost-answer faults: the presences are registered, the answer never reaches the device.
        if fault_now == "answer_reset":
            self._reset()
        if fault_now == "answer_timeout":
            time.sleep(service.timeout_s)
        if fault_now == "answer_malformed":
            self._send(200, soap.GARBLED, soap.contract.CONTENT_TYPE)
            return
        self._send(200, etree.tostring(soap.contract.envelope(response), encoding="utf-8"), soap.contract.CONTENT_TYPE)

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
            self._soap(service, body)
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


class SimulatorServer(PromptShutdown, ThreadingHTTPServer):
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
