"""`sitegate web serve`: the page's own process, on cheroot (pure Python, a small thread pool, TLS built in).

It listens on `web.listen` only, over HTTPS when `web.tls_cert` is set; off (exit 0 at once) unless
`web.enabled`. SIGTERM stops it cleanly; it can crash or be stopped without the gate noticing.
"""

from __future__ import annotations

import logging
import signal
import threading

import sdnotify
from cheroot import wsgi
from cheroot.ssl.builtin import BuiltinSSLAdapter

from sitegate import __version__
from sitegate.clock import Clock
from sitegate.config import Config
from sitegate.errors import SitegateError
from sitegate.jsonlog import event
from sitegate.web.app import make_app

logger = logging.getLogger("sitegate.web")
THREADS = 4  # a handful of phones; each thread costs little, and a fifth request waits its turn


class WebError(SitegateError):
    """The page cannot be served as configured."""


def serve(config: Config, clock: Clock, stop: threading.Event | None = None) -> int:
    web = config.web
    if not web.enabled:
        event(logger, "web_off", reason="web.enabled is false")
        return 0
    server = wsgi.Server((web.listen, web.port), make_app(config, clock), numthreads=THREADS)
    server.server_name = f"sitegate-{config.device_id}"
    if web.tls_cert is not None:
        server.ssl_adapter = BuiltinSSLAdapter(str(web.tls_cert), str(web.tls_key))
    stop = stop or threading.Event()
    if threading.current_thread() is threading.main_thread():
        signal.signal(signal.SIGTERM, lambda *_: stop.set())
        signal.signal(signal.SIGINT, lambda *_: stop.set())
    try:
        server.prepare()
    except OSError as error:
        raise WebError(
            f"cannot listen on {web.listen}:{web.port}: {error}",
            "set web.listen to an address of this gate (`ip -brief address`) and web.port to a free port",
        ) from None
    host, port = server.bind_addr[:2]
    scheme = "https" if web.tls_cert is not None else "http"
    serving = threading.Thread(target=server.serve, name="web", daemon=True)
    serving.start()
    event(logger, "web_ready", url=f"{scheme}://{host}:{port}/", version=__version__, foremen=len(web.foremen))
    sdnotify.SystemdNotifier().notify("READY=1")
    stop.wait()
    server.stop()
    event(logger, "web_stopped")
    return 0
