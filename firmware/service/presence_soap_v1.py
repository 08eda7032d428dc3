"""The SOAP PresenceRegistration v1 contract, in one place: our records to `registerPresences` requests and back.

The construction and meat sectors' channel: one presence per worker per day (a date, no time of day, no direction),
on the site's works declaration. Every name the service sees or sends is in this module, taken from the published
WSDL and XSDs (version 1.9) shipped beside it in `wsdl/` (their source: `firmware/service/wsdl/SOURCE.md`);
tests/test_soap_contract.py checks these names against the WSDL and validates every request body against the XSD.

The requests are built and the answers read with lxml element trees, never with text templates.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable
from dataclasses import dataclass
from functools import cache
from importlib import resources

from lxml import etree

from sitegate.clock.timefmt import local
from sitegate.config import SOAP_PATH
from sitegate.service.presence_rest_v1 import ContractError, ItemResult

CONTRACT = "PresenceRegistration v1 (SOAP, WSDL/XSD 1.9 as published)"
SOAP_ENV = "http://schemas.xmlsoap.org/soap/envelope/"
PROTOCOL = "http://socialsecurity.be/presenceregistration/v1"  # the operations' elements
TYPES = "http://socialsecurity.be/presenceregistration/schemas/v1"  # the registration's fields
ERRORS = "http://socialsecurity.be/errors/v1"  # the faults' detail (SystemError, BusinessError)
OPERATION = "registerPresences"
SOAP_ACTION = f"{PROTOCOL}/{OPERATION}"
GET_ACTION = f"{PROTOCOL}/getPresenceRegistration"  # read only: the online check asks it
PROBE_ID = "1"  # the PresenceRegistrationId the online check asks for: the answer matters, not the presence
# The WSDL's address is the simulation host's; the production host's path is assumed to be the same.
PATH = SOAP_PATH
CONTENT_TYPE = "text/xml; charset=utf-8"  # SOAP 1.1
MAX_BULK = 200  # RegisterPresencesRequest: PresenceRegistrationRequest maxOccurs="200"
MAX_REFERENCE = 24  # ClientReferenceType maxLength
MAX_WORKPLACE = 13  # WorkPlaceIdType maxLength
MAX_REMARKS = 10  # RemarkListType maxOccurs
STATUSES = ("SUCCESSFULLY REGISTERED", "SUCCESSFULLY CANCELLED", "VALIDATED", "FAILED")  # StatusType
# SearchRemarkType's enumeration, in its published order. Its position is the remark's number in the official list
# (ciaw/remarks.csv): the meanings agree for 4, 6 to 12 and 14 to 17, and 13 (a site not subject to registration) is
# the one number that list lacks. Assumed for 1, 2, 3 and 5, whose wording differs.
REMARKS = (
    "RELATED DIMONA NOT OK",
    "GIVEN INSS IS NOT THE FOUNDER OF THE COMPANY",
    "EMPLOYER IS NOT KNOWN AS COMPANY FOUNDER",
    "THE COMPANY DOESN'T EXISTS",
    "INDEPENDANT IS NOT KNOWN AS COMPANY FOUNDER",
    "LIMOSA ID IS NOT KNOWN",
    "LIMOSA ID IS NOT ACTIVE AT DATE",
    "NISS-BIS IS NOT KNOWN IN LIMOSA",
    "NISS-BIS IS NOT ACTIVE AT THIS DATE IN LIMOSA",
    "DUC IS NOT EXISTING",
    "DUC IS NOT ACTIVE AT THIS DATE",
    "COMPANY IS NOT KNOWN  AS BUILDER OR  SUBCONTRACTOR IN THIS DUC",
    "SITE IS NOT SUBJECT TO PRESENCE REGISTRATION",
    "SAME DECLARATION HAS ALREADY BEEN REGISTERED",
    "NISS IS NOT KNOW IN THE NATIONAL REGISTER",
    "EMPLOYER NOT ACTIVE",
    "THE COMPANY ID ASSOCIATED AT A NOT ACTIVE CONTRACT",
)
REMARK_CODES = {" ".join(text.split()): code for code, text in enumerate(REMARKS, start=1)}
UNLISTED_REMARK = 0  # a remark text outside the published list: shown as "not in the official list", never dropped


def _p(name: str) -> str:
    return f"{{{PROTOCOL}}}{name}"


def _t(name: str) -> str:
    return f"{{{TYPES}}}{name}"


@cache
def schema() -> etree.XMLSchema:
    """The published protocol XSD (it imports the types XSD beside it): what every request body must satisfy."""
    path = resources.files("sitegate.service").joinpath("wsdl/v1/PresenceRegistration_protocol_v1.xsd")
    with resources.as_file(path) as file:
        return etree.XMLSchema(etree.parse(str(file)))


def client_reference(device_id: str, seq: int) -> str:
    """ClientPresenceRegistrationReference: this gate's registration, the same on every resend, so the service (and
    the simulator) can tell a resend after a lost answer from a second presence. "<device>:<seq>" when it fits in
    24 characters, else the device id shortened to a 10-character digest (the same device, the same digest)."""
    reference = f"{device_id}:{seq}"
    if len(reference) <= MAX_REFERENCE:
        return reference
    digest = hashlib.blake2s(device_id.encode(), digest_size=5).hexdigest()
    return f"{digest}:{seq}"


def registration_date(wall_utc: str) -> str:
    """RegistrationDate (xs:date): the registration's day in Brussels time."""
    return local(wall_utc).date().isoformat()


