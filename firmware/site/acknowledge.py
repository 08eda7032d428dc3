"""`sitegate site acknowledge`: a technician looked into the messages the site bus rejected; older ones stop warning.

A rejected message warns while it is recent (REJECTIONS_WINDOW), and anyone holding one gate's password, or a gate
of another site, can send one every few minutes and keep a whole fleet amber. Once someone has looked (the log
lines `bus_message_rejected` and `bus_record_rejected` name the sender), a signed record in this gate's own log
says who (the login behind sudo, as `sitegate key replace` does), why, and which rejections: how many, the newest
one's id and time, the latest ones with their reasons. Rejections received after it warn again. Like
`sitegate verify --acknowledge` for witness findings: a signed record, nothing deleted; the total stays shown.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from datetime import datetime, timedelta

from sitegate.clock.timefmt import format_utc, show
from sitegate.commissioning import actor, check_reason
from sitegate.device import Device
from sitegate.errors import SitegateError
from sitegate.output import CRITICAL, OK, Report, table
from sitegate.queue.log import LogView
from sitegate.queue.records import Kind
from sitegate.site.mirror import Mirror

REJECTIONS_WINDOW = timedelta(hours=1)  # an unacknowledged rejection warns while this recent; the total is shown
LISTED = 20  # the latest rejections named in the signed record (all are counted)
NOTHING = (0, "")  # no acknowledgement yet: every rejection counts

WORDS: dict[str, dict[str, str]] = {
    "done": {
        "en": "{count} rejected message(s) acknowledged by {by} (signed record {seq}): they no longer warn; "
        "new ones will",
        "fr": "{count} message(s) rejeté(s) pris en compte par {by} (enregistrement signé {seq}) : ils "
        "n'avertissent plus ; les nouveaux avertiront",
        "nl": "{count} geweigerd(e) bericht(en) erkend door {by} (ondertekend record {seq}): ze waarschuwen niet "
        "meer; nieuwe wel",
    },
    "nothing": {
        "en": "no rejected message to acknowledge{since}",
        "fr": "aucun message rejeté à prendre en compte{since}",
        "nl": "geen geweigerd bericht om te erkennen{since}",
    },
    "since": {
        "en": " since record {seq} ({by}, {at})",
        "fr": " depuis l'enregistrement {seq} ({by}, {at})",
        "nl": " sinds record {seq} ({by}, {at})",
    },
    "columns": {"en": "gate|seq|reason|received", "fr": "portique|seq|motif|reçu", "nl": "poort|seq|reden|ontvangen"},
    "more": {
        "en": "… and {count} older (counted, not kept with a reason)",
        "fr": "… et {count} plus ancien(s) (comptés, motif non conservé)",
        "nl": "… en {count} oudere (geteld, zonder bewaarde reden)",
    },
}


@dataclass(frozen=True)
class Acknowledged:
    seq: int
    by: str
    wall_utc: str
    through_id: int  # the newest rejection it covers: its id in the mirror file…
    through_received_utc: str  # …and when it came (a mirror file made again starts its ids again)

    @property
    def through(self) -> tuple[int, str]:
        return self.through_id, self.through_received_utc

    def as_dict(self) -> dict:
        return asdict(self)


def acknowledged(log: LogView) -> Acknowledged | None:
    """The newest acknowledgement in the signed log (None: never acknowledged)."""
    record = next(log.newest(Kind.BUS_REJECTIONS_ACK), None)
    if record is None:
        return None
    data = record.data
    return Acknowledged(record.seq, data["by"], record.wall_utc, data["through_id"], data["through_received_utc"])


def recent_unacknowledged(mirror: Mirror, log: LogView, now: datetime) -> int:
    """What warns: rejections of the last REJECTIONS_WINDOW received after the newest acknowledgement."""
    done = acknowledged(log)
    return mirror.rejected_since(format_utc(now - REJECTIONS_WINDOW), done.through if done else NOTHING)


def acknowledge(device: Device, by: str, reason: str) -> tuple[Acknowledged | None, int, list[dict]]:
    """Sign a record naming every rejection since the last acknowledgement; (None, 0, []) when there is none."""
    from sitegate.site.mirror import open_mirror

    reason = check_reason(reason, "a gate of site 2 was given our broker address; fixed there", SitegateError)
    mirror = open_mirror(device.config)
    try:
        previous = acknowledged(device.log)
        mirror.db.execute("BEGIN")  # one read snapshot: the count and the newest named agree while rejections come
        try:
            latest = mirror.rejected(LISTED)
            count = mirror.rejected_since("", previous.through if previous else NOTHING)
            in_all = mirror.rejected_count()
        finally:
            mirror.db.execute("COMMIT")
        if not count:
            return None, 0, []
        latest = latest[:count]
        payload = {
            "by": by,
            "reason": reason,
            "rejections": count,
            "rejected_in_all": in_all,
            "through_id": latest[0]["id"],
            "through_received_utc": latest[0]["received_utc"],
            "latest": latest,
        }
        device.log.append(Kind.BUS_REJECTIONS_ACK, payload)
    finally:
        mirror.db.close()
    return acknowledged(device.log), count, latest


def command(args, open_device) -> Report:
    """`sitegate site acknowledge --reason "..." [--lang fr|nl|en] [--json]`."""
    if not args.reason:
        usage = 'usage: sitegate site acknowledge --reason "what you found" [--lang fr|nl|en] [--json]'
        return Report({"ok": False, "problem": usage}, code=CRITICAL, notes=[usage])
    device: Device = open_device(args, signing=True)
    if not device.config.bus.enabled:
        raise SitegateError(
            "the site bus is off: it rejected nothing", "set [bus] host (see `sitegate config example`)"
        )
    language = args.lang or device.config.site.language
    say = {key: words[language] for key, words in WORDS.items()}
    done, count, latest = acknowledge(device, actor(), args.reason)
    if done is None:
        previous = acknowledged(device.log)
        since = say["since"].format(seq=previous.seq, by=previous.by, at=show(previous.wall_utc)) if previous else ""
        return Report({"acknowledged": 0, "record": None}, say["nothing"].format(since=since), OK)
    rows = (
        [r["device"], r["seq"] if r["seq"] is not None else "", r["reason"], show(r["received_utc"])] for r in latest
    )
    lines = [table(rows, say["columns"].split("|"))]
    if count > len(latest):
        lines.append(say["more"].format(count=count - len(latest)))
    lines.append(say["done"].format(count=count, by=done.by, seq=done.seq))
    data = {
        "acknowledged": count,
        "record": done.seq,
        **done.as_dict(),
        "reason": args.reason.strip(),
        "latest": latest,
    }
    return Report(data, "\n".join(lines), OK)


def rejections_lines(view) -> list[str]:
    """`sitegate site`'s lines on rejections: a warning while recent ones are unacknowledged, else the total."""
    done = view.acknowledged
    told = f"; acknowledged up to record {done.seq} by {done.by}, {show(done.wall_utc)}" if done else ""
    if view.rejected_recently:
        return [
            f"WARNING  {view.rejected_recently} message(s) from the bus rejected in the last hour ({view.rejected} in "
            f"all{told}): see the log (bus_message_rejected, bus_record_rejected); once looked into, "
            '`sitegate site acknowledge --reason "..."`'
        ]
    return [f"{view.rejected} message(s) from the bus rejected in all{told}"] if view.rejected else []
