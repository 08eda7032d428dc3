"""The SOAP PresenceRegistration v1 contract (firmware/service/presence_soap_v1.py) against the published WSDL/XSD.

Every request body we build is validated against the protocol XSD shipped in the package; the names the module
uses are read back from the WSDL and the XSDs, so a name typed wrong fails here, not at the service.
"""

from __future__ import annotations

import dataclasses
import tomllib
from importlib import resources

import pytest
from conftest import CONFIG_TEXT, VALID_NISS, registration
from lxml import etree

from sitegate import config as configuration
from sitegate.domain.identifiers import WorkerId
from sitegate.errors import ConfigError
from sitegate.service import presence_soap_v1 as soap
from sitegate.service.presence_rest_v1 import ContractError, ItemResult

XS = "http://www.w3.org/2001/XMLSchema"
WSDL = "http://schemas.xmlsoap.org/wsdl/"
WALL_UTC = "2026-11-22T06:20:19.123456Z"
LIMOSA = WorkerId("limosa", "12345678901234567")


def published(name: str) -> etree._ElementTree:
    with resources.as_file(resources.files("sitegate.service").joinpath(f"wsdl/{name}")) as path:
        return etree.parse(str(path))


def presence(seq: int = 1, worker: WorkerId | None = None, wall_utc: str = WALL_UTC) -> soap.Presence:
    made = registration(seq, "IN")
    if worker is not None:
        made = dataclasses.replace(made, worker=worker)
    return soap.Presence(seq, made.payload(), wall_utc)


def request(*presences: soap.Presence, device: str = "gate-01") -> etree._Element:
    items = [soap.request_item(p, device, "1Y101DRUNWB5Z") for p in presences]
    return soap.register_request(items)


def assert_valid(element: etree._Element) -> None:
    """The element, serialised and read back as the service would, satisfies the published XSD."""
    schema = soap.schema()
    reread = etree.fromstring(etree.tostring(element))
    assert schema.validate(reread), schema.error_log.filter_from_errors()


def text(element: etree._Element, name: str) -> str | None:
    return element.findtext(f"{{{soap.TYPES}}}{name}")


# --- the names, read back from what was published -----------------------------------------------------------


def test_the_namespaces_action_and_limits_are_the_published_ones():
    wsdl = published("v1/PresenceRegistration-X509_v1.wsdl").getroot()
    assert wsdl.get("targetNamespace") == soap.PROTOCOL
    actions = {
        op.getparent().get("name"): op.get("soapAction")
        for op in wsdl.iter("{http://schemas.xmlsoap.org/wsdl/soap/}operation")
    }
    assert actions[soap.OPERATION] == soap.SOAP_ACTION
    protocol = published("v1/PresenceRegistration_protocol_v1.xsd").getroot()
    types = published("schemas/v1/PresenceRegistration_types_v1.xsd").getroot()
    assert (protocol.get("targetNamespace"), types.get("targetNamespace")) == (soap.PROTOCOL, soap.TYPES)
    limit = protocol.find(f".//{{{XS}}}element[@name='PresenceRegistrationRequest']").get("maxOccurs")
    assert int(limit) == soap.MAX_BULK

    def facet(type_name: str, kind: str) -> str:
        return types.find(f"{{{XS}}}simpleType[@name='{type_name}']//{{{XS}}}{kind}").get("value")

    assert int(facet("ClientReferenceType", "maxLength")) == soap.MAX_REFERENCE
    assert int(facet("WorkPlaceIdType", "maxLength")) == soap.MAX_WORKPLACE
    enumerated = {t: [e.get("value") for e in types.iterfind(f"{{{XS}}}simpleType[@name='{t}']//{{{XS}}}enumeration")]
                  for t in ("StatusType", "SearchRemarkType")}  # fmt: skip
    assert tuple(enumerated["StatusType"]) == soap.STATUSES
    assert tuple(enumerated["SearchRemarkType"]) == soap.REMARKS


