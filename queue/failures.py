"""Why delivery fails, in the procedure's words: one vocabulary and one rule, used by the forwarder and the journal.

The official procedure sorts causes by who must act: our side (the provider: no exemption), a third party's
infrastructure (power, internet: exempt if verifiable), the service itself (exempt). What a single failed call
shows (a *symptom*) is not always enough to tell: a certificate we cannot verify is our trust configuration when
an independent HTTPS host verifies fine, and a network that intercepts TLS when it does not. So the cause is
computed from the symptom *and* the independent reference (`internet_ok`), by `cause()`, wherever it is shown.
"""

from __future__ import annotations

from enum import StrEnum


class Cause(StrEnum):
    """Who must act. The values are those of the signed outage records: never rename them."""

    OURS = "our_side"
    INFRASTRUCTURE = "third_party_infrastructure"
    SERVICE = "service_unavailable"
    UNKNOWN = "unknown"

    @property
    def exempt(self) -> bool:
        """The procedure exempts workers only for a verifiable third-party or service unavailability."""
        return self in (Cause.INFRASTRUCTURE, Cause.SERVICE)


class Symptom(StrEnum):
    """What one failed call or probe showed."""

    NO_ROUTE = "no_route"  # no default route, or the gateway does not answer: local network or power
    DNS = "dns_failed"  # the resolver did not answer
    NAME_UNKNOWN = "name_unknown"  # the resolver answered that the name does not exist (NXDOMAIN)
    NO_CONNECTION = "no_connection"  # no answer to the connection (timeout, unreachable)
    REFUSED = "connection_refused"  # the host answered and refused: the network path works
    TLS_UNTRUSTED = "tls_untrusted"  # the certificate could not be verified
    TLS_FAILED = "tls_failed"  # the handshake broke off
    PROXY_PAGE = "html_page"  # an HTML page answered instead of the service (proxy, captive portal, maintenance)
    SERVICE_ERROR = "service_error"  # 5xx, 429
    NO_ANSWER = "no_answer"  # connected, but no answer in time
    OFF_CONTRACT = "off_contract"  # an answer that does not follow the contract
    CREDENTIALS = "credentials"  # our key, certificate, client id or rights
    CONFIGURATION = "configuration"  # our own settings (a CA file that does not exist, ...)
    DEVICE = "device_fault"  # our own hardware: a reader offline, the disk full


def cause(symptom: Symptom | str, internet_ok: bool | None, service_verified: bool = False) -> Cause:
    """The procedure's verdict for one symptom, given whether an independent HTTPS host was reachable.

    internet_ok: True (the reference host answered with a valid certificate), False (it did not), None (no
    reference configured or not probed yet). service_verified: the service's own name was verified in a TLS
    handshake, so whatever answered over it is the service (a captive portal cannot show its certificate).
    """
    symptom = Symptom(symptom)
    if symptom is Symptom.PROXY_PAGE and service_verified:
        return Cause.SERVICE  # its own error or maintenance page
    if symptom in (Symptom.CREDENTIALS, Symptom.CONFIGURATION, Symptom.DEVICE):
        return Cause.OURS
    if symptom is Symptom.NO_ROUTE:
        return Cause.INFRASTRUCTURE
    if symptom in (Symptom.SERVICE_ERROR, Symptom.NO_ANSWER, Symptom.OFF_CONTRACT):
        return Cause.SERVICE
    if symptom is Symptom.TLS_UNTRUSTED:
        # The reference verifies: only the service fails with *our* trust settings (CA file, CA bundle, clock).
        if internet_ok is None:
            return Cause.UNKNOWN
        return Cause.OURS if internet_ok else Cause.INFRASTRUCTURE
    if symptom is Symptom.NAME_UNKNOWN:
        # The resolver answered that the service's name does not exist: the configured URL is wrong, unless the
        # reference's name fails as well (a resolver that answers "no such name" for everything).
        return Cause.INFRASTRUCTURE if internet_ok is False else Cause.OURS
    if symptom is Symptom.REFUSED:
        # The network answered: the service's host refused, unless nothing else can be reached either.
        return Cause.INFRASTRUCTURE if internet_ok is False else Cause.SERVICE
    if symptom is Symptom.PROXY_PAGE:
        # A page over an unverified connection: the service's where other sites load, a captive portal where they
        # do not; with no reference to tell, no exemption is claimed.
        return Cause.UNKNOWN if internet_ok is None else Cause.SERVICE if internet_ok else Cause.INFRASTRUCTURE
    # DNS, NO_CONNECTION, TLS_FAILED: the path failed; the reference says whether it was the whole internet.
    return Cause.SERVICE if internet_ok else Cause.INFRASTRUCTURE
