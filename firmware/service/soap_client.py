"""The SOAP channel's client: one presence per worker per day, signed, with the symptom of every way it can fail.

Behind the same interface as the REST client (`deliver(batch, config, db)`), so the forwarder, the ledger and the
outage journal do not know which channel carried a registration. What differs is the contract
(presence_soap_v1.py) and what counts as one registration at the service: a presence per worker, employer and
Brussels day. The day's first registration is sent; the later ones stay in the signed log and on the paper listing
and are settled as covered by it, never sent.
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass
from datetime import datetime, time, timedelta

import requests
import sqlite_utils
from lxml import etree

from sitegate.clock import Clock
from sitegate.clock.timefmt import BRUSSELS, format_utc
from sitegate.config import Config, ServiceConfig
from sitegate.jsonlog import event
from sitegate.queue.delivery import Pending
from sitegate.queue.failures import Symptom
from sitegate.queue.log import LogView
from sitegate.queue.records import Kind
from sitegate.service import presence_soap_v1 as contract
from sitegate.service.client import (
    BatchRejected,
    BulkAnswer,
    DeliveryFailure,
    ServiceClient,
    answer_lost,
    classify_exception,
)
from sitegate.service.credentials import CredentialError
from sitegate.service.presence_rest_v1 import ItemResult
from sitegate.service.wssecurity import TokenStep, X509Signature

logger = logging.getLogger("sitegate.service")
COVERED = "NOT SENT: the day's presence is registration {seq}"  # the validity a covered registration is settled with


@dataclass(frozen=True)
class Covered:
    """A registration the day's presence already stands for: settled, never sent."""

    seq: int
    first_seq: int


def _day_bounds(day: str) -> tuple[str, str]:
    """A Brussels day as the UTC range of the stored wall times."""
    start = datetime.combine(datetime.fromisoformat(day).date(), time(), BRUSSELS)
    return format_utc(start), format_utc(start + timedelta(days=1))


class FirstOfDay:
    """Which registration is each worker's first of the day (by worker, employer and Brussels day), read from the
    log once per day and then only forward, so a drain costs one pass over the log, not one per batch."""

    def __init__(self) -> None:
        self.first: dict[str, dict[tuple, int]] = {}  # day -> presence key -> first seq
        self.read_before: dict[str, int] = {}  # day -> every registration before this seq is in `first`

    def _read(self, view: LogView, day: str, before: int) -> dict[tuple, int]:
        first = self.first.setdefault(day, {})
        start, end = _day_bounds(day)
        done = self.read_before.get(day)
        records = view.between(Kind.REGISTRATION, start, end) if done is None else view.records(done, Kind.REGISTRATION)
        for record in records:
            if record.seq >= before:
                break
            if start <= record.wall_utc < end:
                first.setdefault(contract.presence_key(record.data, record.wall_utc), record.seq)
        self.read_before[day] = max(before, done or 0)
        return first

    def choose(self, db: sqlite_utils.Database, batch: list[Pending]) -> list[contract.Presence | Covered]:
        """Each registration as a presence to send, or as covered by an earlier one of the same worker, employer
        and Brussels day (in the log before the batch, or earlier in it)."""
        presences = [contract.Presence(p.seq, json.loads(p.payload), p.send_utc) for p in batch]
        days = {contract.registration_date(p.wall_utc) for p in presences}
        for old in set(self.first) - days:  # the days behind us: forget them
            del self.first[old], self.read_before[old]
        view = LogView(db)
        firsts = {day: self._read(view, day, batch[0].seq) for day in sorted(days)}
        chosen: list[contract.Presence | Covered] = []
        for presence in presences:
            key = contract.presence_key(presence.payload, presence.wall_utc)
            earlier = firsts[key[-1]].setdefault(key, presence.seq)
            chosen.append(presence if earlier == presence.seq else Covered(presence.seq, earlier))
        return chosen