def test_the_remark_texts_take_the_official_lists_numbers_where_the_meanings_agree():
    assert soap.remark_code("THE COMPANY DOESN'T EXISTS") == 4
    assert soap.remark_code("DUC IS NOT EXISTING") == 10
    assert soap.remark_code("same declaration has already been registered") == 14
    assert soap.remark_code("COMPANY IS NOT KNOWN AS BUILDER OR SUBCONTRACTOR IN THIS DUC") == 12  # spaces folded
    assert soap.remark_code("NISS IS NOT KNOW IN THE NATIONAL REGISTER") == 15
    assert soap.remark_code("A REMARK NOBODY PUBLISHED") == soap.UNLISTED_REMARK


# --- what we send -------------------------------------------------------------------------------------------


def test_an_ssin_worker_is_sent_with_the_company_the_day_the_site_and_our_reference():
    sent = request(presence(7))
    assert_valid(sent)
    (item,) = sent
    assert text(item, "RegistrationDate") == "2026-11-22"
    assert text(item, "INSS") == VALID_NISS[7 % len(VALID_NISS)]
    assert text(item, "CompanyID") == "403170701"  # an xs:long: the KBO number without its leading 0
    assert text(item, "LimosaId") is None
    assert text(item, "WorkPlaceId") == "1Y101DRUNWB5Z"
    assert text(item, "ClientPresenceRegistrationReference") == "gate-01:7"


def test_a_posted_worker_is_sent_by_limosa_id_alone():
    sent = request(presence(1, LIMOSA))
    assert_valid(sent)
    (item,) = sent
    assert text(item, "LimosaId") == LIMOSA.number
    assert text(item, "INSS") is None and text(item, "CompanyID") is None


def test_the_registration_date_is_the_day_in_brussels_not_in_utc():
    late_evening = presence(1, wall_utc="2026-11-22T23:30:00.000000Z")  # 00:30 on the 23rd in Brussels (CET)
    summer = presence(2, wall_utc="2026-06-30T22:10:00.000000Z")  # 00:10 on 1 July (CEST)
    sent = request(late_evening, summer)
    assert_valid(sent)
    assert [text(item, "RegistrationDate") for item in sent] == ["2026-11-23", "2026-07-01"]


def test_the_client_reference_fits_in_24_characters_and_is_the_same_on_every_resend():
    long_device = "gate-north-entrance-building-b"
    first, again = soap.client_reference(long_device, 123456789), soap.client_reference(long_device, 123456789)
    assert first == again and len(first) <= soap.MAX_REFERENCE
    assert soap.client_reference(long_device, 123456790) != first
    assert soap.client_reference("gate-north-entrance-building-c", 123456789) != first
    assert_valid(request(presence(123456789), device=long_device))


def test_two_hundred_registrations_make_one_valid_call_and_two_hundred_and_one_are_refused():
    assert_valid(request(*[presence(seq) for seq in range(1, 201)]))
    with pytest.raises(ContractError, match="201 registrations"):
        request(*[presence(seq) for seq in range(1, 202)])


def test_a_workplace_that_is_not_a_works_declaration_is_never_sent():
    without = presence()
    without.payload["works_declaration"] = None  # a sector without works declarations: no SOAP presence
    with pytest.raises(ContractError, match="WorkPlaceId"):
        soap.request_item(without, "gate-01", "")
    too_long = presence()
    too_long.payload["works_declaration"] = "1Y101DRUNWB5Z9"
    with pytest.raises(ContractError, match="WorkPlaceId"):
        soap.request_item(too_long, "gate-01", "1Y101DRUNWB5Z")


def test_the_envelope_is_soap_1_1_with_the_request_as_its_only_body_element():
    root = soap.envelope(request(presence()))
    assert root.tag == f"{{{soap.SOAP_ENV}}}Envelope"
    assert soap.body_of(root).tag == f"{{{soap.PROTOCOL}}}RegisterPresencesRequest"
    assert_valid(soap.body_of(root))


# --- what we take -------------------------------------------------------------------------------------------

T, P = f"{{{soap.TYPES}}}", f"{{{soap.PROTOCOL}}}"


