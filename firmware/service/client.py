"""The Check In and Out at Work client: token, bulk call, and the symptom of every way it can fail.

Each failure names what was seen (queue/failures.py `Symptom`); who must act (`Cause`) is decided from it by the
one rule in queue/failures.py, which the outage journal uses too, so the forwarder and the journal never disagree.
"""

from __future__ import annotations

import email.utils
import json
from dataclasses import dataclass
from datetime import datetime, timedelta
from urllib.parse import urlparse

import requests
from urllib3.exceptions import ProtocolError

from sitegate.clock import Clock
from sitegate.config import Config, ServiceConfig
from sitegate.errors import SitegateError
from sitegate.queue.failures import Cause, Symptom, cause
from sitegate.service import presence_rest_v1 as contract
from sitegate.service.credentials import CredentialError, certificate_thumbprint, client_assertion, load_private_key

TOKEN_MARGIN = timedelta(seconds=60)  # fetch a new token this long before the old one expires
# getaddrinfo's words when a resolver answered that the name does not exist (EAI_NONAME, EAI_NODATA), as against
# "Temporary failure in name resolution" (EAI_AGAIN: no resolver answered).
NO_SUCH_NAME = ("Name or service not known", "No address associated with hostname")


class DeliveryFailure(SitegateError):
    """A call that said nothing about the items: they stay pending and are retried.

    answer_lost: the bulk call went out and no readable answer came back (no answer in time, the connection broken
    after it was made, a success answer that cannot be read): the service may have registered the items, so their
    resend may draw remark 14. Every other failure shows the items did not get there, or the service said so.
    channels: the channels whose answers make up the failure, in the order tried, when the gate has a fallback
    (service/channels.py): the outage's evidence and the foreman's guidance say the gate tried the other one."""

    def __init__(
        self,
        symptom: Symptom,
        problem: str,
        fix: str = "",
        retry_after: float | None = None,
        answer_lost: bool = False,
        channels: tuple[str, ...] = (),
    ) -> None:
        self.symptom = symptom
        self.retry_after = retry_after
        self.answer_lost = answer_lost
        self.channels = channels
        super().__init__(problem, fix)

    def cause(self, internet_ok: bool | None) -> Cause:
        """Who must act, given the outage probes' independent reference (queue/failures.py)."""
        return cause(self.symptom, internet_ok)


class BatchRejected(SitegateError):
    """The service refused the whole call as malformed (4xx): one of the items is at fault."""


@dataclass(frozen=True)
class BulkAnswer:
    results: list[contract.ItemResult]
    server_offset_s: float | None  # server Date minus our clock (positive: our clock is behind)


def retry_after_seconds(value: str | None, now: datetime) -> float | None:
    """Retry-After as seconds or as an HTTP date."""
    if not value:
        return None
    value = value.strip()
    if value.isdigit():
        return float(value)
    try:
        moment = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    return max((moment - now).total_seconds(), 0.0)


def _tls_symptom(text: str) -> Symptom:
    """A certificate we cannot verify is told apart from a handshake that broke off."""
    return Symptom.TLS_UNTRUSTED if "certificate" in text.lower() else Symptom.TLS_FAILED


def classify_exception(error: requests.RequestException, what: str) -> DeliveryFailure:
    """What a failed call showed; the cause follows from it (queue/failures.py)."""
    text = str(error)
    if isinstance(error, requests.exceptions.SSLError):
        return DeliveryFailure(
            _tls_symptom(text),
            f"{what}: TLS failed ({text[:200]})",
            "check service.ca_file, the clock, and that no proxy intercepts TLS",
        )
    if isinstance(error, requests.exceptions.ConnectTimeout):
        return DeliveryFailure(
            Symptom.NO_CONNECTION, f"{what}: no connection within the timeout", "check the internet link (router, 4G)"
        )
    if isinstance(error, requests.exceptions.ReadTimeout | requests.exceptions.ChunkedEncodingError):
        return DeliveryFailure(
            Symptom.NO_ANSWER,
            f"{what}: connected, but the service did not answer in time",
            "nothing to do: retried automatically",
        )
    if any(words in text for words in NO_SUCH_NAME):
        host = urlparse(error.request.url).hostname if error.request is not None else "the service's host name"
        return DeliveryFailure(
            Symptom.NAME_UNKNOWN,
            f"{what}: the resolver answered that {host} does not exist",
            "our configuration: check the host names in service.base_url and service.token_url",
        )
    if "NameResolution" in text or "name resolution" in text.lower():
        return DeliveryFailure(Symptom.DNS, f"{what}: DNS lookup failed", "check the internet link and DNS")
    if any(word in text for word in ("Connection refused", "Connection reset", "Connection aborted")):
        return DeliveryFailure(
            Symptom.REFUSED, f"{what}: the service's host refused the connection", "retried automatically"
        )
    return DeliveryFailure(Symptom.NO_CONNECTION, f"{what}: network error ({text[:200]})", "check the internet link")


