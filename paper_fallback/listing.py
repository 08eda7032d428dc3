"""The emergency paper attendance listing: what the procedure requires, and what ties it to the signed log.

Required (PROCEDURES.md, step 4): the contact centre's reference number, the works-declaration number, the date,
and for each worker present or to be present: the national register (NISS) or Limosa L1 number, last and first
name. Added so an inspector can check the paper against the device: the device id, the time printed with the
clock state, and the latest log checkpoint (sequence number and hash prefix, also as a QR code).
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta

from sitegate.device import Device
from sitegate.queue.clockwatch import last_clock_event
from sitegate.roster import sort_key
from sitegate.timefmt import BRUSSELS, format_utc, local, show

BLANK_ROWS = 8


@dataclass(frozen=True)
class Row:
    number: str  # full NISS or Limosa number: the paper is where the procedure wants it
    kind: str  # "NISS" or "Limosa"
    last_name: str
    first_name: str
    first_seen: str  # Brussels time of the first badge that day, "" for roster-only rows


@dataclass(frozen=True)
class Listing:
    day: date
    reference: str | None
    works_declaration: str
    device_id: str
    printed_at: str
    clock_state: str
    checkpoint_seq: int
    checkpoint_hash: str
    key_fingerprint: str
    rows: list[Row] = field(default_factory=list)
    blank_rows: int = BLANK_ROWS

    @property
    def checkpoint(self) -> str:
        """What the QR code holds: enough to find and check the record in the log or an export."""
        return f"sitegate:{self.device_id}:{self.checkpoint_seq}:{self.checkpoint_hash[:16]}:{self.key_fingerprint}"


def _day_bounds(day: date) -> tuple[str, str]:
    start = datetime.combine(day, time(0), BRUSSELS).astimezone(UTC)
    end = datetime.combine(day + timedelta(days=1), time(0), BRUSSELS).astimezone(UTC)
    return format_utc(start), format_utc(end)


def latest_reference(device: Device, day: date) -> str | None:
    start, end = _day_bounds(day)
    row = device.db.execute(
        "SELECT payload FROM records WHERE kind = 'outage_reference' AND wall_utc >= ? AND wall_utc < ? "
        "ORDER BY seq DESC LIMIT 1",
        [start, end],
    ).fetchone()
    return json.loads(row[0])["reference"] if row else None


def build(
    device: Device, day: date, reference: str | None = None, with_roster: bool = False, now: datetime | None = None
) -> Listing:
    """Everyone who badged in on `day` (Brussels), plus, on request, every roster worker valid that day."""
    now = now or datetime.now(UTC)
    start, end = _day_bounds(day)
    seen: dict[tuple[str, str], str] = {}
    for payload, wall in device.db.execute(
        "SELECT payload, wall_utc FROM records WHERE kind = 'registration' AND wall_utc >= ? AND wall_utc < ? "
        "ORDER BY seq",
        [start, end],
    ):
        worker = json.loads(payload)["worker"]
        seen.setdefault((worker["kind"], worker["number"]), local(wall).strftime("%H:%M"))
    roster = {(w.worker.kind, w.worker.number): w for w in device.roster.all()}
    keys = list(seen)
    if with_roster:
        keys += [k for k, w in roster.items() if k not in seen and w.valid_on(day)]
    rows = []
    for key in keys:
        worker = roster.get(key)
        rows.append(
            Row(
                key[1],
                "NISS" if key[0] == "ssin" else "Limosa",
                worker.last_name if worker else "",
                worker.first_name if worker else "",
                seen.get(key, ""),
            )
        )
    rows.sort(key=lambda r: (r.first_seen == "", sort_key(r.last_name), sort_key(r.first_name)))
    last = device.log.last()
    return Listing(
        day=day,
        reference=reference or latest_reference(device, day),
        works_declaration=device.config.site.works_declaration,
        device_id=device.config.device_id,
        printed_at=show(now),
        clock_state=last_clock_event(device.log)[0],
        checkpoint_seq=last.seq if last else 0,
        checkpoint_hash=last.hash if last else "0" * 64,
        key_fingerprint=device.key.fingerprint,
        rows=rows,
    )


def record_printing(device: Device, listing: Listing, output_format: str, destination: str, content: bytes) -> int:
    """Each printed listing is itself a signed record: what was printed, when, for which reference."""
    record = device.log.append(
        "paper_listing",
        {
            "date": listing.day.isoformat(),
            "reference": listing.reference,
            "format": output_format,
            "destination": destination,
            "checkpoint_seq": listing.checkpoint_seq,
            "workers": [row.number for row in listing.rows],
            "sha256": hashlib.sha256(content).hexdigest(),
            "printed_at": listing.printed_at,
        },
    )
    return record.seq
