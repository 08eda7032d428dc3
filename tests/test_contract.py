"""The REST presenceRegistration v1 contract (firmware/service/presence_rest_v1.py): every field we send, every
answer we take.

The field names come from a third-party client, not the official OpenAPI file. These tests pin the mapping as it
stands, so a correction made in the contract module shows here as a deliberate change, and so no answer, however
garbled, gets past the parser as anything but results or a ContractError.
"""

from __future__ import annotations

import dataclasses
import json

import pytest
from conftest import registration
from hypothesis import given
from hypothesis import strategies as st

from sitegate.config import Address, Coordinates, PlaceOfWork
from sitegate.domain.identifiers import WorkerId
from sitegate.service import presence_rest_v1 as contract
from sitegate.service.presence_rest_v1 import ContractError, ItemResult, parse_bulk_response

WALL_UTC = "2026-11-22T06:20:19.123456Z"  # the stored form (sitegate.clock.timefmt.format_utc)
ITEM_KEYS = {"registrationDate", "type", "employer", "placeOfWork", "contractualRelationshipReference"}
ADDRESS = Address(post_code="1000", municipality="Bruxelles", street="Rue de la Loi", house_number="16")


def item_for(config, direction: str = "IN", worker: WorkerId | None = None, place: PlaceOfWork | None = None) -> dict:
    """The item the forwarder would send for one registration made by the firmware's own Registration."""
    made = registration(0, direction)
    if worker is not None:
        made = dataclasses.replace(made, worker=worker)
    site = config.site if place is None else dataclasses.replace(config.site, place_of_work=place)
    return contract.item(made.payload(), WALL_UTC, site)


# --- what we send -------------------------------------------------------------------------------------------


@pytest.mark.parametrize(("direction", "sent"), [("IN", "IN"), ("OUT", "OUT"), ("PRESENCE", "IN")])
def test_each_direction_is_sent_as_its_type(config, direction, sent):
    assert item_for(config, direction)["type"] == sent


def test_an_unknown_direction_is_never_sent(config):
    with pytest.raises(KeyError):
        item_for(config, "SIDEWAYS")


def test_ssin_worker_item_has_every_field(config):
    sent = item_for(config)
    assert set(sent) == ITEM_KEYS | {"ssin"}
    assert sent["ssin"] == "85073003328"
    assert sent["registrationDate"] == "2026-11-22T06:20:19.123Z"  # milliseconds, UTC
    assert sent["employer"] == {"enterpriseNumber": "0403170701"}  # KBO/BCE, 10 digits, no dots
    assert sent["contractualRelationshipReference"] == "1Y101DRUNWB5Z"
    json.dumps(sent, allow_nan=False)  # plain JSON, nothing our encoder would have to guess


def test_limosa_worker_is_sent_with_limosa_id_and_no_ssin(config):
    sent = item_for(config, worker=WorkerId("limosa", "12345678901234567"))
    assert set(sent) == ITEM_KEYS | {"limosaId"}
    assert sent["limosaId"] == "12345678901234567"


def test_coordinates_win_over_the_address_when_both_are_configured(config):
    assert config.site.place_of_work.coordinates and config.site.place_of_work.address  # the demo site has both
    assert item_for(config)["placeOfWork"] == {"coordinates": {"latitude": 50.8466, "longitude": 4.3528}}


def test_address_when_no_coordinates(config):
    sent = item_for(config, place=PlaceOfWork(address=ADDRESS))
    assert sent["placeOfWork"] == {
        "address": {
            "postCode": "1000",
            "municipalityName": "Bruxelles",
            "streetName": "Rue de la Loi",
            "houseNumber": "16",
            "boxNumber": None,
        }
    }
    boxed = item_for(config, place=PlaceOfWork(address=dataclasses.replace(ADDRESS, box="B3")))
    assert boxed["placeOfWork"]["address"]["boxNumber"] == "B3"


def test_coordinates_only(config):
    sent = item_for(config, place=PlaceOfWork(coordinates=Coordinates(latitude=51.2194, longitude=4.4025)))
    assert sent["placeOfWork"] == {"coordinates": {"latitude": 51.2194, "longitude": 4.4025}}


@pytest.mark.parametrize("absent", ["", None])
def test_no_works_declaration_omits_the_reference(config, absent):
    """Sectors without works declarations (cleaning, ...) send no reference at all, not an empty one."""
    made = dataclasses.replace(registration(0), works_declaration=absent)
    sent = contract.item(made.payload(), WALL_UTC, config.site)
    assert set(sent) == (ITEM_KEYS - {"contractualRelationshipReference"}) | {"ssin"}


def test_bulk_request_and_the_service_paths():
    assert contract.bulk_request([{"a": 1}]) == {"items": [{"a": 1}]}
    assert contract.MAX_BULK == 200
    production = "https://services.socialsecurity.be"
    assert production + contract.BASE_PATH == "https://services.socialsecurity.be/REST/presenceRegistration/v1"
    assert production + contract.TOKEN_PATH == "https://services.socialsecurity.be/REST/oauth/v5/token"
    assert contract.BULK_PATH == "/presenceRegistrations/registerInBulk"  # relative to service.base_url


