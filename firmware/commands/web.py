"""The foreman's page: serve it, hash a foreman's PIN, make the page's certificate."""

from __future__ import annotations

import getpass
import hashlib
import sys
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives.serialization import Encoding

from sitegate import config as configuration
from sitegate import jsonlog
from sitegate.clock import SYSTEM
from sitegate.errors import SitegateError
from sitegate.output import Report
from sitegate.pins import hash_pin
from sitegate.service.credentials import make_self_signed
from sitegate.web import server


def serve(args) -> int:
    jsonlog.setup()
    return server.serve(configuration.load(args.config), SYSTEM)


def pin_hash(args) -> Report:
    if sys.stdin.isatty():  # typed unseen: asked twice, so a slip of the finger never locks a foreman out
        pin = getpass.getpass("PIN (6 digits or more): ")
        if getpass.getpass("the same PIN again: ") != pin:
            raise SitegateError("the two PINs typed differ: nothing was made", "run `sitegate web pin-hash` again")
    else:
        pin = sys.stdin.readline()
    line = f'pin_hash = "{hash_pin(pin)}"'
    note = "paste it into a [[web.foreman]] table beside the foreman's name, then `sitegate config check`"
    return Report({"pin_hash": line.split('"')[1]}, line, notes=[note])


def make_cert(args) -> Report:
    """The device's own certificate for the page's HTTPS: self-signed, for the gate's address on the site network."""
    config = configuration.load(args.config)
    directory = Path(args.dir) if args.dir else config.data_dir / "web-tls"
    key, cert = make_self_signed(directory, SYSTEM.now(), f"sitegate-{config.device_id}", hosts=tuple(args.host))
    der = x509.load_pem_x509_certificate(cert.read_bytes()).public_bytes(Encoding.DER)
    fingerprint = ":".join(f"{byte:02X}" for byte in hashlib.sha256(der).digest())
    text = "\n".join(
        [
            "put these two lines in [web], then `sitegate config check` and restart sitegate-web:",
            f'tls_cert = "{cert}"',
            f'tls_key = "{key}"',
            f"SHA-256 fingerprint (what a phone shows when it first meets the page): {fingerprint}",
        ]
    )
    return Report({"tls_cert": str(cert), "tls_key": str(key), "sha256": fingerprint}, text)