class SoapClient(ServiceClient):
    """The PresenceRegistration v1 client. It shares the REST client's session, trust settings, timeouts and the
    reading of the server's Date; its token is the WS-Security step (wssecurity.py), not an OAuth token."""

    def __init__(
        self,
        config: ServiceConfig,
        device_id: str,
        session: requests.Session | None = None,
        *,
        clock: Clock,
        token_step: TokenStep | None = None,
    ) -> None:
        super().__init__(config, session, clock=clock)
        self.device_id = device_id
        self._token_step = token_step
        self.first_of_day = FirstOfDay()

    def token_step(self) -> TokenStep:
        if self._token_step is None:
            try:
                self._token_step = X509Signature(self.config.key_file, self.config.cert_file)
            except CredentialError as error:
                raise DeliveryFailure(Symptom.CREDENTIALS, error.problem, error.fix) from None
        return self._token_step

    def deliver(self, batch: list[Pending], config: Config, db: sqlite_utils.Database) -> BulkAnswer:
        """The day's first registrations sent as presences; the others settled as covered by them."""
        chosen = self.first_of_day.choose(db, batch)
        to_send = [c for c in chosen if isinstance(c, contract.Presence)]
        sent = self.register(to_send, config.site.works_declaration or "") if to_send else BulkAnswer([], None)
        answers = iter(sent.results)
        results = [
            next(answers)
            if isinstance(c, contract.Presence)
            else ItemResult(True, validity=COVERED.format(seq=c.first_seq))
            for c in chosen
        ]
        return BulkAnswer(results, sent.server_offset_s)

    def register(self, presences: list[contract.Presence], works_declaration: str) -> BulkAnswer:
        """One signed registerPresences call; the results in request order."""
        self._check_trust()
        try:
            request = contract.register_request(
                contract.request_item(p, self.device_id, works_declaration) for p in presences
            )
        except contract.ContractError as error:
            raise BatchRejected(
                f"a registration cannot be sent as a presence: {error}", "see `sitegate queue`"
            ) from None
        root, response = self._call(request, contract.SOAP_ACTION)
        results = self._results(root, response, len(presences))
        return BulkAnswer(results, self.server_offset_s)

    def check_online(self) -> str:
        """`config check --online` and `doctor` for this channel: one signed getPresenceRegistration, read only.
        Any answer but a security fault proves the certificate, the signature and the clock are accepted (an id
        the service does not know may draw a business fault: that is past the security check too)."""
        self._check_trust()
        root, response = self._call(contract.get_request(contract.PROBE_ID), contract.GET_ACTION)
        fault = self._fault(root)
        if fault is not None:
            self._raise_security(fault)
            if not fault.ours:
                self._raise_fault(fault)
            return f"signed call accepted by {self.config.soap_url} (it answered {fault.code})"
        if response.status_code >= 500 or response.status_code == 429:
            raise self.unavailable("SOAP call", response)
        try:
            if root is None or not response.ok:
                raise contract.ContractError("not a SOAP envelope")
            contract.parse_get_response(root)
        except contract.ContractError:
            raise DeliveryFailure(
                Symptom.OFF_CONTRACT,
                f"SOAP call: the answer ({response.status_code}) is not a getPresenceRegistration answer",
                f"check service.soap_url: it must be the PresenceRegistration service ({contract.CONTRACT})",
            ) from None
        return f"signed call accepted by {self.config.soap_url}"

    def _call(self, body: etree._Element, action: str) -> tuple[etree._Element | None, requests.Response]:
        """One signed call: the envelope secured by the token step, posted with its SOAPAction; the answer's
        envelope (None when the body is not XML) and the response. The server's Date is read on the way."""
        envelope = contract.envelope(body)
        step = self.token_step()
        sent = self.now()
        try:
            step.secure(envelope, sent)
        except CredentialError as error:
            raise DeliveryFailure(Symptom.CREDENTIALS, error.problem, error.fix) from None
        try:
            response = self.session.post(
                self.config.soap_url,
                data=etree.tostring(envelope, xml_declaration=True, encoding="utf-8"),
                headers={"Content-Type": contract.CONTENT_TYPE, "SOAPAction": f'"{action}"'},
                timeout=self.timeout,
                verify=self.verify,
            )
        except requests.RequestException as error:
            failure = classify_exception(error, "SOAP call")
            failure.answer_lost = answer_lost(error)
            raise failure from None
        self._observe_date(response, sent, self.now())
        return self._envelope(response), response

    def _envelope(self, response: requests.Response) -> etree._Element | None:
        """The answer's envelope; None when the body is not XML (the status then says what happened)."""
        content_type = response.headers.get("Content-Type", "").lower()
        if "html" in content_type:
            raise DeliveryFailure(
                Symptom.PROXY_PAGE,
                f"SOAP call: an HTML page answered ({response.status_code}), not the service: a proxy, a captive "
                "portal or a maintenance page",
                "check the site's internet access (proxy, hotspot login); if other sites load, the service is down",
            )
        try:
            return etree.fromstring(response.content)
        except etree.XMLSyntaxError:
            return None

    @staticmethod
    def _fault(root: etree._Element | None) -> contract.Fault | None:
        """The answer's SOAP fault, if it is one (an answer that is no envelope is judged by its status)."""
        try:
            return contract.fault_of(root) if root is not None else None
        except contract.ContractError:
            return None

    def _results(self, root: etree._Element | None, response: requests.Response, expected: int) -> list[ItemResult]:
        fault = self._fault(root)
        if fault is not None:
            self._raise_fault(fault)
        if response.status_code >= 500 or response.status_code == 429:
            raise self.unavailable("SOAP call", response)
        if root is None or not response.ok:
            raise DeliveryFailure(
                Symptom.OFF_CONTRACT,
                f"SOAP call: the answer ({response.status_code}) is not a SOAP envelope ({response.content[:80]!r})",
                "retried automatically",
                answer_lost=response.ok,
            )
        try:
            results = contract.parse_register_response(root, expected)
        except contract.ContractError as error:
            raise DeliveryFailure(
                Symptom.OFF_CONTRACT,
                f"SOAP call: the answer does not follow the contract ({error})",
                f"retried automatically; if it persists, check {contract.CONTRACT}",
                answer_lost=True,
            ) from None
        unlisted = [r for r in results if contract.UNLISTED_REMARK in r.remarks]
        if unlisted:
            event(logger, "soap_unlisted_remark", logging.WARNING, count=len(unlisted))
        return results

    @staticmethod
    def _raise_security(fault: contract.Fault) -> None:
        """A security fault: our certificate, signature or clock refused."""
        prefix, _, name = fault.code.rpartition(":")
        if prefix in ("wsse", "wsu") or name in ("FailedAuthentication", "InvalidSecurity", "FailedCheck"):
            raise DeliveryFailure(
                Symptom.CREDENTIALS,
                f"the service refuses our signature ({fault.code}: {fault.message[:200]})",
                "check service.key_file and service.cert_file: the certificate registered with ONSS, and the clock",
            )

    @classmethod
    def _raise_fault(cls, fault: contract.Fault) -> None:
        """A fault is the service's answer that the call was not taken: refused security, our request, or its own
        error (all three prove nothing was registered)."""
        cls._raise_security(fault)
        if fault.ours:
            raise BatchRejected(
                f"the service refused the call ({fault.code}: {fault.message[:300]})",
                f"the item is kept; see `sitegate queue` and {contract.CONTRACT}",
            )
        raise DeliveryFailure(
            Symptom.SERVICE_ERROR,
            f"SOAP call: the service failed ({fault.code}: {fault.message[:200]})",
            "nothing to do: retried automatically",
        )
