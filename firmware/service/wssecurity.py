"""WS-Security for the SOAP channel: the step that puts the company's token on an envelope, behind one seam.

The WSDL's X.509 policy (wsdl/v1/PresenceRegistration-X509_v1.wsdl): an asymmetric binding whose initiator token is
the company's X.509 certificate, always sent to the recipient (a BinarySecurityToken); algorithm suite Basic256
(RSA-SHA1 signature, SHA-1 digests, exclusive C14N); a wsu:Timestamp included; the Body signed. zeep's
`BinarySignature` (on xmlsec, libxmlsec1) does exactly that signing; this module adds the timestamp from the
injected clock and turns key trouble into a CredentialError a technician can act on.

The seam: a `TokenStep` secures an envelope in place. The SAML variants of the WSDL (sender-vouches, holder-of-key
through an STS) would be other token steps; only the X.509 one exists.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Protocol

import xmlsec
from lxml import etree
from zeep.wsse.signature import BinarySignature
from zeep.wsse.utils import WSU, get_security_header

from sitegate.service.credentials import CredentialError

TIMESTAMP_LIFETIME = timedelta(minutes=5)


class TokenStep(Protocol):
    """Puts the company's security token on a SOAP envelope, in place, just before it is sent."""

    def secure(self, envelope: etree._Element, now: datetime) -> None: ...


def _utc(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def timestamp(now: datetime) -> etree._Element:
    """wsu:Timestamp: Created now, Expires five minutes later (UTC)."""
    return WSU.Timestamp(WSU.Created(_utc(now)), WSU.Expires(_utc(now + TIMESTAMP_LIFETIME)))


class X509Signature:
    """The X.509 token step: a timestamp, then the Body and the timestamp signed with the company's key, the
    certificate sent along as a BinarySecurityToken."""

    def __init__(self, key_file: Path | None, cert_file: Path | None) -> None:
        if key_file is None or cert_file is None:
            raise CredentialError(
                "the SOAP channel signs with the company's certificate: service.key_file and service.cert_file",
                "name the key and the certificate registered with ONSS",
            )
        try:
            self._signature = BinarySignature(str(key_file), str(cert_file))
        except OSError as error:
            raise CredentialError(f"cannot read {error.filename}: {error.strerror}", "install it there") from None

    def secure(self, envelope: etree._Element, now: datetime) -> None:
        get_security_header(envelope).append(timestamp(now))
        try:
            self._signature.apply(envelope, {})
        except xmlsec.Error as error:
            raise CredentialError(
                f"the key or certificate cannot sign ({error})", "install an unencrypted PEM key and its certificate"
            ) from None
