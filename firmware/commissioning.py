"""Commissioning checks: is this configuration really this site's, and can its credentials be used?

`config.load` accepts the example's values (the demo and the tests run on them); `sitegate config check` adds these
checks, so a gate installed in a hurry never sends registrations for the example's site. The certificate's expiry
is also a health finding, so `sitegate status` says it every day until the certificate is renewed.
"""

from __future__ import annotations

import dataclasses
import os
import pwd
from datetime import datetime, timedelta
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import serialization

from sitegate import config as configuration
from sitegate.clock import Clock
from sitegate.domain.identifiers import normalise_enterprise_number, normalise_works_declaration
from sitegate.errors import DeviceKeyError, SitegateError
from sitegate.health import CRITICAL, WARNING, Finding
from sitegate.settings import Problem

MAX_REASON = 500  # characters of a technician's reason kept in a signed record

EXPIRY_WARNING = timedelta(days=30)
_PLACEHOLDER_FIX = "replace the example's value with this site's own (works declaration, employers, place of work)"


def _example(section: type, name: str):
    """The example value of one key, as the declarations give it (so the example is spelled in one place)."""
    return next(f.metadata["example"] for f in dataclasses.fields(section) if f.name == name)


def placeholder_problems(config: configuration.Config) -> list[Problem]:
    """The example configuration's site values, left in place: registrations would go to another site."""
    site, place = config.site, config.site.place_of_work
    problems = []
    if site.works_declaration and site.works_declaration == normalise_works_declaration(
        _example(configuration.SiteConfig, "works_declaration"), "example"
    ):
        problems.append(Problem("site.works_declaration", "still the example's number", _PLACEHOLDER_FIX))
    example_employers = {
        normalise_enterprise_number(e["number"], "example") for e in _example(configuration.SiteConfig, "employers")
    }
    for number in sorted(example_employers & set(site.employer_numbers)):
        problems.append(Problem("site.employers", f"{number} is the example's employer", _PLACEHOLDER_FIX))
    example_position = (
        _example(configuration.Coordinates, "latitude"),
        _example(configuration.Coordinates, "longitude"),
    )
    if place.coordinates and (place.coordinates.latitude, place.coordinates.longitude) == example_position:
        problems.append(
            Problem("site.place_of_work.coordinates", "still the example's position (Brussels)", _PLACEHOLDER_FIX)
        )
    example_street = (_example(configuration.Address, "street"), _example(configuration.Address, "house_number"))
    if place.address and (place.address.street, place.address.house_number) == example_street:
        problems.append(Problem("site.place_of_work.address", "still the example's address", _PLACEHOLDER_FIX))
    return problems


def credential_problems(service: configuration.ServiceConfig, now: datetime) -> list[Problem]:
    """Client id, key and certificate: present, readable, matching each other, and in date."""
    problems = []
    if not service.client_id.strip():
        problems.append(Problem("service.client_id", "empty", "the client id ONSS gave for this company's certificate"))
    key = _load(service.key_file, "service.key_file", _private_key, problems)
    certificate = _load(service.cert_file, "service.cert_file", x509.load_pem_x509_certificate, problems)
    if key is not None and certificate is not None and _public(key) != _public(certificate):
        problems.append(
            Problem(
                "service.cert_file",
                f"{service.cert_file} is not the certificate of the key {service.key_file}",
                "install the certificate issued for this key (or the key of this certificate)",
            )
        )
    if certificate is not None:
        problems += [
            Problem(
                "service.cert_file", f.text, "renew the certificate with ONSS", f.severity.replace("critical", "error")
            )
            for f in expiry_findings(certificate.not_valid_after_utc, now)
        ]
    return problems


def expiry_findings(not_after: datetime, now: datetime) -> list[Finding]:
    """Expired: critical (the token is refused); within 30 days: a warning, every day until renewed."""
    left = not_after - now
    if left <= timedelta(0):
        return [Finding(CRITICAL, f"the company certificate expired on {not_after:%Y-%m-%d}: renew it with ONSS", True)]
    if left <= EXPIRY_WARNING:
        return [Finding(WARNING, f"the company certificate expires on {not_after:%Y-%m-%d} ({left.days} d left)")]
    return []


def certificate_expiry(service: configuration.ServiceConfig) -> datetime | None:
    """When the company certificate expires; None when none is readable (`config check` explains why)."""
    try:
        return x509.load_pem_x509_certificate(Path(service.cert_file).read_bytes()).not_valid_after_utc
    except (TypeError, OSError, ValueError):
        return None


def certificate_health(service: configuration.ServiceConfig, now: datetime) -> list[Finding]:
    """For `sitegate status`: the certificate's expiry (an unreadable one is `config check`'s to explain)."""
    expiry = certificate_expiry(service)
    return expiry_findings(expiry, now) if expiry else []


def check_reason(
    reason: str, example: str = "SD card replaced, no backup of device.key", error: type[SitegateError] = DeviceKeyError
) -> str:
    """A technician's reason as a signed record keeps it: one printable line of a sensible length."""
    text = reason.strip()
    if not text or len(text) > MAX_REASON or not text.isprintable():
        raise error(
            f"the reason must be 1 to {MAX_REASON} printable characters",
            f'say why in a few words: --reason "{example}"',
        )
    return text


def actor() -> str:
    """The Unix user who made a change: the one behind sudo when the command runs through the sudoers rule."""
    return os.environ.get("SUDO_USER") or pwd.getpwuid(os.getuid()).pw_name


def _private_key(data: bytes):
    return serialization.load_pem_private_key(data, password=None)


def _public(key_or_certificate) -> bytes:
    return key_or_certificate.public_key().public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )


def _load(path: Path | None, name: str, parse, problems: list[Problem]):
    """The parsed file, or None with the problem added."""
    if path is None:
        problems.append(Problem(name, "not set", "name the file (the company's credentials from ONSS)"))
        return None
    try:
        return parse(Path(path).read_bytes())
    except FileNotFoundError:
        problems.append(Problem(name, f"{path} does not exist", "install the file there (mode 0640, group sitegate)"))
    except PermissionError:
        problems.append(Problem(name, f"{path} cannot be read", "make it readable: mode 0640, group sitegate"))
    except (OSError, ValueError, TypeError) as error:
        problems.append(Problem(name, f"{path} is not a usable PEM file: {error}", "install an unencrypted PEM file"))
    return None


def online_problems(service: configuration.ServiceConfig, clock: Clock) -> list[Problem]:
    """`config check --online`: a token obtained from the service now proves client id, key and certificate."""
    from sitegate.service.client import DeliveryFailure, ServiceClient

    try:
        ServiceClient(service, clock=clock).token()
    except DeliveryFailure as error:
        return [Problem("service.token_url", f"no token: {error.problem}", error.fix)]
    return []
