"""The site bus seen from this gate: who is on site, every gate on the broker."""

from __future__ import annotations

from collections import Counter

from sitegate import config as configuration
from sitegate.clock import SYSTEM
from sitegate.clock.timefmt import show
from sitegate.commands.device import open_device
from sitegate.domain.identifiers import mask
from sitegate.domain.presence import DOUBT_MARK
from sitegate.errors import ConfigError
from sitegate.output import Report, severity, table, when
from sitegate.site.acknowledge import rejections_lines
from sitegate.site.fleet import ORDER, read_fleet
from sitegate.site.view import doubt_lines, site_view


def site(args) -> Report:
    if args.action == "acknowledge":
        from sitegate.site import acknowledge

        return acknowledge.command(args, open_device)
    device = open_device(args)
    now = SYSTEM.now()
    view = site_view(device, now)
    site = device.config.site
    people = [
        {**p.as_dict(), "worker_number": mask(p.worker_number), "employer_name": site.employer_name(p.employer),
         "direction_doubt": (d := view.doubts.get((p.worker_kind, p.worker_number))) and d.reason}
        for p in view.present
    ]  # fmt: skip
    data = {
        "site": device.config.bus.site if device.config.bus.enabled else None,
        "on_site": len(people),
        "per_employer": dict(sorted(Counter(p["employer"] for p in people).items())),
        "per_gate": dict(sorted(Counter(p["gate"] for p in people).items())),
        "present": people,
        "gates": [g.as_dict() for g in view.gates],
        "conflicts": [c.__dict__ for c in view.conflicts],
        "direction_doubts": [{**d.__dict__, "worker_number": mask(d.worker_number)} for d in view.doubts.values()],
        "rejected_records": view.rejected,
        "rejected_recently": view.rejected_recently,
        "rejections_acknowledged": view.acknowledged and view.acknowledged.as_dict(),
        "latest_rejected": view.latest_rejected,
    }
    rows = (
        [DOUBT_MARK if p["direction_doubt"] else "", p["employer_name"] or p["employer"], p["last_name"],
         p["first_name"], p["worker_number"], p["gate"], show(p["since_utc"])]
        for p in people
    )  # fmt: skip
    employers = ", ".join(f"{site.employer_name(e) or e}: {n}" for e, n in data["per_employer"].items())
    lines = [
        f"{len(people)} on site now" + (f" ({employers})" if employers else ""),
        table(rows, [DOUBT_MARK, "employer", "last name", "first name", "id", "gate", "since"]),
        *doubt_lines(view, args.lang or site.language),
    ]
    gate_rows = (
        [g.device + (" (this gate)" if g.own else ""), when(g.heard_utc),
         g.records, g.missing or "", "STALE" if g.stale else "ok"]
        for g in view.gates
    )  # fmt: skip
    lines += ["", table(gate_rows, ["gate", "last heard", "records", "missing", "state"])]
    lines += [f"CONFLICT {c.worker}: {c.direction} at {c.first} and again at {c.second}" for c in view.conflicts]
    lines += rejections_lines(view)
    stale = [g.device for g in view.gates if g.stale]
    if stale:
        lines.append(f"WARNING  not heard lately: {', '.join(stale)}: their latest workers may be missing")
    code = severity(warning=stale or view.conflicts or view.doubts or view.rejected_recently)
    return Report(data, "\n".join(lines), code)


def _bus_required(device_config) -> None:
    if not device_config.bus.enabled:
        from sitegate.settings import Problem

        problem = Problem("bus.host", "the site bus is off", "set [bus] host (see `sitegate config example`)")
        raise ConfigError([problem], device_config.source)


def fleet(args) -> Report:
    config = configuration.load(args.config)
    _bus_required(config)
    gates = read_fleet(config, SYSTEM)
    rows = (
        [g.state.upper(), g.site, g.device, show(g.sent_utc) if g.sent_utc else "", g.undelivered,
         f"{g.oldest_undelivered_s:.0f} s" if g.oldest_undelivered_s else "", g.clock, "; ".join(g.problems)]
        for g in gates
    )  # fmt: skip
    text = table(rows, ["state", "site", "gate", "reported", "undelivered", "oldest", "clock", "problems"])
    worst = gates[0].state if gates else "ok"
    code = severity(ORDER.get(worst, 0) <= ORDER["critical"], worst == "warning")
    return Report([g.as_dict() for g in gates], text, code)