def company_id(enterprise_number: str) -> str:
    """CompanyID is an xs:long: the KBO/BCE number's digits, without the leading 0."""
    digits = "".join(c for c in enterprise_number if c.isdigit())
    return str(int(digits))


def presence_key(payload: dict, wall_utc: str) -> tuple[str, str, str, str]:
    """What makes one presence: the worker, the employer and the Brussels day (the works declaration is the site's)."""
    worker = payload["worker"]
    return worker["kind"], worker["number"], payload["employer"], registration_date(wall_utc)


@dataclass(frozen=True)
class Presence:
    """One registration to send as a presence: its seq (for the reference), payload and (possibly re-dated) time."""

    seq: int
    payload: dict
    wall_utc: str


def request_item(presence: Presence, device_id: str, works_declaration: str) -> etree._Element:
    """One PresenceRegistrationRequest (PresenceRegistrationSubmitType), fields in the XSD's order."""
    payload, worker = presence.payload, presence.payload["worker"]
    workplace = payload.get("works_declaration") or works_declaration
    if not workplace or len(workplace) > MAX_WORKPLACE:
        raise ContractError(f"WorkPlaceId {workplace!r} must be the works declaration, 1 to {MAX_WORKPLACE} characters")
    item = etree.Element(_p("PresenceRegistrationRequest"))
    etree.SubElement(item, _t("RegistrationDate")).text = registration_date(presence.wall_utc)
    if worker["kind"] == "ssin":
        etree.SubElement(item, _t("INSS")).text = worker["number"]
        etree.SubElement(item, _t("CompanyID")).text = company_id(payload["employer"])
    else:
        etree.SubElement(item, _t("LimosaId")).text = worker["number"]
    etree.SubElement(item, _t("WorkPlaceId")).text = workplace
    etree.SubElement(item, _t("ClientPresenceRegistrationReference")).text = client_reference(device_id, presence.seq)
    return item


def register_request(items: Iterable[etree._Element]) -> etree._Element:
    """The RegisterPresencesRequest body element (at most MAX_BULK items)."""
    request = etree.Element(_p("RegisterPresencesRequest"), nsmap={"pr": PROTOCOL, "t": TYPES})
    request.extend(items)
    if not 1 <= len(request) <= MAX_BULK:
        raise ContractError(f"{len(request)} registrations in one call; 1 to {MAX_BULK} allowed")
    return request


def envelope(body: etree._Element) -> etree._Element:
    """A SOAP 1.1 envelope with an empty header (the WS-Security header goes there) around the body element."""
    root = etree.Element(f"{{{SOAP_ENV}}}Envelope", nsmap={"soapenv": SOAP_ENV})
    etree.SubElement(root, f"{{{SOAP_ENV}}}Header")
    etree.SubElement(root, f"{{{SOAP_ENV}}}Body").append(body)
    return root


def body_of(root: etree._Element) -> etree._Element:
    """The one element in the envelope's Body; ContractError when there is none."""
    body = root.find(f"{{{SOAP_ENV}}}Body")
    if root.tag != f"{{{SOAP_ENV}}}Envelope" or body is None or len(body) != 1:
        raise ContractError("the answer is not a SOAP 1.1 envelope with one element in its Body")
    return body[0]


@dataclass(frozen=True)
class Fault:
    """A SOAP fault, with the service's SystemError/BusinessError detail when it has one."""

    code: str  # faultcode, e.g. soapenv:Server
    message: str
    kind: str | None = None  # "SystemError" or "BusinessError"
    detail_code: str | None = None
    retry: bool | None = None

    @property
    def ours(self) -> bool:
        """A client fault or a business error: the request, not the service, is at fault."""
        return self.kind == "BusinessError" or self.code.rpartition(":")[2] == "Client"


