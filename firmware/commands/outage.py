"""`sitegate outage`: current and past outages, their evidence, what to do; records the contact centre's reference."""

from __future__ import annotations

from sitegate.clock import SYSTEM
from sitegate.clock.timefmt import show
from sitegate.commands.device import open_device
from sitegate.commissioning import actor
from sitegate.domain.identifiers import normalise_enterprise_number
from sitegate.output import CRITICAL, Report, severity, table
from sitegate.paper_fallback import guidance
from sitegate.paper_fallback.guidance import OutageState
from sitegate.paper_fallback.outage import episodes, loose_references, record_reference, situation
from sitegate.queue import delivery


def outage(args) -> Report:
    if args.words and (args.words[0] != "reference" or len(args.words) != 2 or not args.words[1].strip()):
        usage = "usage: sitegate outage [--json] [--lang fr|nl|en] | sitegate outage reference REF [--employer KBO]"
        return Report({"ok": False, "problem": usage}, code=CRITICAL, notes=[usage])
    device = open_device(args, signing=bool(args.words))
    now = SYSTEM.now()
    if args.words:
        employer = normalise_enterprise_number(args.employer, "--employer") if args.employer else None
        reference = args.words[1].strip()
        seq = record_reference(device.log, reference, now, employer, by=actor())
        whose = f" for employer {employer}" if employer else ""
        text = f"reference {reference}{whose} recorded (signed record {seq}); `sitegate paper print` prints it"
        return Report({"reference": reference, "employer": employer, "record": seq}, text)
    language = args.lang or device.config.site.language
    # The standing first, the episodes after: the log only grows, so an episode the daemon signs between the two
    # reads is in the table too (read the other way round, a new "suspected" had no table and no line).
    standing = situation(device.log, delivery.summary(device.db, now), running=None)
    found = episodes(device.log)
    every = [e.as_dict(now, language) for e in found]
    ongoing, never = standing.ongoing, standing.never_connected
    data = {
        "state": standing.outage_state,
        "never_connected": never,
        "current": ongoing.as_dict(now, language) if ongoing else None,
        "outages": [shown for e, shown in zip(found, every, strict=True) if e.is_outage],
        "episodes": every,
        "references_without_episode": loose_references(device.log),
    }
    lines = [guidance.state_line(OutageState.NEVER_CONNECTED, language)] if never and not ongoing else []
    rows = (
        [
            e["seq"],
            show(e["start_utc"]),
            show(e["end_utc"]) if e["end_utc"] else "ongoing",
            f"{e['duration_s'] // 60} min",
            e["state"],
            e["cause"],
            ", ".join(f"{k or 'site'}: {v}" for k, v in e["references"].items()),
        ]
        for e in every
    )
    if every:
        lines.append(table(rows, ["seq", "start", "end", "duration", "state", "cause", "reference"]))
    elif not never:  # no episode ever: say the gate works, in the reader's language, rather than an empty table
        lines.append(guidance.state_line(standing.state, language))  # working, or waiting
    loose = [
        f"{r['reference']} ({show(r['at_utc'])}{', employer ' + r['employer'] if r['employer'] else ''})"
        for r in data["references_without_episode"]
    ]
    if loose:
        lines.append(f"references recorded with no episode open: {'; '.join(loose)}")
    if ongoing:
        lines.append(f"\nNOW: {ongoing.what_to_do(language)}")
        for piece in data["current"]["evidence"][-1:]:
            lines += [
                f"  {show(p['at_utc'])}  {p['name']:16} {'ok' if p['ok'] else 'FAILED'}  {p['detail']}"
                for p in piece.get("probes", [])
            ]
    lines.append(f"\n{guidance.TECHNICIAN}")
    code = severity(ongoing and ongoing.state == OutageState.OPEN, ongoing or never)
    return Report(data, "\n".join(lines), code)
