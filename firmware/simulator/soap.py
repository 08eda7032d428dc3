"""The simulator's SOAP PresenceRegistration v1 endpoint: `registerPresences` as the published WSDL/XSD describe it.

Like the REST endpoint, a tool beside the flow. It takes every name from `sitegate.service.presence_soap_v1`, checks
each envelope's WS-Security signature against the certificate it was told to trust and its body against the
published XSD, registers one presence per worker, company, workplace and day, recognises a resend by its
ClientPresenceRegistrationReference (the same presence answered again, never a second one), and misbehaves with the
same switchable faults as the REST endpoint (`SimulatedService.set_fault`).

Assumed, because nothing public says: what the service answers to a resend with a known client reference (here: the
registration it already holds), and which remark a second presence of the same day draws (here: "SAME DECLARATION
HAS ALREADY BEEN REGISTERED", the list's remark 14).
"""

from __future__ import annotations

import copy
import threading
from datetime import datetime, timedelta
from pathlib import Path

from lxml import etree
from zeep import ns
from zeep.exceptions import SignatureVerificationFailed
from zeep.wsse.signature import MemorySignature

from sitegate.clock import Clock
from sitegate.clock.timefmt import local
from sitegate.service import presence_soap_v1 as contract

ROUTE = contract.PATH
FIRST_ID = 900_000_000_000_000  # PresenceRegistrationId: an xs:long of at most 15 digits
GARBLED = b"<soapenv:Envelope xmlns:soapenv='http://schemas.xmlsoap.org/soap/envelope/'><soapenv:Bo"
_T = f"{{{contract.TYPES}}}"
_P = f"{{{contract.PROTOCOL}}}"


class Refused(Exception):
    """The call is refused as a whole, with a SOAP fault: (faultcode, text)."""

    def __init__(self, code: str, text: str) -> None:
        self.code, self.text = code, text
        super().__init__(f"{code}: {text}")


def fault(code: str, text: str) -> bytes:
    root = contract.envelope(etree.Element(f"{{{contract.SOAP_ENV}}}Fault"))
    element = contract.body_of(root)
    etree.SubElement(element, "faultcode").text = code
    etree.SubElement(element, "faultstring").text = text
    return etree.tostring(root, xml_declaration=True, encoding="utf-8")


def _fields(item: etree._Element) -> dict[str, str | None]:
    """The submitted fields by their local names (one pass over the item)."""
    return {child.tag.rpartition("}")[2]: child.text for child in item}