def fault_of(root: etree._Element) -> Fault | None:
    """The envelope's fault, or None when it carries an answer."""
    element = body_of(root)
    if element.tag != f"{{{SOAP_ENV}}}Fault":
        return None
    detail = element.find("detail")
    error = detail[0] if detail is not None and len(detail) else None
    kind = etree.QName(error).localname if error is not None and etree.QName(error).namespace == ERRORS else None
    message = " ".join(
        [element.findtext("faultstring", "").strip()]
        + ([m.text.strip() for m in error.iterfind(f"{{{ERRORS}}}Message") if m.text] if kind else [])
    ).strip()
    retry = error.findtext(f"{{{ERRORS}}}Retry") if kind else None
    return Fault(
        element.findtext("faultcode", "").strip(),
        message,
        kind,
        error.findtext(f"{{{ERRORS}}}Code") if kind else None,
        None if retry is None else retry.strip() == "true",
    )


def remark_code(text: str) -> int:
    return REMARK_CODES.get(" ".join(text.split()).upper(), UNLISTED_REMARK)


def _registered(element: etree._Element) -> ItemResult:
    presence_id = element.findtext(_t("PresenceRegistrationId"))
    validation = element.find(_t("LastValidation"))
    status = validation.findtext(_t("Status")) if validation is not None else None
    if not presence_id or status not in STATUSES:
        raise ContractError(f"a PresenceRegistration without its id or a known status ({presence_id!r}, {status!r})")
    remarks = validation.findall(f"{_t('RemarkList')}/{_t('Remark')}")
    return ItemResult(
        True,
        service_id=presence_id.strip(),
        validity=status,
        remarks=tuple(sorted({remark_code(r.text or "") for r in remarks})),
    )


def _refused(element: etree._Element) -> ItemResult:
    errors = element.findall(f"{_t('ErrorList')}/{_t('Error')}")
    if not errors:
        raise ContractError("a PresenceRegistrationError without errors")
    reason = "; ".join(f"{e.findtext(_t('ErrorCode'), '').strip()}: {e.findtext(_t('ErrorDescription'), '').strip()}"
                       for e in errors)  # fmt: skip
    return ItemResult(False, reason=reason)


def parse_register_response(root: etree._Element, expected: int) -> list[ItemResult]:
    """The answer's items in request order (remarks never refuse an item, errors do); ContractError otherwise."""
    answer = body_of(root)
    if answer.tag != _p("RegisterPresencesResponse"):
        raise ContractError(f"the answer is {answer.tag}, not RegisterPresencesResponse")
    items = answer.findall(_p("PresenceRegistrationResponse"))
    if len(items) != expected:
        raise ContractError(f"the answer has {len(items)} items for {expected} sent")
    results = []
    for item in items:
        registered, refused = item.find(_t("PresenceRegistration")), item.find(_t("PresenceRegistrationError"))
        if registered is not None:
            results.append(_registered(registered))
        elif refused is not None:
            results.append(_refused(refused))
        else:
            raise ContractError("an item is neither PresenceRegistration nor PresenceRegistrationError")
    return results


def get_request(presence_id: str) -> etree._Element:
    """The GetPresenceRegistrationRequest body element: one presence asked for by its id."""
    request = etree.Element(_p("GetPresenceRegistrationRequest"), nsmap={"pr": PROTOCOL, "t": TYPES})
    criteria = etree.SubElement(request, _p("GetPresenceRegistrationRequest"))
    etree.SubElement(criteria, _t("PresenceRegistrationId")).text = presence_id
    return request


def parse_get_response(root: etree._Element) -> str | None:
    """The asked presence's last status, or None when the service holds none of that id; ContractError otherwise."""
    answer = body_of(root)
    if answer.tag != _p("GetPresenceRegistrationResponse"):
        raise ContractError(f"the answer is {answer.tag}, not GetPresenceRegistrationResponse")
    found = answer.find(f"{_p('GetPresenceRegistrationResponseType')}/{_t('GetPresenceRegistrationType')}")
    if found is None:
        raise ContractError("a GetPresenceRegistrationResponse without its GetPresenceRegistrationType")
    presence = found.find(_t("PresenceRegistrationType"))
    return None if presence is None else presence.findtext(f"{_t('LastValidation')}/{_t('Status')}")