def answer_lost(error: requests.RequestException) -> bool:
    """Whether a failed call went out and lost its answer. requests raises a connection error with urllib3's
    ProtocolError ("Connection aborted.") only once the connection was made; a connection that was never made
    (refused, DNS, TLS, connect timeout) comes wrapped in MaxRetryError."""
    if isinstance(error, requests.exceptions.ReadTimeout | requests.exceptions.ChunkedEncodingError):
        return True
    reason = error.args[0] if error.args else None
    return isinstance(error, requests.exceptions.ConnectionError) and isinstance(reason, ProtocolError)


class ServiceClient:
    """One client per forwarder thread. The clock is injected so token expiry and offsets follow a test's clock."""

    def __init__(
        self,
        config: ServiceConfig,
        session: requests.Session | None = None,
        *,
        clock: Clock,
    ) -> None:
        self.config = config
        self.session = session or requests.Session()
        # Passed on every call: a Session's own `verify` loses to $REQUESTS_CA_BUNDLE (requests issue #4726).
        self.verify: str | bool = str(config.ca_file) if config.ca_file else True  # never off
        self.now = clock.now
        self._token: str | None = None
        self._signing: tuple | None = None
        self._token_expires: datetime | None = None
        self.server_offset_s: float | None = None

    @property
    def timeout(self) -> tuple[float, float]:
        return (self.config.connect_timeout_s, self.config.read_timeout_s)

    def _check_trust(self) -> None:
        """A CA file that is configured but missing is our configuration, not the network's (requests would raise
        a bare OSError for it)."""
        if self.config.ca_file and not self.config.ca_file.is_file():
            raise DeliveryFailure(
                Symptom.CONFIGURATION,
                f"service.ca_file {self.config.ca_file} does not exist",
                "correct service.ca_file, or remove it to use the system's certificate authorities",
            )

    def token(self, refresh: bool = False) -> str:
        self._check_trust()
        now = self.now()
        if not refresh and self._token and self._token_expires and now < self._token_expires - TOKEN_MARGIN:
            return self._token
        try:
            if self._signing is None:  # loading checks the RSA key: tens of ms, so once per client
                self._signing = (load_private_key(self.config.key_file), certificate_thumbprint(self.config.cert_file))
            assertion = client_assertion(self.config.client_id, self.config.token_url, *self._signing, now)
        except CredentialError as error:
            raise DeliveryFailure(Symptom.CREDENTIALS, error.problem, error.fix) from None
        try:
            response = self.session.post(
                self.config.token_url,
                data={
                    "grant_type": "client_credentials",
                    "client_assertion_type": "urn:ietf:params:oauth:client-assertion-type:jwt-bearer",
                    "client_assertion": assertion,
                },
                timeout=self.timeout,
                verify=self.verify,
            )
        except requests.RequestException as error:
            raise classify_exception(error, "token request") from None
        if response.status_code in (400, 401, 403):
            raise DeliveryFailure(
                Symptom.CREDENTIALS,
                f"token refused ({response.status_code}): {response.text[:200]}",
                "check service.client_id, the key and the certificate registered with ONSS",
            )
        body = self._json(response, "token request")
        if not isinstance(body, dict) or not body.get("access_token"):
            raise DeliveryFailure(Symptom.OFF_CONTRACT, "token answer without access_token", "retried automatically")
        self._token = body["access_token"]
        self._token_expires = now + timedelta(seconds=float(body.get("expires_in", 300)))
        return self._token

    def _json(self, response: requests.Response, what: str, items_sent: bool = False) -> object:
        if "html" in response.headers.get("Content-Type", "").lower():
            raise DeliveryFailure(
                Symptom.PROXY_PAGE,
                f"{what}: an HTML page answered ({response.status_code}), "
                "not the service's JSON: a proxy, a captive portal or a maintenance page",
                "check the site's internet access (proxy, hotspot login); if other sites load, the service is down",
            )
        if response.status_code >= 500 or response.status_code == 429:
            raise self.unavailable(what, response)
        try:
            return response.json()
        except ValueError:
            raise DeliveryFailure(
                Symptom.OFF_CONTRACT,
                f"{what}: the answer is not JSON ({response.text[:80]!r})",
                "retried automatically",
                answer_lost=items_sent and response.ok,
            ) from None

    def unavailable(self, what: str, response: requests.Response) -> DeliveryFailure:
        """A 5xx or 429 of either channel: the service's side, retried, after its Retry-After when it gives one."""
        return DeliveryFailure(
            Symptom.SERVICE_ERROR,
            f"{what}: service unavailable ({response.status_code})",
            "nothing to do: retried automatically",
            retry_after_seconds(response.headers.get("Retry-After"), self.now()),
        )

    def _observe_date(self, response: requests.Response, sent: datetime, received: datetime) -> None:
        try:
            server = email.utils.parsedate_to_datetime(response.headers["Date"])
        except (KeyError, TypeError, ValueError):
            return
        # Date has whole seconds, truncated: the server's time was, on average, half a second later.
        midpoint = sent + (received - sent) / 2
        self.server_offset_s = round((server - midpoint).total_seconds() + 0.5, 3)

    def deliver(self, batch: list, config: Config, db: object = None) -> BulkAnswer:
        """The channel interface the forwarder uses (queue/delivery.py's Pending registrations): each sent as the
        bulk call's item. `db` is the SOAP channel's (one presence a day); REST sends every registration."""
        return self.send_bulk([contract.item(json.loads(p.payload), p.send_utc, config.site) for p in batch])

    def send_bulk(self, items: list[dict]) -> BulkAnswer:
        """POST the items; fetch a token first, and once more on a 401."""
        url = self.config.base_url + contract.BULK_PATH
        for refresh in (False, True):
            token = self.token(refresh=refresh)
            sent = self.now()
            try:
                response = self.session.post(
                    url,
                    json=contract.bulk_request(items),
                    timeout=self.timeout,
                    verify=self.verify,
                    headers={"Authorization": f"Bearer {token}"},
                )
            except requests.RequestException as error:
                failure = classify_exception(error, "bulk call")
                failure.answer_lost = answer_lost(error)
                raise failure from None
            self._observe_date(response, sent, self.now())
            if response.status_code != 401:
                break
        else:
            raise DeliveryFailure(
                Symptom.CREDENTIALS,
                "the service refuses our token (401 after a refresh)",
                "check the client's rights for presenceRegistration with ONSS",
            )
        if response.status_code in (400, 404, 409, 413, 415, 422):
            raise BatchRejected(
                f"the service refused the call ({response.status_code}): {response.text[:300]}",
                "the item is kept; see `sitegate queue` and the contract module",
            )
        if response.status_code == 403:
            raise DeliveryFailure(
                Symptom.CREDENTIALS, "the service forbids this client (403)", "check the access rights with ONSS"
            )
        body = self._json(response, "bulk call", items_sent=True)
        try:
            results = contract.parse_bulk_response(body, len(items))
        except contract.ContractError as error:
            raise DeliveryFailure(
                Symptom.OFF_CONTRACT,
                f"bulk call: the answer does not follow the contract ({error})",
                f"retried automatically; if it persists, check {contract.CONTRACT}",
                answer_lost=response.ok,
            ) from None
        return BulkAnswer(results, self.server_offset_s)