class SoapPresences:
    """The SOAP service's state: its presences, by client reference and by worker, company, workplace and day."""

    def __init__(self, clock: Clock, persons: set[str] | None = None) -> None:
        self.now = clock.now
        self.persons = persons
        self.lock = threading.Lock()
        self.trusted: bytes | None = None  # the PEM certificate whose signatures are accepted
        self.by_reference: dict[str, etree._Element] = {}
        self.by_presence: dict[tuple, str] = {}
        self.received: list[dict] = []
        self.created: list[dict] = []
        self.calls = 0
        self.resent = 0
        self.refused_signatures = 0

    def trust(self, certificate: Path) -> None:
        self.trusted = Path(certificate).read_bytes()

    def check_signature(self, root: etree._Element) -> None:
        """The WSDL's X.509 policy: a valid signature by the trusted certificate over the Body and an unexpired
        wsu:Timestamp (zeep's verification checks the signature, not what it covers: checked here)."""
        if self.trusted is None:
            raise Refused("wsse:FailedAuthentication", "the simulator trusts no certificate (trust() one)")
        security = root.find(f"{{{contract.SOAP_ENV}}}Header/{{{ns.WSSE}}}Security")
        stamp = security.find(f"{{{ns.WSU}}}Timestamp") if security is not None else None
        body = root.find(f"{{{contract.SOAP_ENV}}}Body")
        if stamp is None or security.find(f"{{{ns.DS}}}Signature") is None:
            raise Refused("wsse:InvalidSecurity", "no wsse:Security header with a signature and a timestamp")
        try:
            MemorySignature(None, self.trusted).verify(root)
        except (SignatureVerificationFailed, IndexError, TypeError):
            raise Refused("wsse:FailedCheck", "the signature does not verify with the registered certificate") from None
        signed = {uri.lstrip("#") for uri in security.xpath(".//ds:Reference/@URI", namespaces={"ds": ns.DS})}
        wsu_id = f"{{{ns.WSU}}}Id"
        if body.get(wsu_id) not in signed or stamp.get(wsu_id) not in signed:
            raise Refused("wsse:FailedCheck", "the Body and the Timestamp must both be signed")
        expires = datetime.fromisoformat(stamp.findtext(f"{{{ns.WSU}}}Expires", "").replace("Z", "+00:00"))
        if expires <= self.now():
            raise Refused("wsu:MessageExpired", "the message's timestamp has expired")

    @staticmethod
    def _valid_body(root: etree._Element, operation: str) -> etree._Element:
        """The call's body element, after it passed the published XSD as the operation's request."""
        body = contract.body_of(root)
        schema = contract.schema()
        if body.tag != f"{_P}{operation}" or not schema.validate(body):
            errors = "; ".join(str(e.message) for e in schema.error_log)[:300] or f"unexpected {body.tag}"
            raise Refused("soapenv:Client", f"the request does not satisfy the XSD: {errors}")
        return body

    def request_items(self, root: etree._Element) -> list[etree._Element]:
        """The call's PresenceRegistrationRequest items."""
        return list(self._valid_body(root, "RegisterPresencesRequest"))

    def get(self, root: etree._Element) -> etree._Element:
        """The GetPresenceRegistrationResponse: the request repeated, and the presence of that id when there is one
        (the published type allows none: what the service answers for an unknown id is not public)."""
        criteria = self._valid_body(root, "GetPresenceRegistrationRequest")[0]
        presence_id = criteria.findtext(f"{_T}PresenceRegistrationId")
        response = etree.Element(f"{_P}GetPresenceRegistrationResponse", nsmap={"pr": contract.PROTOCOL})
        answer = etree.SubElement(response, f"{_P}GetPresenceRegistrationResponseType")
        asked = etree.SubElement(answer, f"{_T}GetPresenceRegistrationRequest", nsmap={"t": contract.TYPES})
        etree.SubElement(asked, f"{_T}PresenceRegistrationId").text = presence_id
        found = etree.SubElement(answer, f"{_T}GetPresenceRegistrationType")
        with self.lock:
            held = next(
                (p for p in self.by_reference.values() if p.findtext(f"{_T}PresenceRegistrationId") == presence_id),
                None,
            )
            if held is not None:
                presence = copy.deepcopy(held)
                presence.tag = f"{_T}PresenceRegistrationType"
                found.append(presence)
        return response

    def register(self, items: list[etree._Element], partial: bool = False) -> etree._Element:
        """The RegisterPresencesResponse: each item registered (remarks never refuse) or refused with its errors."""
        response = etree.Element(f"{_P}RegisterPresencesResponse", nsmap={"pr": contract.PROTOCOL})
        with self.lock:
            self.calls += 1
            today, created_at = local(self.now()).date(), self.now().isoformat()
            for index, item in enumerate(items):
                fields = _fields(item)
                reference = fields.get("ClientPresenceRegistrationReference")
                self.received.append({"reference": reference, "date": fields.get("RegistrationDate")})
                answer = etree.SubElement(response, f"{_P}PresenceRegistrationResponse")
                if reference and reference in self.by_reference:
                    self.resent += 1  # our own resend after a lost answer: the presence it already holds
                    answer.append(etree.fromstring(etree.tostring(self.by_reference[reference])))
                    continue
                errors = self._errors(fields, today)
                if not errors and partial and index % 2 == 1:
                    errors = [("SIM-PARTIAL", "simulated: not registered (partial success)")]
                answer.append(self._refused(item, errors) if errors else self._registered(item, fields, created_at))
        return response

    @staticmethod
    def _errors(fields: dict, today) -> list[tuple[str, str]]:
        day = datetime.fromisoformat(fields.get("RegistrationDate") or today.isoformat()).date()
        if day not in (today, today + timedelta(days=1)):
            return [("PR-DATE", f"RegistrationDate {day} is neither today nor tomorrow")]
        return []

    def _registered(self, item: etree._Element, fields: dict, created_at: str) -> etree._Element:
        reference = fields.get("ClientPresenceRegistrationReference")
        key = tuple(fields.get(name) for name in ("INSS", "CompanyID", "LimosaId", "WorkPlaceId", "RegistrationDate"))
        remarks = []
        if key in self.by_presence:
            remarks.append(contract.REMARKS[14 - 1])
        inss = fields.get("INSS")
        if self.persons is not None and inss and inss not in self.persons:
            remarks.append(contract.REMARKS[15 - 1])
        presence_id = str(FIRST_ID + len(self.created) + 1)
        self.by_presence.setdefault(key, presence_id)
        element = etree.Element(f"{_T}PresenceRegistration", nsmap={"t": contract.TYPES})
        element.append(_submitted(item))
        etree.SubElement(element, f"{_T}PresenceRegistrationId").text = presence_id
        etree.SubElement(element, f"{_T}CreationDate").text = created_at
        etree.SubElement(element, f"{_T}Channel").text = "WEBSERVICE"
        validation = etree.SubElement(element, f"{_T}LastValidation")
        etree.SubElement(validation, f"{_T}Status").text = "FAILED" if remarks else "VALIDATED"
        if remarks:
            listed = etree.SubElement(validation, f"{_T}RemarkList")
            for remark in remarks:
                etree.SubElement(listed, f"{_T}Remark").text = remark
        self.created.append({"reference": reference, "id": presence_id, "key": key, "remarks": remarks})
        if reference:
            self.by_reference[reference] = element
        return element

    @staticmethod
    def _refused(item: etree._Element, errors: list[tuple[str, str]]) -> etree._Element:
        element = etree.Element(f"{_T}PresenceRegistrationError", nsmap={"t": contract.TYPES})
        element.append(_submitted(item))
        listed = etree.SubElement(element, f"{_T}ErrorList")
        for code, description in errors:
            error = etree.SubElement(listed, f"{_T}Error")
            etree.SubElement(error, f"{_T}ErrorCode").text = code
            etree.SubElement(error, f"{_T}ErrorDescription").text = description
        return element

    def summary(self) -> dict:
        with self.lock:
            return {
                "calls": self.calls,
                "received": len(self.received),
                "created": len(self.created),
                "resent": self.resent,
                "refused_signatures": self.refused_signatures,
            }


def _submitted(item: etree._Element) -> etree._Element:
    """The submitted fields, as the answer's PresenceRegistrationSubmitted repeats them."""
    submitted = copy.deepcopy(item)
    submitted.tag = f"{_T}PresenceRegistrationSubmitted"
    return submitted
