"""The simulated service's behaviour: tokens, the remarks it computes from registrations alone, what it
received, and the faults it is told to make."""

from __future__ import annotations

import json
import secrets
import threading
from collections import defaultdict
from datetime import datetime, timedelta

import jwt

from sitegate.clock import Clock
from sitegate.simulator import soap
from sitegate.value_checks import BELGIUM_LATITUDE, BELGIUM_LONGITUDE

# Faults of the bulk call only (the token call is left alone), then every fault.
BULK_ONLY_FAULTS = (
    "partial",
    "expire_token",
    "reject_batch",
    "revoked_token",
    "answer_timeout",
    "answer_reset",
    "answer_malformed",
)
FAULTS = ("refuse", "500", "503", "503_retry_after", "429", "slow", "timeout", "html", "malformed", *BULK_ONLY_FAULTS)


class SimulatedService:
    """The service's state and rules, apart from HTTP, so tests can drive it in-process or behind a server."""

    def __init__(
        self,
        clock: Clock,
        reception_delay_s: int = 900,
        persons: set[str] | None = None,
        token_lifetime_s: int = 600,
    ) -> None:
        self.reception_delay_s = reception_delay_s
        self.now = clock.now
        self.persons = persons
        self.token_lifetime_s = token_lifetime_s
        self.lock = threading.Lock()
        self.tokens: dict[str, datetime] = {}
        self.fault: str | None = None
        self.fault_remaining: int | None = None  # None: until cleared
        self.slow_s = 1.0
        self.timeout_s = 30.0
        self.received: list[dict] = []
        self.created: list[dict] = []
        self.calls = 0
        self.token_calls = 0
        self._five_fields: set[tuple] = set()
        self._last_type: dict[str, tuple[str, datetime]] = {}
        self._last_in: dict[str, datetime] = {}
        self.presences = soap.SoapPresences(clock, persons)  # the SOAP channel's state (simulator/soap.py)

    def set_fault(self, fault: str | None, count: int | None = None, seconds: float | None = None) -> None:
        if fault is not None and fault not in FAULTS:
            raise ValueError(f"unknown fault {fault!r}; known: {', '.join(FAULTS)}")
        with self.lock:
            self.fault, self.fault_remaining = fault, count
            if fault == "expire_token":
                self.tokens.clear()
            if seconds is not None:
                self.slow_s = self.timeout_s = seconds

    def take_fault(self, bulk: bool) -> str | None:
        """The fault for this call, counting it down; bulk-only faults leave token calls alone."""
        with self.lock:
            fault = self.fault
            if fault in BULK_ONLY_FAULTS and not bulk:
                return None
            if fault and self.fault_remaining is not None:
                self.fault_remaining -= 1
                if self.fault_remaining <= 0:
                    self.fault, self.fault_remaining = None, None
            return fault

    def issue_token(self, assertion: str) -> dict:
        claims = jwt.decode(assertion, options={"verify_signature": False})
        for claim in ("iss", "sub", "aud", "jti", "exp"):
            if claim not in claims:
                raise ValueError(f"client assertion lacks {claim}")
        token = secrets.token_urlsafe(24)
        with self.lock:
            self.token_calls += 1
            self.tokens[token] = self.now() + timedelta(seconds=self.token_lifetime_s)
        return {"access_token": token, "token_type": "Bearer", "expires_in": self.token_lifetime_s}

    def token_valid(self, token: str) -> bool:
        with self.lock:
            expires = self.tokens.get(token)
        return expires is not None and self.now() < expires

    def register(self, items: list[dict], partial: bool = False) -> dict:
        """The bulk call's answer; remarks never refuse a registration, only invalid items are not created."""
        with self.lock:
            self.calls += 1
            received_at = self.now()
            answers = []
            for index, item in enumerate(items):
                self.received.append({"item": item, "received_utc": received_at.isoformat()})
                problem = self._invalid(item)
                if problem is None and partial and index % 2 == 1:
                    problem = "simulated: not created (partial bulk success)"
                if problem:
                    answers.append({"notCreatedPresenceRegistration": {"reason": problem}})
                    continue
                remarks = self._remarks(item, received_at)
                created = {
                    "id": f"SIM-{len(self.created) + 1:08d}",
                    "validity": "INVALID" if remarks else "VALID",
                    "remarks": [{"code": code} for code in remarks],
                }
                self.created.append({"item": item, "remarks": remarks, "id": created["id"]})
                answers.append({"createdPresenceRegistration": created})
            return {"items": answers}

    @staticmethod
    def _invalid(item: dict) -> str | None:
        person = item.get("ssin") or item.get("limosaId")
        if not isinstance(person, str) or not person.isdigit():
            return "no valid ssin or limosaId"
        if item.get("type") not in ("IN", "OUT"):
            return f"type {item.get('type')!r} is not IN or OUT"
        try:
            datetime.fromisoformat(str(item.get("registrationDate")).replace("Z", "+00:00"))
        except ValueError:
            return "registrationDate is not a timestamp"
        if not isinstance(item.get("employer"), dict):
            return "employer missing"
        return None

    def _remarks(self, item: dict, received_at: datetime) -> list[int]:
        remarks = []
        person = item.get("ssin") or item.get("limosaId")
        moment = datetime.fromisoformat(item["registrationDate"].replace("Z", "+00:00"))
        employer = json.dumps(item.get("employer"), sort_keys=True)
        place = json.dumps(item.get("placeOfWork"), sort_keys=True)
        five = (employer, item.get("ssin"), moment.replace(microsecond=0), item.get("limosaId"), place)
        if five in self._five_fields:
            remarks.append(14)
        else:
            self._five_fields.add(five)
        if self.persons is not None and item.get("ssin") and item["ssin"] not in self.persons:
            remarks.append(15)
        kind = item["type"]
        previous = self._last_type.get(person)
        if previous and previous[0] == kind and 14 not in remarks:
            remarks.append(21 if kind == "IN" else 22)
        if kind == "OUT":
            last_in = self._last_in.get(person)
            if last_in is None or moment - last_in > timedelta(hours=24):
                remarks.append(24)
        else:
            self._last_in[person] = moment
        self._last_type[person] = (kind, moment)
        place_of_work = item.get("placeOfWork") or {}
        coordinates = place_of_work.get("coordinates")
        if not coordinates:
            remarks.append(25)
        elif not (
            BELGIUM_LATITUDE[0] <= coordinates.get("latitude", 0) <= BELGIUM_LATITUDE[1]
            and BELGIUM_LONGITUDE[0] <= coordinates.get("longitude", 0) <= BELGIUM_LONGITUDE[1]
        ):
            remarks.append(36)
        address = place_of_work.get("address")
        if address is not None and not all(address.get(k) for k in ("municipalityName", "streetName", "houseNumber")):
            remarks.append(37)
        if (received_at - moment).total_seconds() >= self.reception_delay_s:
            remarks.append(32)
        return sorted(remarks)

    def summary(self) -> dict:
        with self.lock:
            per_person_moment = defaultdict(int)
            for entry in self.received:
                item = entry["item"]
                per_person_moment[
                    (item.get("ssin") or item.get("limosaId"), item.get("registrationDate"), item.get("type"))
                ] += 1
            return {
                "calls": self.calls,
                "token_calls": self.token_calls,
                "received": len(self.received),
                "created": len(self.created),
                "distinct": len(per_person_moment),
                "resent": sum(n - 1 for n in per_person_moment.values()),
                "fault": self.fault,
            }
