"""Stopping a local server: the page-actions socket (servers.PromptShutdown) beside the same server as the standard
library stops it (socketserver's shutdown() waits for serve_forever's 0.5 s poll); the daemon stops it every time."""

from __future__ import annotations

import socketserver
import statistics
import threading
import time
from pathlib import Path

from sitegate.servers import PromptShutdown

ROUNDS = 5


class _Quiet(socketserver.StreamRequestHandler):
    def handle(self) -> None:
        self.rfile.readline()


class _Prompt(PromptShutdown, socketserver.ThreadingUnixStreamServer):
    pass


def stop_ms(server_class: type, path: Path) -> float:
    """Median time, in ms, of shutdown() and server_close() of an idle server that has been serving a moment."""
    samples = []
    for _ in range(ROUNDS):
        path.unlink(missing_ok=True)
        server = server_class(str(path), _Quiet)
        threading.Thread(target=server.serve_forever, daemon=True).start()
        time.sleep(0.05)  # serving, idle, as between two foreman requests
        start = time.perf_counter_ns()
        server.shutdown()
        server.server_close()
        samples.append((time.perf_counter_ns() - start) / 1e6)
    path.unlink(missing_ok=True)
    return statistics.median(samples)


def bench_stop(scratch: Path, result) -> list[dict]:
    prompt = stop_ms(_Prompt, scratch / "prompt.sock")
    polled = stop_ms(socketserver.ThreadingUnixStreamServer, scratch / "polled.sock")
    return [result("server_stop_ms", prompt, "ms", polled, "<= 10 ms (reference: socketserver's own, 0.5 s poll)")]