def answer(*items: etree._Element) -> etree._Element:
    response = etree.Element(f"{P}RegisterPresencesResponse")
    for item in items:
        etree.SubElement(response, f"{P}PresenceRegistrationResponse").append(item)
    return soap.envelope(response)


def registered(submitted: etree._Element, presence_id: str, status: str, remarks: tuple[str, ...] = ()):
    element = etree.Element(f"{T}PresenceRegistration")
    copy = etree.SubElement(element, f"{T}PresenceRegistrationSubmitted")
    copy.extend(etree.fromstring(etree.tostring(child)) for child in submitted)
    etree.SubElement(element, f"{T}PresenceRegistrationId").text = presence_id
    etree.SubElement(element, f"{T}CreationDate").text = "2026-11-22T07:20:20+01:00"
    etree.SubElement(element, f"{T}Channel").text = "WEBSERVICE"
    validation = etree.SubElement(element, f"{T}LastValidation")
    etree.SubElement(validation, f"{T}Status").text = status
    if remarks:
        listed = etree.SubElement(validation, f"{T}RemarkList")
        for remark in remarks:
            etree.SubElement(listed, f"{T}Remark").text = remark
    return element


def refused(submitted: etree._Element, *errors: tuple[str, str]) -> etree._Element:
    element = etree.Element(f"{T}PresenceRegistrationError")
    copy = etree.SubElement(element, f"{T}PresenceRegistrationSubmitted")
    copy.extend(etree.fromstring(etree.tostring(child)) for child in submitted)
    listed = etree.SubElement(element, f"{T}ErrorList")
    for code, description in errors:
        error = etree.SubElement(listed, f"{T}Error")
        etree.SubElement(error, f"{T}ErrorCode").text = code
        etree.SubElement(error, f"{T}ErrorDescription").text = description
    return element


def test_a_registration_with_remarks_is_created_and_an_error_refuses_only_its_item():
    sent = request(presence(1), presence(2), presence(3))
    root = answer(
        registered(sent[0], "900000000000001", "VALIDATED"),
        registered(sent[1], "900000000000002", "FAILED", ("DUC IS NOT EXISTING", "EMPLOYER NOT ACTIVE")),
        refused(sent[2], ("PR-042", "RegistrationDate must be today or tomorrow")),
    )
    assert_valid(soap.body_of(root))  # the answer we read is one the XSD allows
    assert soap.parse_register_response(root, 3) == [
        ItemResult(True, service_id="900000000000001", validity="VALIDATED"),
        ItemResult(True, service_id="900000000000002", validity="FAILED", remarks=(10, 16)),
        ItemResult(False, reason="PR-042: RegistrationDate must be today or tomorrow"),
    ]


@pytest.mark.parametrize(
    "garbled",
    [
        etree.Element("html"),  # not an envelope
        soap.envelope(etree.Element(f"{P}CancelPresencesResponse")),  # another operation's answer
        answer(),  # fewer items than sent
        answer(etree.Element(f"{T}Nothing")),  # neither registered nor refused
        answer(registered(etree.Element("x"), "", "VALIDATED")),  # no id
        answer(registered(etree.Element("x"), "1", "MAYBE")),  # a status nobody published
        answer(refused(etree.Element("x"))),  # refused without a reason
    ],
)
def test_an_answer_off_the_contract_is_a_contract_error_never_a_result(garbled):
    with pytest.raises(ContractError):
        soap.parse_register_response(garbled, 1)


def test_a_fault_is_read_with_the_services_detail():
    root = soap.envelope(etree.Element(f"{{{soap.SOAP_ENV}}}Fault"))
    fault = soap.body_of(root)
    etree.SubElement(fault, "faultcode").text = "soapenv:Server"
    etree.SubElement(fault, "faultstring").text = "Internal error"
    error = etree.SubElement(etree.SubElement(fault, "detail"), f"{{{soap.ERRORS}}}SystemError")
    for name, value in (("Origin", "PR"), ("Code", "SYS-1"), ("Message", "down for maintenance"), ("Retry", "true")):
        etree.SubElement(error, f"{{{soap.ERRORS}}}{name}").text = value
    assert soap.fault_of(root) == soap.Fault(
        "soapenv:Server", "Internal error down for maintenance", "SystemError", "SYS-1", True
    )
    assert not soap.fault_of(root).ours
    assert soap.fault_of(answer()) is None


