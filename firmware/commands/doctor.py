"""`sitegate doctor`: the commissioning test, kept as a signed record."""

from __future__ import annotations

from sitegate import doctor
from sitegate.clock import SYSTEM
from sitegate.commands.device import open_device
from sitegate.output import Report, severity, table


def commission(args) -> Report:
    steps, seq = doctor.run(open_device(args, signing=True), SYSTEM)
    rows = ([step.name, step.result.upper(), step.detail, step.fix] for step in steps)
    results = [step.result for step in steps]
    counts = {result: results.count(result) for result in (doctor.PASS, doctor.WARN, doctor.FAIL, doctor.SKIP)}
    summary = (
        f"{counts[doctor.PASS]} passed, {counts[doctor.WARN]} warning(s), {counts[doctor.FAIL]} failed, "
        f"{counts[doctor.SKIP]} skipped (not tested)"
    )
    text = table(rows, ["step", "result", "detail", "fix"]) + f"\n{summary}\ncommissioning record {seq} (signed)"
    code = severity(counts[doctor.FAIL], counts[doctor.WARN])
    return Report({"record": seq, "counts": counts, "steps": [step.__dict__ for step in steps]}, text, code)