# --- what we accept -----------------------------------------------------------------------------------------


def created(**fields) -> dict:
    return {"createdPresenceRegistration": fields}


def not_created(detail) -> dict:
    return {"notCreatedPresenceRegistration": detail}


@pytest.mark.parametrize(
    ("entry", "result"),
    [
        (created(id=123, validity="VALID", remarks=[32]), ItemResult(True, "123", "VALID", (32,))),
        (created(id="abc", validity="INVALID", remarks=None), ItemResult(True, "abc", "INVALID", ())),
        (created(), ItemResult(True)),
        (
            created(id=7, remarks=[{"code": 21}, {"remarkCode": "22"}, "24"]),
            ItemResult(True, "7", remarks=(21, 22, 24)),
        ),
        (not_created({"reason": "unknown worker"}), ItemResult(False, reason="unknown worker")),
        (not_created({"message": "refused"}), ItemResult(False, reason="refused")),
        (not_created({"reason": "first", "message": "second"}), ItemResult(False, reason="first")),
        (not_created({"code": 9}), ItemResult(False, reason="{'code': 9}")),
        (not_created("plain text"), ItemResult(False, reason="plain text")),
        (not_created(None), ItemResult(False, reason="None")),
    ],
)
def test_each_item_answer_shape_accepted(entry, result):
    assert parse_bulk_response({"items": [entry]}, 1) == [result]


def test_answers_keep_request_order_and_extra_fields_are_ignored():
    body = {
        "items": [not_created({"reason": "no"}), created(id=1, extra="x"), created(id=2)],
        "meta": {"page": 1},
    }
    assert [(r.created, r.service_id) for r in parse_bulk_response(body, 3)] == [
        (False, None),
        (True, "1"),
        (True, "2"),
    ]
    assert parse_bulk_response({"items": []}, 0) == []


# --- what we refuse -----------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "body",
    [None, [], "items", 42, {}, {"items": None}, {"items": {"0": created(id=1)}}, {"items": "[]"}, {"Items": []}],
    ids=repr,
)
def test_an_answer_without_an_items_list_is_refused(body):
    with pytest.raises(ContractError, match="no items list"):
        parse_bulk_response(body, 1)


@pytest.mark.parametrize(("answered", "sent"), [(0, 1), (1, 2), (3, 2)])
def test_a_count_mismatch_is_refused(answered, sent):
    with pytest.raises(ContractError, match=f"{answered} items for {sent} sent"):
        parse_bulk_response({"items": [created(id=n) for n in range(answered)]}, sent)


@pytest.mark.parametrize(
    ("entry", "message"),
    [
        ("created", "not an object"),
        (None, "not an object"),
        ([created(id=1)], "not an object"),
        ({}, "neither created nor notCreated"),
        ({"createdPresenceRegistration": "yes"}, "neither created nor notCreated"),
        ({"presenceRegistration": {"id": 1}}, "neither created nor notCreated"),
        (created(id=1, remarks=["late"]), "no numeric code"),
        (created(id=1, remarks=[{"text": "late"}]), "no numeric code"),
        (created(id=1, remarks=[None]), "no numeric code"),
        (created(id=1, remarks=32), "remarks"),
        (created(id=1, remarks={"code": 32}), "remarks"),
        (created(id=1, validity=["VALID"]), "validity"),
        (created(id={"value": 1}), "id"),
    ],
    ids=repr,
)
def test_a_malformed_item_is_refused(entry, message):
    with pytest.raises(ContractError, match=message):
        parse_bulk_response({"items": [entry]}, 1)


JSON = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=5),
    lambda children: st.lists(children, max_size=3) | st.dictionaries(st.text(max_size=5), children, max_size=3),
    max_leaves=12,
)
ENTRY = (
    st.builds(created, id=JSON, validity=JSON, remarks=JSON)
    | st.builds(not_created, JSON)
    | st.dictionaries(st.sampled_from(["createdPresenceRegistration", "notCreatedPresenceRegistration"]), JSON)
    | JSON
)


@given(body=st.one_of(JSON, st.builds(lambda items: {"items": items}, st.lists(ENTRY, max_size=3))))
def test_garbage_gives_typed_results_or_a_contract_error_never_anything_else(body):
    """Whatever comes back, the forwarder gets well-typed results or a ContractError (retried as a service fault)."""
    expected = len(body["items"]) if isinstance(body, dict) and isinstance(body.get("items"), list) else 1
    try:
        results = parse_bulk_response(body, expected)
    except ContractError:
        return
    assert len(results) == expected
    for result in results:
        assert isinstance(result.service_id, str | None) and isinstance(result.validity, str | None)
        assert all(type(code) is int for code in result.remarks) and isinstance(result.reason, str | None)