# --- the configuration --------------------------------------------------------------------------------------


def _config_with(service: str, works_declaration: str = "1Y101DRUNWB5Z"):
    text = CONFIG_TEXT.replace('works_declaration = "1Y101DRUNWB5Z"', f'works_declaration = "{works_declaration}"')
    return configuration.parse(tomllib.loads(text + "\n[service]\n" + service))


def test_the_channel_and_its_fallback_are_configured_once_each():
    assert _config_with('channel = "soap"\nfallback = "rest"').service.soap_url.endswith(soap.PATH)
    with pytest.raises(ConfigError, match="service.fallback: is the channel itself"):
        _config_with('channel = "soap"\nfallback = "soap"')
    with pytest.raises(ConfigError, match="is not one of rest, soap"):
        _config_with('channel = "smtp"')


def test_the_soap_channel_needs_the_works_declaration():
    assert _config_with('channel = "rest"', works_declaration="").service.channel == "rest"
    for service in ('channel = "soap"', 'channel = "rest"\nfallback = "soap"'):
        with pytest.raises(ConfigError, match="the SOAP channel needs it"):
            _config_with(service, works_declaration="")


def test_the_simulators_answers_satisfy_the_published_xsd_too(clock):
    """What the simulator answers (registered, with remarks, refused, a resend) is a RegisterPresencesResponse the
    XSD allows, so the client is tested against answers the real service could give."""
    from sitegate.simulator.soap import SoapPresences

    presences = SoapPresences(clock, persons={VALID_NISS[1]})
    yesterday = presence(3, wall_utc="2026-11-21T07:00:00.000000Z")
    sent = request(presence(1), presence(2), yesterday)
    first = presences.register(list(sent))
    again = presences.register(list(request(presence(1), presence(7))))  # a resend; seq 7: the worker of seq 1
    for response in (first, again):
        assert_valid(response)
    results = soap.parse_register_response(soap.envelope(first), 3) + soap.parse_register_response(
        soap.envelope(again), 2
    )
    assert [r.created for r in results] == [True, True, False, True, True]
    assert results[1].remarks == (15,)  # a person the simulator does not know
    assert results[3] == results[0]  # the resend: the presence it already holds, not a second one
    assert results[4].remarks == (14,)  # ...but another registration of the same day: SAME DECLARATION
    assert presences.summary()["created"] == 3 and presences.summary()["resent"] == 1


def test_the_read_the_online_check_sends_and_the_simulators_answers_satisfy_the_xsd(clock):
    """getPresenceRegistration, the online check's read: the request is what the XSD allows, and so are the
    simulator's answers for a presence it holds (with its status) and for an id it does not know (none)."""
    from sitegate.simulator.soap import SoapPresences

    asked = soap.get_request(soap.PROBE_ID)
    assert_valid(asked)
    assert soap.GET_ACTION == "http://socialsecurity.be/presenceregistration/v1/getPresenceRegistration"
    wsdl = published("v1/PresenceRegistration-X509_v1.wsdl")
    actions = wsdl.xpath(
        "//soap11:operation/@soapAction", namespaces={"soap11": "http://schemas.xmlsoap.org/wsdl/soap/"}
    )
    assert soap.GET_ACTION in actions
    presences = SoapPresences(clock)
    [held] = soap.parse_register_response(soap.envelope(presences.register(list(request(presence(1))))), 1)
    for presence_id, status in ((held.service_id, "VALIDATED"), (soap.PROBE_ID, None)):
        answer = presences.get(soap.envelope(soap.get_request(presence_id)))
        assert_valid(answer)
        assert soap.parse_get_response(soap.envelope(answer)) == status
    with pytest.raises(ContractError):
        soap.parse_get_response(soap.envelope(presences.register(list(request(presence(2))))))
