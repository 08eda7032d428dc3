"""Servers that stop at once: socketserver's serve_forever() polls every 0.5 s for a shutdown request, so its
shutdown() waited up to half a second at every stop of the daemon (the page's socket) and of the simulator."""

from __future__ import annotations

import selectors
import socket
import threading


class PromptShutdown:
    """A mixin before a socketserver server class: serve_forever() sleeps in select() until a request comes or
    shutdown() writes to a wake-up socket, and shutdown() returns as soon as the loop has ended."""

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self._wake, self._waker = socket.socketpair()
        self._stopped = threading.Event()

    def serve_forever(self, poll_interval: float | None = None) -> None:  # the poll is what this class removes
        try:
            with selectors.DefaultSelector() as selector:
                selector.register(self, selectors.EVENT_READ)
                selector.register(self._wake, selectors.EVENT_READ)
                while all(key.fileobj is not self._wake for key, _ in selector.select()):
                    self.handle_request()
        finally:
            self._stopped.set()

    def shutdown(self) -> None:
        self._waker.send(b"\0")
        self._stopped.wait()

    def server_close(self) -> None:
        super().server_close()
        self._wake.close()
        self._waker.close()
