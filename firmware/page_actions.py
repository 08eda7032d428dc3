"""The few things the foreman's page may ask of the daemon, over a local socket: record a reference number,
print the day's listing, render it for download. The daemon signs them; the page holds no key and opens the log
read-only, so a fault or a break-in on the page cannot forge or alter a record.

One JSON line in, one JSON line out, on a Unix socket in the data directory (mode 0600: the daemon's user only).
Each request runs in its own thread with its own connection (as the print button does), never under the gate's
lock: SQLite's write lock orders its append with the gate's, and a slow printer holds up nobody.
"""

from __future__ import annotations

import base64
import json
import logging
import os
import socket
import socketserver
import threading
from pathlib import Path

from sitegate.clock import Clock
from sitegate.clock.timefmt import BRUSSELS
from sitegate.config import Config
from sitegate.device import Device
from sitegate.domain.identifiers import normalise_enterprise_number
from sitegate.errors import SitegateError
from sitegate.jsonlog import event
from sitegate.servers import PromptShutdown

logger = logging.getLogger("sitegate.page_actions")
MAX_REQUEST = 4096
REQUEST_TIMEOUT_S = 5.0  # the page writes its one line at once: a connection silent longer is cut, not kept
MAX_PATH = 100  # a Unix socket path holds at most 107 bytes


class GateUnavailable(SitegateError):
    """The page could not reach the gate's daemon."""


def socket_path(config: Config) -> Path:
    path = config.data_dir / "page.sock"
    if len(str(path)) > MAX_PATH:
        raise SitegateError(f"{path} is too long for a Unix socket", "choose a shorter device.data_dir")
    return path


def perform(config: Config, clock: Clock, request: dict) -> dict:
    """One request of the page, done with the device's key: the same functions as the `sitegate` command."""
    from sitegate.paper_fallback import listing as paper
    from sitegate.paper_fallback.outage import record_reference
    from sitegate.paper_fallback.printing import for_download, print_today

    by, now = str(request["by"]), clock.now()
    device = Device.open(config, clock)
    try:
        employer = request.get("employer")
        employer = normalise_enterprise_number(employer, "employer") if employer else None
        if request["action"] == "reference":
            return {"seq": record_reference(device.log, str(request["reference"]), now, employer, by=by)}
        if request["action"] == "print":
            _, printed = print_today(device, now, by, employer)
            return {"seq": printed.seq, "destination": printed.destination, "warnings": printed.warnings}
        if request["action"] == "download":
            day = now.astimezone(BRUSSELS).date()
            document = paper.build(
                device,
                day,
                with_roster=config.printer.include_roster,
                now=now,
                employer=employer,
                language=request.get("language"),
            )
            content, printed = for_download(device, document, by)
            pdf = base64.b64encode(content).decode("ascii")
            return {"seq": printed.seq, "pdf": pdf, "day": day.isoformat(), "workers": len(document.rows)}
        raise SitegateError(f"unknown action {request['action']!r}", "update the page and the daemon together")
    finally:
        device.close()


class _UnixServer(PromptShutdown, socketserver.ThreadingUnixStreamServer):
    """One thread per request; stops at once."""


class ActionServer:
    """The daemon's end: a threaded Unix stream server, started with the daemon and removed when it stops."""

    def __init__(self, config: Config, clock: Clock, request_timeout_s: float = REQUEST_TIMEOUT_S) -> None:
        self.path = socket_path(config)
        owner = self

        class Handler(socketserver.StreamRequestHandler):
            timeout = request_timeout_s  # a client that connects and says nothing must not hold a thread for ever

            def handle(self) -> None:
                owner._answer(self.rfile, self.wfile)

        self.config, self.clock = config, clock
        self.path.unlink(missing_ok=True)  # a socket left by a killed daemon
        previous = os.umask(0o177)
        try:
            self.server = _UnixServer(str(self.path), Handler)
        finally:
            os.umask(previous)
        self.server.daemon_threads = True
        self.thread = threading.Thread(target=self.server.serve_forever, name="page-actions", daemon=True)

    def start(self) -> None:
        self.thread.start()

    def _answer(self, rfile, wfile) -> None:
        try:
            line = rfile.readline(MAX_REQUEST)
        except TimeoutError:
            event(logger, "page_action_failed", logging.WARNING, problem="a client sent no request in time")
            return
        try:
            request = json.loads(line)
            answer = perform(self.config, self.clock, request)
            event(logger, "page_action", action=request["action"], by=request["by"], seq=answer["seq"])
        except SitegateError as error:
            answer = {"problem": error.problem, "fix": error.fix}
            event(logger, "page_action_failed", logging.ERROR, problem=error.problem, fix=error.fix)
        except (ValueError, KeyError, TypeError) as error:
            answer = {"problem": f"a request the daemon does not understand: {error}", "fix": "restart both"}
        wfile.write(json.dumps(answer).encode() + b"\n")

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()
        self.path.unlink(missing_ok=True)


def ask(config: Config, request: dict, timeout_s: float = 120) -> dict:
    """The page's end: send one request to the daemon and return its answer (SitegateError with its fix if the
    daemon refused it, GateUnavailable if it cannot be reached)."""
    try:
        with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as connection:
            connection.settimeout(timeout_s)
            connection.connect(str(socket_path(config)))
            connection.sendall(json.dumps(request).encode() + b"\n")
            with connection.makefile("rb") as answer:
                line = answer.readline()
    except OSError as error:
        raise GateUnavailable(
            f"the gate's daemon does not answer ({error})",
            "the gate may be stopped or restarting: try again in a minute, else call the technician",
        ) from None
    if not line:
        raise GateUnavailable("the gate's daemon closed the connection", "try again; else call the technician")
    found = json.loads(line)
    if "problem" in found:
        raise SitegateError(found["problem"], found.get("fix", ""))
    return found
