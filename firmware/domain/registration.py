"""A registration: who badged, for which company, in which direction, at which workplace.

Its payload is what the signed log keeps; the service payload is derived from it later (service/client.py's mapping),
so a correction of the service's field names never touches signed records.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from enum import StrEnum

from sitegate.clock import Capture
from sitegate.clock.timefmt import format_utc
from sitegate.domain.identifiers import WorkerId
from sitegate.queue.log import RegistrationLog
from sitegate.queue.records import Kind, Record


class Direction(StrEnum):
    """A registration's direction, signed in each record (never rename). PRESENCE: the one registration of the day
    on a site in presence mode."""

    IN = "IN"
    OUT = "OUT"
    PRESENCE = "PRESENCE"


@dataclass(frozen=True)
class Registration:
    worker: WorkerId
    employer: str  # KBO/BCE, 10 digits
    direction: Direction
    works_declaration: str | None  # None: a sector without works declarations
    badge_uid: str = ""
    reader: str = ""
    last_name: str = ""  # as the roster had them when the worker badged: the paper listing prints these,
    first_name: str = ""  # so a roster import later in the day cannot take names off it
    direction_uncertain: bool = False  # a toggle reader decided without the other gates (the site bus down)

    def payload(self) -> dict:
        return {
            "worker": {
                "kind": self.worker.kind,
                "number": self.worker.number,
                "last_name": self.last_name,
                "first_name": self.first_name,
            },
            "employer": self.employer,
            "direction": self.direction,
            "works_declaration": self.works_declaration,
            "badge_uid": self.badge_uid,
            "reader": self.reader,
            **({"direction_uncertain": True} if self.direction_uncertain else {}),
        }

    def duplicate_key(self, capture: Capture) -> str:
        """Remark 14's five fields: company, NISS, date and time (to the second), Limosa id, workplace.

        The time comes first, so keys of new registrations land at the end of the index (cheap to insert).
        """
        moment = format_utc(capture.wall_utc)[:19]
        fields = "|".join((self.employer, self.worker.kind, self.worker.number, self.works_declaration or ""))
        return f"{moment}|{hashlib.sha256(fields.encode()).hexdigest()[:32]}"


def append_registration(
    log: RegistrationLog, registration: Registration, expected_remarks: tuple[int, ...] = ()
) -> Record:
    """Store a registration durably, to be delivered; refuses one identical on remark 14's fields."""
    if registration.direction not in tuple(Direction):
        raise ValueError(f"direction must be one of {', '.join(Direction)}, not {registration.direction!r}")
    # The remarks the gate expects are part of the signed record: proof the device warned at the time.
    payload = {**registration.payload(), "expected_remarks": sorted(expected_remarks)}
    return log.append(Kind.REGISTRATION, payload, dedup_key=registration.duplicate_key)
