"""The REST presenceRegistration v1 contract, in one place: our records to the service's items and back.

The field names come from a third-party client, not from the official OpenAPI file (not public). Every name the
service sees or sends is in this module (the URL paths are the configuration's defaults, declared in config.py),
covered by tests/test_contract.py, so a correction is made here once.
"""

from __future__ import annotations

from dataclasses import dataclass

# The URL paths on the service's host and the largest bulk call are the configuration's defaults and bounds: declared
# there, named here too for the simulator and the contract's tests.
from sitegate.config import BASE_PATH as BASE_PATH
from sitegate.config import MAX_BULK as MAX_BULK
from sitegate.config import TOKEN_PATH as TOKEN_PATH
from sitegate.config import SiteConfig

CONTRACT = "presenceRegistration/v1 (third-party field names, unconfirmed)"
BULK_PATH = "/presenceRegistrations/registerInBulk"  # relative to service.base_url
TYPES = {"IN": "IN", "OUT": "OUT", "PRESENCE": "IN"}  # case of the type values unconfirmed


def registration_date(wall_utc: str) -> str:
    """Our stored UTC time (microseconds) as the service's timestamp (milliseconds, UTC)."""
    return wall_utc[:23] + "Z"


def place_of_work(site: SiteConfig) -> dict:
    """Coordinates when configured (a fixed gate always sends them: remark 25), else the address."""
    place = site.place_of_work
    if place.coordinates:
        return {"coordinates": {"latitude": place.coordinates.latitude, "longitude": place.coordinates.longitude}}
    address = place.address
    return {
        "address": {
            "postCode": address.post_code,
            "municipalityName": address.municipality,
            "streetName": address.street,
            "houseNumber": address.house_number,
            "boxNumber": address.box or None,
        }
    }


def item(payload: dict, wall_utc: str, site: SiteConfig) -> dict:
    """One registration as the bulk call's item. `wall_utc` is the (possibly re-dated) time to send."""
    worker = payload["worker"]
    result = {
        "registrationDate": registration_date(wall_utc),
        "type": TYPES[payload["direction"]],
        "employer": {"enterpriseNumber": payload["employer"]},
        "placeOfWork": place_of_work(site),
    }
    if payload.get("works_declaration"):  # sectors without works declarations send none
        result["contractualRelationshipReference"] = payload["works_declaration"]
    if worker["kind"] == "ssin":
        result["ssin"] = worker["number"]
    else:
        result["limosaId"] = worker["number"]
    return result


def bulk_request(items: list[dict]) -> dict:
    return {"items": items}


@dataclass(frozen=True)
class ItemResult:
    """The service's answer for one item: created (with id, validity and remark codes) or not."""

    created: bool
    service_id: str | None = None
    validity: str | None = None
    remarks: tuple[int, ...] = ()
    reason: str | None = None


class ContractError(ValueError):
    """The answer does not follow the contract as we know it."""


def _remark_code(remark: object) -> int:
    if isinstance(remark, dict):
        remark = remark.get("code", remark.get("remarkCode"))
    try:
        return int(remark)
    except (TypeError, ValueError, OverflowError):
        raise ContractError(f"remark {remark!r} has no numeric code") from None


def _created(created: dict) -> ItemResult:
    """A created item; refuses fields of the wrong type rather than pass them to the ledger."""
    service_id, validity, remarks = created.get("id"), created.get("validity"), created.get("remarks")
    if service_id is not None and (isinstance(service_id, bool) or not isinstance(service_id, str | int)):
        raise ContractError(f"created item id {service_id!r} is neither text nor a number")
    if validity is not None and not isinstance(validity, str):
        raise ContractError(f"created item validity {validity!r} is not text")
    if remarks is not None and not isinstance(remarks, list):
        raise ContractError(f"created item remarks {remarks!r} are not a list")
    return ItemResult(
        True,
        service_id=None if service_id is None else str(service_id),
        validity=validity,
        remarks=tuple(_remark_code(r) for r in remarks or ()),
    )


def parse_bulk_response(body: object, expected: int) -> list[ItemResult]:
    """The answer's items, in request order; ContractError when it is not what the contract says."""
    if not isinstance(body, dict) or not isinstance(body.get("items"), list):
        raise ContractError("the answer has no items list")
    items = body["items"]
    if len(items) != expected:
        raise ContractError(f"the answer has {len(items)} items for {expected} sent")
    results = []
    for entry in items:
        if not isinstance(entry, dict):
            raise ContractError(f"item {entry!r} is not an object")
        if isinstance(entry.get("createdPresenceRegistration"), dict):
            results.append(_created(entry["createdPresenceRegistration"]))
        elif "notCreatedPresenceRegistration" in entry:
            detail = entry["notCreatedPresenceRegistration"]
            reason = detail.get("reason") or detail.get("message") if isinstance(detail, dict) else detail
            results.append(ItemResult(False, reason=str(reason or detail)))
        else:
            raise ContractError(f"item {entry!r} is neither created nor notCreated")
    return results
