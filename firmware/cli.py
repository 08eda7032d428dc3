"""The `sitegate` command: what technicians and foremen type over SSH.

Readable tables by default, --json for scripts; exit 0 when all is well, 1 on a warning, 2 on a critical
problem (monitoring reads these).
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import sqlite3
import sys
from pathlib import Path

from sitegate import __version__
from sitegate import config as configuration
from sitegate.clock import SYSTEM
from sitegate.clock.timefmt import BRUSSELS, show
from sitegate.commissioning import actor
from sitegate.device import Device
from sitegate.domain.roster import read_csv
from sitegate.errors import ConfigError, SitegateError, VerificationError
from sitegate.outfile import check as check_out
from sitegate.outfile import replacing
from sitegate.output import CRITICAL, OK, PIPE_CLOSED, WARNING, Report, emit, pairs, progress, table
from sitegate.queue import checkpoints, database, delivery
from sitegate.queue import verify as verifier
from sitegate.queue.records import Kind


def _open(args, signing: bool = False, key_note: bool = True) -> Device:
    """The device; signing=False for a command that only reads: it needs the log's public key, not device.key (and
    never makes one). A key the daemon cannot use is said on stderr (key_note) while the command goes on."""
    device = Device.open(configuration.load(args.config), signing=signing)
    problem = None if signing or not key_note else device.key_problem()
    if problem:
        print(f"warning: {problem.problem}; the daemon cannot start\nfix: {problem.fix}", file=sys.stderr)
    return device


def cmd_config_check(args) -> Report:
    from sitegate import commissioning

    try:
        config = configuration.load(args.config)
        problems = [
            *config.warnings,
            *commissioning.placeholder_problems(config),
            *commissioning.credential_problems(config.service, SYSTEM.now()),
        ]
    except ConfigError as error:
        config, problems = None, error.problems
    online = args.online and config is not None and not any(p.severity == "error" for p in problems)
    if online:
        problems += commissioning.online_problems(config.service)
    errors = [p for p in problems if p.severity == "error"]
    lines = [f"{problem.severity.upper():8} {problem}" for problem in problems]
    lines.append(
        "configuration has errors" if errors else "configuration OK" + (" (with warnings)" if problems else "")
    )
    if online and not errors:
        lines.append(f"token obtained from {config.service.token_url}")
    not_run = "fix the errors above first" if args.online and not online else None
    if not_run:  # asked for, not done: say so rather than let silence pass for a token obtained
        lines.append(f"online check not run: {not_run}")
    data = {
        "ok": not errors,
        "online": online and not errors,
        **({"online_not_run": not_run} if not_run else {}),
        "source": str(configuration.config_path(args.config)),
        "problems": [p.__dict__ for p in problems],
    }
    return Report(data, "\n".join(lines), CRITICAL if errors else WARNING if problems else OK)


def cmd_config_example(args) -> int:
    print(configuration.example_text(Path(args.data_dir) if args.data_dir else None), end="")
    return OK


def cmd_key_show(args) -> Report:
    device = _open(args, key_note=False)  # the key file's problem is part of the answer
    keys, problem = device.keys, device.key_problem()
    if keys is None:
        return Report({"public_key": None}, "no key yet: the daemon makes it at its first start")
    info = {
        "public_key": keys.current,
        "fingerprint": verifier.fingerprint(keys.current),
        "key_file": str(device.config.key_path),
        "key_file_problem": problem.problem if problem else None,
    }
    data = {**info, "key_changes": [change.as_dict() for change in keys.changes]}
    text = "\n".join([pairs(info.items()), *(change.text for change in keys.changes)])
    return Report(data, text, CRITICAL if problem else OK, [f"fix: {problem.fix}"] if problem else [])


def cmd_key_replace(args) -> Report:
    from sitegate.key_replace import replace_key

    config = configuration.load(args.config)
    with progress(None, "verifying") as bar:
        replaced = replace_key(config, actor(), args.reason, SYSTEM.now(), bar.update)
    change = replaced.change
    lines = [
        f"new device key {verifier.fingerprint(change.new_public_key)} started: signed record {change.seq} continues "
        f"the log after record {change.last_verified_seq}, verified under the old key "
        f"{verifier.fingerprint(change.old_public_key)} (device.key was {replaced.found})",
        "next: start the daemon (`sudo systemctl start sitegate`); `sitegate verify` shows the new key as a warning "
        "naming you",
    ]
    if config.bus.enabled:
        lines.append(f"site bus: on every other gate, set this gate's key in [bus] peers to {change.new_public_key}")
    return Report({**change.as_dict(), "key_file_found": replaced.found}, "\n".join(lines), WARNING)


def _export_witnesses(header: dict) -> list[checkpoints.Witness]:
    try:
        return [
            checkpoints.Witness.from_dict({**w, "name": f"{w['name']} (in the export)"})
            for w in header.get("witnesses", [])
        ]
    except (ValueError, TypeError, KeyError) as error:
        raise VerificationError(None, f"the export's header holds a witness that is not one: {error}") from None


def cmd_verify(args) -> Report:
    given = checkpoints.parse(args.checkpoint) if args.checkpoint else None
    device = None
    if args.export:
        header, records = verifier.read_export(Path(args.export))
        public_key, total, source, device_id = header["public_key"], None, args.export, header.get("device_id")
        witnesses = _export_witnesses(header)
    else:
        device = _open(args, signing=args.acknowledge)
        keys = device.keys
        public_key, records, total = keys.first if keys else None, device.log.records(), device.log.count()
        source, device_id = str(device.config.database_path), device.config.device_id
        witnesses = checkpoints.witnesses(device.db, database.head_path(device.config.database_path))
        if public_key is None:
            return Report({"ok": True, "source": source, "records": 0}, f"OK: no record yet in {source}")
    if given:
        witnesses.append(given[0])
    try:
        if given and given[1] and given[1] != device_id:
            raise VerificationError(None, f"the listing's QR code is gate {given[1]}'s; this log is gate {device_id}'s")
        with progress(total, "verifying") as bar:
            report = verifier.verify(records, public_key, bar.update, [w.seq for w in witnesses])
        for expected in {args.fingerprint, given and given[2]} - {None}:
            if expected.upper() not in report.keys.fingerprints:
                signers = ", ".join(report.keys.fingerprints)
                raise VerificationError(None, f"signed by key {signers}, not {expected}")
    except VerificationError as error:
        failed = {"ok": False, "source": source, "bad_seq": error.seq, "problem": error.problem}
        return Report(failed, code=CRITICAL, notes=[f"FAILED {source}: {error.problem}", f"fix: {error.fix}"])
    verdicts = checkpoints.judge_all(witnesses, report.last_seq, report.hashes.get, report.keys)
    notes = []
    if device is not None:
        verdicts, notes = _acknowledged(device, verdicts, args.acknowledge)
    broken = [v for v in verdicts if v.broken]
    result = {
        "ok": not broken,
        "source": source,
        "records": report.records,
        "last_seq": report.last_seq,
        "last_hash": report.last_hash,
        "fingerprint": report.public_key_fingerprint,
        "key_changes": [change.as_dict() for change in report.key_changes],
        "witnesses": [v.as_dict() for v in verdicts],
    }
    heading = "FAILED: the log does not extend its witnesses" if broken else "OK"
    text = (
        f"{heading}: {report.records} records verified in {source}\n"
        f"last record {report.last_seq}, hash {report.last_hash[:16]}…, key {report.public_key_fingerprint}"
    ) + "".join(f"\nWARNING  {change.text}" for change in report.key_changes)
    text += "".join(f"\n{v.text}" for v in verdicts)
    if not witnesses:
        text += "\nno checkpoint to compare the log's end with (the daemon takes the first one at start)"
    missing = any(v.state == checkpoints.MISSING for v in verdicts)
    if broken:
        notes.append(
            "fix: keep the database, the ledger and the head file as evidence; report it to the site manager; "
            "once looked into, `sitegate verify --acknowledge` (a signed record naming you)"
        )
    warned = missing or notes or report.key_changes
    return Report(result, text, CRITICAL if broken else WARNING if warned else OK, notes)


def _acknowledged(device: Device, verdicts: list, acknowledge: bool) -> tuple[list, list[str]]:
    """The live log's verdicts as acknowledged so far; with --acknowledge, first a signed record naming the
    technician and every finding open now (broken witnesses, missing ones, findings the daemon recorded)."""
    recorded = checkpoints.unacknowledged(device.log)
    open_now = [v for v in verdicts if v.broken or v.state == checkpoints.MISSING]
    if acknowledge and (open_now or recorded):
        payload = {
            "by": actor(),
            "findings": [v.finding for v in open_now],
            "texts": [v.text for v in open_now] + [t for r in recorded for t in r.data["texts"]],
            "records": [r.seq for r in recorded],
        }
        record = device.log.append(Kind.WITNESS_ACK, payload)
        return checkpoints.acknowledge(verdicts, record), [f"acknowledged (signed record {record.seq})"]
    ack = next(device.log.newest(Kind.WITNESS_ACK), None)
    notes = [
        f"the log records witness findings at seq {r.seq} ({r.wall_utc[:10]}): {'; '.join(r.data['texts'])}"
        for r in recorded
    ]
    return checkpoints.acknowledge(verdicts, ack), notes


def cmd_export(args) -> Report:
    device = _open(args)
    keys = device.keys
    if keys is None:
        raise SitegateError("no record to export yet", "start the daemon first (`sudo systemctl start sitegate`)")
    held = checkpoints.witnesses(device.db, database.head_path(device.config.database_path))
    destination = replacing(Path(args.out), device.config.data_dir, text=True)
    with progress(device.log.count(), "exporting") as bar, destination as out:
        count = verifier.write_export(
            out,
            device.log.records(),
            keys.first,  # the chain's first key: the verifier follows every key change from there
            device.config.device_id,
            bar.update,
            [w.as_dict() for w in held if not w.problem],
        )
    text = f"exported {count} records to {args.out}; check it anywhere with `sitegate verify --export {args.out}`"
    return Report({"records": count, "file": args.out}, text)


def cmd_queue(args) -> Report:
    device = _open(args)
    summary = delivery.summary(device.db, SYSTEM.now())
    oldest = (
        f"record {summary.oldest_pending_seq}, {show(summary.oldest_pending_utc)} "
        f"({summary.oldest_pending_age_s:.0f} s ago)"
        if summary.oldest_pending_seq
        else "none"
    )
    text = pairs(
        [
            ("pending", summary.pending),
            ("in flight", summary.in_flight),
            ("delivered", summary.delivered),
            ("rejected", summary.rejected),
            ("oldest undelivered", oldest),
            ("last error", f"{summary.last_error} ({summary.last_error_class})" if summary.last_error else "none"),
        ]
    )
    return Report(summary.as_dict(), text, WARNING if summary.rejected else OK)


def cmd_roster_import(args) -> Report:
    config = configuration.load(args.config)
    parsed = read_csv(Path(args.file), config.site.employer_numbers)
    notes = [f"bad row: {bad}" for bad in parsed.bad_rows] + [f"warning: {w}" for w in parsed.warnings]
    data = {"imported": 0, "bad_rows": [str(b) for b in parsed.bad_rows], "warnings": parsed.warnings}
    if parsed.bad_rows and not args.skip_bad:
        notes.append(
            f"nothing imported: {len(parsed.bad_rows)} bad row(s); correct them, or import the "
            f"{len(parsed.workers)} good rows with --skip-bad"
        )
        return Report(data, code=CRITICAL, notes=notes)
    device = Device.open(config)
    device.roster.replace(parsed.workers)
    signed = device.log.append(
        Kind.ROSTER_IMPORT,
        {
            "by": actor(),
            "workers": len(parsed.workers),
            "bad_rows_skipped": len(parsed.bad_rows),
            "sha256": hashlib.sha256(Path(args.file).read_bytes()).hexdigest(),
        },
    )
    skipped = f", {len(parsed.bad_rows)} bad row(s) skipped" if parsed.bad_rows else ""
    text = f"roster replaced: {len(parsed.workers)} worker(s){skipped} (signed record {signed.seq})"
    code = WARNING if parsed.bad_rows or parsed.warnings else OK
    return Report({**data, "imported": len(parsed.workers)}, text, code, notes)


def cmd_roster_list(args) -> Report:
    workers = [w.masked() for w in _open(args).roster.all()]
    columns = (
        "badge_uid",
        "kind",
        "number",
        "last_name",
        "first_name",
        "employer",
        "valid_from",
        "valid_until",
        "role",
    )
    rows = ([{**w, **w["worker"]}[c] for c in columns] for w in workers)
    text = table(rows, ["badge", "id kind", "number", "last name", "first name", "employer", "from", "until", "role"])
    return Report(workers, text)


def cmd_simulator(args) -> int:
    import signal
    import tempfile

    from sitegate.service.credentials import make_self_signed
    from sitegate.simulator import SimulatedService, SimulatorServer

    persons = set(Path(args.persons).read_text().split()) if args.persons else None
    tls, ca_file, scratch = None, None, None
    if args.tls:
        if not args.tls_dir:  # a certificate of its own, removed when the simulator stops
            scratch = tempfile.TemporaryDirectory(prefix="sitegate-sim-tls-")
        directory = Path(args.tls_dir or scratch.name)
        tls = make_self_signed(directory, "simulator", hosts=(args.host, "localhost"))
        ca_file = str(tls[1])
    service = SimulatedService(reception_delay_s=args.delay, persons=persons)
    if args.trust:
        service.presences.trust(Path(args.trust))
    server = SimulatorServer(service, args.host, args.port, tls)
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    print(
        json.dumps(
            {
                "url": server.url,
                "ca_file": ca_file,
                "base_url": server.base_url,
                "token_url": server.token_url,
            }
        ),
        flush=True,
    )
    try:
        server.serve_forever()
    finally:
        server.server_close()
        if scratch:
            scratch.cleanup()
    return OK


def cmd_forward(args) -> Report:
    from sitegate.queue.forwarder import Forwarder
    from sitegate.service.channels import channel_for

    device = _open(args)
    forwarder = Forwarder(device.ledger, device.config, channel_for(device.config))
    report = forwarder.drain()
    result = {
        "calls": report.calls,
        "sent": report.sent,
        "delivered": report.delivered,
        "rejected": report.rejected,
        "failures": report.failures,
        "resent_after_crash": forwarder.resent_after_crash,
        "pending": delivery.summary(device.db, SYSTEM.now()).pending,
    }
    text = pairs([(k.replace("_", " "), "; ".join(v) if isinstance(v, list) else v) for k, v in result.items()])
    return Report(result, text, CRITICAL if report.failures else WARNING if report.rejected else OK)


def cmd_remarks(args) -> Report:
    from sitegate.paper_fallback.outage import outages
    from sitegate.service.remarks import DEADLINE_BASIS, days_left, needing_action

    device = _open(args)
    items = needing_action(device.db, outages(device.log))
    now = SYSTEM.now()
    rows = (
        [
            i.seq,
            show(i.registered_utc),
            i.worker,
            i.code or "refused",
            i.text,
            f"{show(i.deadline_utc)[:10]} ({days_left(i.deadline_utc, now):.0f} d)" if i.deadline_utc else "",
            i.cause,
            i.action,
        ]
        for i in items
    )
    columns = ["seq", "registered", "worker", "remark", "what", "report by", "cause", "action"]
    text = table(rows, columns) if items else ""
    if any(i.deadline_utc for i in items):
        text += f"\nreport by: {DEADLINE_BASIS}"
    status = WARNING if any(i.needs_action for i in items) else OK  # our own resends' remark 14: nothing to do
    return Report([item.as_dict() for item in items], text or "no remark needs action", status)


def cmd_clock(args) -> Report:
    from sitegate.clock.timesource import best_reading
    from sitegate.clock.watch import assess, default_sources, last_clock_event, service_dispute, unsynced_records

    device = _open(args)
    site = device.config.site
    threshold = device.config.clock.warn_fraction * site.reception_delay_s
    reading = best_reading(default_sources(device.config.clock.ntp_server, device.config.clock.trust_system_clock))
    synced, warning = assess(reading, threshold)
    dispute = service_dispute(device.log, synced, reading.source, threshold)
    watched = last_clock_event(device.log)[0]  # a step the daemon has not seen resolved yet: not synced either
    service_offset = delivery.get_meta(device.db, "service_offset_s", delivery.DELIVERY_META)
    data = {
        "synced": synced and not dispute and watched != "stepped",
        "dispute": dispute,
        "daemon_clock_state": watched,
        "offset_s": reading.offset_s,
        "max_error_s": reading.max_error_s,
        "source": reading.source,
        "detail": reading.detail,
        "service_offset_s": float(service_offset) if service_offset else None,
        "service_offset_seen_utc": delivery.get_meta(device.db, "service_offset_utc", delivery.DELIVERY_META),
        "unsynced_records": unsynced_records(device.log),
        "reception_delay_s": site.reception_delay_s,
        "warn_threshold_s": threshold,
        "warning": warning,
    }
    text = pairs((k.replace("_", " "), v) for k, v in data.items())
    return Report(data, text, CRITICAL if not data["synced"] else WARNING if warning else OK)


DAEMON_STATES = {"running": "running", "stalled": "STALLED (no heartbeat for {age} s)", "stopped": "NOT RUNNING"}


def cmd_status(args) -> Report:
    from sitegate import health, startfailure
    from sitegate.status import collect, exit_code

    config = configuration.load(args.config)
    try:
        device = Device.open(config, signing=False)  # a key problem is one of its critical lines
    except SitegateError:
        if failure := startfailure.last(config):  # the daemon met the same wall: say when, and what it was
            print(f"daemon: NOT RUNNING; {health.start_failure(failure)[0].text}", file=sys.stderr)
        raise
    status, warnings, critical = collect(device, SYSTEM.now())
    queue_state, ongoing = status["queue"], status["outage"]
    text = pairs(
        [
            ("device", f"{status['device_id']} (sitegate {status['version']})"),
            ("daemon", DAEMON_STATES[status["daemon_state"]].format(age=status["heartbeat_age_s"])),
            ("readers online", ", ".join(status["readers_online"]) or "none"),
            ("last badge", show(status["last_badge_utc"]) if status["last_badge_utc"] else "never"),
            (
                "queue",
                f"{queue_state['pending']} pending, {queue_state['in_flight']} in flight, "
                f"{queue_state['delivered']} delivered, {queue_state['rejected']} rejected",
            ),
            ("last delivery", show(queue_state["last_delivery_utc"]) if queue_state["last_delivery_utc"] else "never"),
            ("last error", queue_state["last_error"] or "none"),
            ("clock", f"{status['clock_state']} ({status['unsynced_records']} records to re-date)"),
            ("disk free", f"{status['disk_free_bytes'] // 2**20} MiB"),
            ("database", f"{status['database_bytes'] // 1024} KiB, {status['records']} records"),
            ("device key", _key_line(status)),
            (
                "site bus",
                "off"
                if not (bus := status["bus"])
                else f"{'connected' if bus['connected'] else 'NOT CONNECTED'} since {show(bus['since_utc'])}, "
                f"{bus['peers_heard']}/{bus['peers']} peers heard, {bus['rejected']} rejected"
                if bus["since_utc"]
                else "never connected",
            ),
            (
                "outage",
                f"{ongoing['state']}: {ongoing['cause']} since {show(ongoing['start_utc'])}"
                if ongoing
                else "never connected"
                if status["never_connected"]
                else "none",
            ),
        ]
    )
    text += "".join(f"\nCRITICAL {line}" for line in critical) + "".join(f"\nWARNING  {line}" for line in warnings)
    return Report({**status, "warnings": warnings, "critical": critical}, text, exit_code(warnings, critical))


def _key_line(status: dict) -> str:
    if not status["key_fingerprint"]:
        return "none yet (made at the daemon's first start)"
    changes = status["key_changes"]
    since = f" (since record {changes[-1]['seq']}, started by {changes[-1]['by']})" if changes else ""
    return status["key_fingerprint"] + since


def cmd_doctor(args) -> Report:
    from sitegate import doctor

    steps, seq = doctor.run(_open(args, signing=True))
    rows = ([step.name, step.result.upper(), step.detail, step.fix] for step in steps)
    results = [step.result for step in steps]
    counts = {result: results.count(result) for result in (doctor.PASS, doctor.WARN, doctor.FAIL, doctor.SKIP)}
    summary = (
        f"{counts[doctor.PASS]} passed, {counts[doctor.WARN]} warning(s), {counts[doctor.FAIL]} failed, "
        f"{counts[doctor.SKIP]} skipped (not tested)"
    )
    text = table(rows, ["step", "result", "detail", "fix"]) + f"\n{summary}\ncommissioning record {seq} (signed)"
    code = CRITICAL if counts[doctor.FAIL] else WARNING if counts[doctor.WARN] else OK
    return Report({"record": seq, "counts": counts, "steps": [step.__dict__ for step in steps]}, text, code)


def cmd_paper_print(args) -> Report:
    from datetime import date

    from sitegate.domain.identifiers import normalise_enterprise_number
    from sitegate.paper_fallback import listing as paper
    from sitegate.paper_fallback.printing import send

    device = _open(args, signing=True)
    if args.out:  # refused before the listing is built, not after
        check_out(Path(args.out), device.config.data_dir)
    printer = device.config.printer
    day = date.fromisoformat(args.date) if args.date else SYSTEM.now().astimezone(BRUSSELS).date()
    employer = normalise_enterprise_number(args.employer, "--employer") if args.employer else None
    document = paper.build(
        device,
        day,
        args.reference,
        with_roster=args.with_roster or printer.include_roster,
        employer=employer,
        language=args.lang,
        now=SYSTEM.now(),
    )
    output_format = args.format or printer.format
    with progress(None, "printing"):
        printed = send(
            device,
            document,
            output_format,
            Path(args.out) if args.out else None,
            args.printer or printer.cups_name,
            printer.escpos,
            by=actor(),
        )
    result = {
        "date": day.isoformat(),
        "employer": employer,
        "reference": document.reference,
        "workers": len(document.rows),
        "format": output_format,
        "destination": printed.destination,
        "record": printed.seq,
        "warnings": printed.warnings,
    }
    text = (
        f"listing of {day:%d/%m/%Y}: {len(document.rows)} worker(s), reference "
        f"{document.reference or '(to write by hand)'} -> {printed.destination} (signed record {printed.seq})"
    ) + "".join(f"\nWARNING  {warning}" for warning in printed.warnings)
    return Report(result, text, WARNING if printed.warnings else OK)


def cmd_outage(args) -> Report:
    from sitegate.domain.identifiers import normalise_enterprise_number
    from sitegate.paper_fallback import guidance
    from sitegate.paper_fallback.outage import OPEN, current, episodes, loose_references, record_reference
    from sitegate.status import never_connected

    if args.words and (args.words[0] != "reference" or len(args.words) != 2 or not args.words[1].strip()):
        usage = "usage: sitegate outage [--json] [--lang fr|nl|en] | sitegate outage reference REF [--employer KBO]"
        return Report({"ok": False, "problem": usage}, code=CRITICAL, notes=[usage])
    device = _open(args, signing=bool(args.words))
    now = SYSTEM.now()
    if args.words:
        employer = normalise_enterprise_number(args.employer, "--employer") if args.employer else None
        reference = args.words[1].strip()
        seq = record_reference(device.log, reference, now, employer, by=actor())
        whose = f" for employer {employer}" if employer else ""
        text = f"reference {reference}{whose} recorded (signed record {seq}); `sitegate paper print` prints it"
        return Report({"reference": reference, "employer": employer, "record": seq}, text)
    language = args.lang or device.config.site.language
    found = episodes(device.log)
    every = [e.as_dict(now, language) for e in found]
    ongoing = current(device.log)
    never = never_connected(delivery.summary(device.db, now), device.log)
    data = {
        "state": ongoing.state if ongoing else "never_connected" if never else "ok",
        "never_connected": never,
        "current": ongoing.as_dict(now, language) if ongoing else None,
        "outages": [shown for e, shown in zip(found, every, strict=True) if e.is_outage],
        "episodes": every,
        "references_without_episode": loose_references(device.log),
    }
    lines = [guidance.state_line(guidance.NEVER_CONNECTED, language)] if never and not ongoing else []
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
        waiting = delivery.summary(device.db, now).undelivered
        lines.append(guidance.state_line(guidance.WAITING if waiting else guidance.WORKING, language))
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
    code = CRITICAL if ongoing and ongoing.state == OPEN else WARNING if ongoing or never else OK
    return Report(data, "\n".join(lines), code)


def cmd_site(args) -> Report:
    from collections import Counter

    from sitegate.domain.identifiers import mask
    from sitegate.domain.presence import DOUBT_MARK
    from sitegate.site.acknowledge import rejections_lines
    from sitegate.site.view import doubt_lines, site_view

    if args.action == "acknowledge":
        from sitegate.site import acknowledge

        return acknowledge.command(args, _open)
    device = _open(args)
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
        [g.device + (" (this gate)" if g.own else ""), show(g.heard_utc) if g.heard_utc else "never",
         g.records, g.missing or "", "STALE" if g.stale else "ok"]
        for g in view.gates
    )  # fmt: skip
    lines += ["", table(gate_rows, ["gate", "last heard", "records", "missing", "state"])]
    lines += [f"CONFLICT {c.worker}: {c.direction} at {c.first} and again at {c.second}" for c in view.conflicts]
    lines += rejections_lines(view)
    stale = [g.device for g in view.gates if g.stale]
    if stale:
        lines.append(f"WARNING  not heard lately: {', '.join(stale)}: their latest workers may be missing")
    code = WARNING if stale or view.conflicts or view.doubts or view.rejected_recently else OK
    return Report(data, "\n".join(lines), code)


def _bus_required(device_config) -> None:
    if not device_config.bus.enabled:
        from sitegate.settings import Problem

        problem = Problem("bus.host", "the site bus is off", "set [bus] host (see `sitegate config example`)")
        raise ConfigError([problem], device_config.source)


def cmd_fleet(args) -> Report:
    from sitegate.site.fleet import ORDER, read_fleet

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
    code = CRITICAL if ORDER.get(worst, 0) <= ORDER["critical"] else WARNING if worst == "warning" else OK
    return Report([g.as_dict() for g in gates], text, code)


def cmd_metrics(args) -> Report:
    from sitegate.site.metrics import Metrics

    device = _open(args)
    metrics = Metrics()
    metrics.refresh(device, SYSTEM.now())
    text = metrics.text()
    return Report({"exposition": text}, text.rstrip())


def cmd_run(args) -> int:
    from sitegate import jsonlog, startfailure
    from sitegate.daemon import Daemon

    jsonlog.setup()
    config = configuration.load(args.config)
    try:
        return Daemon(config).run()
    except SitegateError as error:  # left for `sitegate status`, which otherwise says only "not running"
        startfailure.record(config, error, SYSTEM.now())
        raise


def cmd_demo(args) -> int:
    from sitegate.demo import run_demo

    if args.site:
        from sitegate.site.demo import run_site_demo

        return run_site_demo(Path(args.dir) if args.dir else None)
    return run_demo(Path(args.dir) if args.dir else None, interactive=args.interactive)


def cmd_web_serve(args) -> int:
    from sitegate import jsonlog
    from sitegate.web.server import serve

    jsonlog.setup()
    return serve(configuration.load(args.config))


def cmd_web_pin_hash(args) -> Report:
    import getpass

    from sitegate.web.pins import hash_pin

    if sys.stdin.isatty():  # typed unseen: asked twice, so a slip of the finger never locks a foreman out
        pin = getpass.getpass("PIN (6 digits or more): ")
        if getpass.getpass("the same PIN again: ") != pin:
            raise SitegateError("the two PINs typed differ: nothing was made", "run `sitegate web pin-hash` again")
    else:
        pin = sys.stdin.readline()
    line = f'pin_hash = "{hash_pin(pin)}"'
    note = "paste it into a [[web.foreman]] table beside the foreman's name, then `sitegate config check`"
    return Report({"pin_hash": line.split('"')[1]}, line, notes=[note])


def cmd_web_make_cert(args) -> Report:
    """The device's own certificate for the page's HTTPS: self-signed, for the gate's address on the site network."""
    import hashlib

    from cryptography import x509
    from cryptography.hazmat.primitives.serialization import Encoding

    from sitegate.service.credentials import make_self_signed

    config = configuration.load(args.config)
    directory = Path(args.dir) if args.dir else config.data_dir / "web-tls"
    key, cert = make_self_signed(directory, f"sitegate-{config.device_id}", hosts=tuple(args.host))
    der = x509.load_pem_x509_certificate(cert.read_bytes()).public_bytes(Encoding.DER)
    fingerprint = ":".join(f"{byte:02X}" for byte in hashlib.sha256(der).digest())
    text = "\n".join(
        [
            "put these two lines in [web], then `sitegate config check` and restart sitegate-web:",
            f'tls_cert = "{cert}"',
            f'tls_key = "{key}"',
            f"SHA-256 fingerprint (what a phone shows when it first meets the page): {fingerprint}",
        ]
    )
    return Report({"tls_cert": str(cert), "tls_key": str(key), "sha256": fingerprint}, text)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="sitegate", description=__doc__.splitlines()[0])
    parser.add_argument("--version", action="version", version=f"sitegate {__version__}")
    parser.add_argument(
        "--config", help=f"configuration file (default: ${configuration.ENV_VAR} or {configuration.DEFAULT_PATH})"
    )
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    def command(name, handler, help_text, parent=commands, json_flag=True):
        sub = parent.add_parser(name, help=help_text, description=help_text)
        sub.set_defaults(handler=handler)
        if json_flag:
            sub.add_argument("--json", action="store_true", help="print JSON for scripts")
        return sub

    config_cmd = commands.add_parser("config", help="check or show the configuration")
    config_sub = config_cmd.add_subparsers(dest="action", required=True, metavar="ACTION")
    check_cmd = command("check", cmd_config_check, "validate the configuration, listing every problem", config_sub)
    check_cmd.add_argument("--online", action="store_true", help="also obtain a token from the service now")
    example_cmd = command(
        "example", cmd_config_example, "print a commented example configuration", config_sub, json_flag=False
    )
    example_cmd.add_argument(
        "--data-dir", metavar="DIR", help="write this as device.data_dir (make install: its state directory)"
    )

    key_cmd = commands.add_parser("key", help="the device's signing key")
    key_sub = key_cmd.add_subparsers(dest="action", required=True, metavar="ACTION")
    command("show", cmd_key_show, "print the public key and its fingerprint", key_sub)
    replace_cmd = command(
        "replace",
        cmd_key_replace,
        "the key is lost: start a new one that continues the log (signed, naming you)",
        key_sub,
    )
    replace_cmd.add_argument("--reason", required=True, help="why (kept in the signed record)")

    verify_cmd = command("verify", cmd_verify, "check every signature, the hash chain and the sequence")
    verify_cmd.add_argument("--export", metavar="FILE", help="verify an export file instead of the live database")
    verify_cmd.add_argument("--fingerprint", help="also require this key fingerprint (as printed on paper)")
    verify_cmd.add_argument(
        "--checkpoint",
        metavar="SEQ:HASH",
        help="also prove the log extends this earlier checkpoint (SEQ:HASH, or a paper listing's QR text)",
    )
    verify_cmd.add_argument(
        "--acknowledge",
        action="store_true",
        help="once the findings were looked into: a signed record naming you; checkpoints resume",
    )

    export_cmd = command("export", cmd_export, "write the signed records and public key as JSON lines", json_flag=False)
    export_cmd.add_argument("--out", required=True, metavar="FILE")

    outage_cmd = command("outage", cmd_outage, "current and past outages, their evidence and what to do")
    outage_cmd.add_argument(
        "words",
        nargs="*",
        metavar="reference REF",
        help="`sitegate outage reference REF` records the contact centre's reference number",
    )
    outage_cmd.add_argument(
        "--lang", choices=("fr", "nl", "en"), help="language of the guidance (default: site.language)"
    )
    outage_cmd.add_argument("--employer", metavar="KBO", help="the reference is for this employer only (KBO/BCE)")

    paper_cmd = commands.add_parser("paper", help="the emergency paper attendance listing")
    paper_sub = paper_cmd.add_subparsers(dest="action", required=True, metavar="ACTION")
    paper_print = command("print", cmd_paper_print, "print the day's attendance listing", paper_sub)
    paper_print.add_argument("--date", help="YYYY-MM-DD (default: today in Brussels)")
    paper_print.add_argument("--reference", help="the contact centre's reference number")
    paper_print.add_argument("--format", choices=("pdf", "escpos"), help="default: printer.format")
    paper_print.add_argument("--out", metavar="FILE", help="write to a file instead of a printer")
    paper_print.add_argument("--printer", metavar="NAME", help="CUPS printer name (default: printer.cups_name)")
    paper_print.add_argument("--with-roster", action="store_true", help="add roster workers who did not badge")
    paper_print.add_argument("--employer", metavar="KBO", help="only this employer's workers (KBO/BCE number)")
    paper_print.add_argument(
        "--lang", choices=("fr", "nl", "en"), help="language of the listing (default: site.language)"
    )

    command("status", cmd_status, "the device's health; exit 0 ok, 1 warning, 2 critical")
    command("fleet", cmd_fleet, "every gate of every site on the broker, one line each, worst first")
    command("metrics", cmd_metrics, "the Prometheus metrics the daemon writes as a node_exporter textfile")
    site_cmd = command(
        "site", cmd_site, "who is on the whole site now (every gate of the site bus), and the gates' state"
    )
    site_cmd.add_argument("action", nargs="?", choices=("acknowledge",), help="acknowledge the rejected messages")
    site_cmd.add_argument("--reason", help="with acknowledge: what you found (kept in the signed record)")
    site_cmd.add_argument("--lang", choices=("fr", "nl", "en"), help="language (default: site.language)")
    command("doctor", cmd_doctor, "commissioning: test reader, signals, printer, service, clock, disk, watchdog")
    command("run", cmd_run, "run the gate (the systemd service runs this)", json_flag=False)
    command("queue", cmd_queue, "what is pending, in flight, delivered and rejected")
    forward_cmd = command("forward", cmd_forward, "send pending registrations to the service now")
    forward_cmd.add_argument("--once", action="store_true", required=True, help="drain once and stop")
    command("clock", cmd_clock, "how good the clock is: source, offset, records to re-date (remark 32)")
    command("remarks", cmd_remarks, "remarks and refusals that need someone's action, soonest deadline first")

    sim_cmd = command("simulator", cmd_simulator, "run the local service simulator", json_flag=False)
    sim_cmd.add_argument("--host", default="127.0.0.1")
    sim_cmd.add_argument("--port", type=int, default=8765, help="0 picks a free port (printed)")
    sim_cmd.add_argument("--tls", action="store_true", help="serve HTTPS with a self-signed certificate")
    sim_cmd.add_argument("--tls-dir", help="where to write the simulator's key and certificate")
    sim_cmd.add_argument("--delay", type=int, default=900, help="reception delay behind remark 32, seconds")
    sim_cmd.add_argument("--persons", help="file of known NISS numbers; others get remark 15")
    sim_cmd.add_argument("--trust", help="the gate's certificate (PEM) whose SOAP signatures are accepted")

    demo_cmd = command("demo", cmd_demo, "run a demonstration site on this machine", json_flag=False)
    demo_cmd.add_argument(
        "--dir", help="where to keep the demo's files (default: ./demo-data, ./demo-site-data; replaced at each run)"
    )
    demo_cmd.add_argument("--interactive", action="store_true", help="keep the gate running for badging by hand")
    demo_cmd.add_argument("--site", action="store_true", help="two gates of one site on a local mosquitto (site bus)")

    web_cmd = commands.add_parser("web", help="the foreman's page: serve it, hash a PIN, make its certificate")
    web_sub = web_cmd.add_subparsers(dest="action", required=True, metavar="ACTION")
    command("serve", cmd_web_serve, "serve the foreman's page (sitegate-web.service runs this)", web_sub, False)
    command(
        "pin-hash", cmd_web_pin_hash, "hash a foreman's PIN for the configuration (read from the terminal)", web_sub
    )
    cert_cmd = command(
        "make-cert", cmd_web_make_cert, "make the device's own certificate for the page's HTTPS", web_sub
    )
    cert_cmd.add_argument("--host", action="append", required=True, help="the gate's address (repeatable)")
    cert_cmd.add_argument("--dir", help="where to write it (default: DATA_DIR/web-tls)")

    roster_cmd = commands.add_parser("roster", help="badge to worker table")
    roster_sub = roster_cmd.add_subparsers(dest="action", required=True, metavar="ACTION")
    roster_import = command(
        "import", cmd_roster_import, "replace the roster from a CSV file", roster_sub, json_flag=False
    )
    roster_import.add_argument("file", metavar="FILE.csv")
    roster_import.add_argument("--skip-bad", action="store_true", help="import the good rows even if some are bad")
    command("list", cmd_roster_list, "show the roster (personal numbers masked)", roster_sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    try:
        args = build_parser().parse_args(argv)
        result = args.handler(args)
        code = emit(result, getattr(args, "json", False)) if isinstance(result, Report) else result
        sys.stdout.flush()  # a reader gone away shows here, not as a traceback at exit
        return code
    except BrokenPipeError:
        # `sitegate remarks | head`: the reader took what it wanted; nothing more to say, and no traceback.
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return PIPE_CLOSED
    except SitegateError as error:
        print(f"error: {error.problem}", file=sys.stderr)
        if error.fix:
            print(f"fix: {error.fix}", file=sys.stderr)
        return CRITICAL
    except sqlite3.DatabaseError as error:
        print(f"error: the database cannot be used: {error}", file=sys.stderr)
        print("fix: check the disk (`df`, `dmesg`), then `sitegate verify`; keep the file as evidence", file=sys.stderr)
        return CRITICAL
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    sys.exit(main())
