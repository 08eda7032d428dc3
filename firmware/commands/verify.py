"""`sitegate verify`: the signatures, the hash chain and the sequence, against every witness of the log's end."""

from __future__ import annotations

from pathlib import Path

from sitegate.commands.device import open_device
from sitegate.commissioning import actor
from sitegate.device import Device
from sitegate.errors import VerificationError
from sitegate.output import CRITICAL, Report, flagged, progress, severity
from sitegate.queue import checkpoints, database
from sitegate.queue import verify as verifier
from sitegate.queue.records import Kind


def _export_witnesses(header: dict) -> list[checkpoints.Witness]:
    try:
        return [
            checkpoints.Witness.from_dict({**w, "name": f"{w['name']} (in the export)"})
            for w in header.get("witnesses", [])
        ]
    except (ValueError, TypeError, KeyError) as error:
        raise VerificationError(None, f"the export's header holds a witness that is not one: {error}") from None


def verify(args) -> Report:
    given = checkpoints.parse(args.checkpoint) if args.checkpoint else None
    device = None
    if args.export:
        header, records = verifier.read_export(Path(args.export))
        public_key, total, source, device_id = header["public_key"], None, args.export, header.get("device_id")
        witnesses = _export_witnesses(header)
    else:
        device = open_device(args, signing=args.acknowledge)
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
    ) + flagged(change.text for change in report.key_changes)
    text += "".join(f"\n{v.text}" for v in verdicts)
    if not witnesses:
        text += "\nno checkpoint to compare the log's end with (the daemon takes the first one at start)"
    missing = any(v.state == checkpoints.Judgement.MISSING for v in verdicts)
    if broken:
        notes.append(
            "fix: keep the database, the ledger and the head file as evidence; report it to the site manager; "
            "once looked into, `sitegate verify --acknowledge` (a signed record naming you)"
        )
    warned = missing or notes or report.key_changes
    return Report(result, text, severity(broken, warned), notes)


def _acknowledged(device: Device, verdicts: list, acknowledge: bool) -> tuple[list, list[str]]:
    """The live log's verdicts as acknowledged so far; with --acknowledge, first a signed record naming the
    technician and every finding open now (broken witnesses, missing ones, findings the daemon recorded)."""
    recorded = checkpoints.unacknowledged(device.log)
    open_now = [v for v in verdicts if v.broken or v.state == checkpoints.Judgement.MISSING]
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
