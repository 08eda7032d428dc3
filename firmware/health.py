"""Every health rule in one place, one threshold each: the daemon, `sitegate status` and the metrics use these.

A rule takes facts and returns findings, each with its severity and a sentence that says what to do. Findings
marked `registration_impossible` are our side's faults that stop the gate registering (a reader offline, a full
disk): the outage probes take them as evidence, and the procedure grants no exemption for them.
"""

from __future__ import annotations

from dataclasses import dataclass

from sitegate.clock import ClockState
from sitegate.clock.timefmt import show
from sitegate.errors import SitegateError
from sitegate.paper_fallback.guidance import OutageState
from sitegate.queue.checkpoints import Judgement, WitnessVerdict
from sitegate.queue.delivery import QueueSummary
from sitegate.queue.failures import Cause, Symptom
from sitegate.queue.records import Record

WARNING, CRITICAL = "warning", "critical"
LOW_DISK_BYTES = 200 * 2**20  # below this, say so before the disk is full and badges are refused
FULL_DISK_BYTES = 2**20  # below this a badge's record (a few KiB with its WAL frames) no longer fits: refused


@dataclass(frozen=True)
class Finding:
    severity: str
    text: str
    registration_impossible: bool = False


def daemon(state: str, heartbeat_age: float | None) -> list[Finding]:
    if state == "running":
        return []
    look = "`systemctl status sitegate`, `journalctl -u sitegate`"
    if state == "stalled":
        return [
            Finding(
                CRITICAL,
                f"the daemon is stalled: no heartbeat for {heartbeat_age:.0f} s and it never said it stopped (hung, "
                f"killed, or the power went); the gate may not answer badges: {look}",
            )
        ]
    return [Finding(CRITICAL, f"the daemon is not running: {look}")]


def start_failure(failure: dict | None) -> list[Finding]:
    """Why the daemon last failed to start, as it left it: the fix, not a pointer back to `sitegate status`."""
    if failure is None:
        return []
    text = f"the daemon failed to start at {show(failure['utc'])}: {failure['problem']}"
    return [Finding(CRITICAL, f"{text} — fix: {failure['fix']}" if failure.get("fix") else text)]


def device_key(problem: SitegateError | None) -> list[Finding]:
    """A key the daemon cannot sign with stops its next start (a running daemon still holds its key)."""
    return [Finding(CRITICAL, f"{problem.problem}: the daemon cannot start — fix: {problem.fix}")] if problem else []


def readers(offline: list[str]) -> list[Finding]:
    return [
        Finding(CRITICAL, f"reader {name} is offline: check its cable and `journalctl -u sitegate`", True)
        for name in offline
    ]


def own_faults(offline_readers: list[str], free_bytes: int) -> list[tuple[Symptom, str]]:
    """Faults on our side that make registration impossible: the procedure gives no exemption for these.

    The clock is not one of them: badges are still registered; an unsynced clock is a warning (status, signal,
    remark 32 risk) for the provider, never a reason to send the foreman to the emergency procedure."""
    return [(Symptom.DEVICE, f.text) for f in readers(offline_readers) + disk(free_bytes) if f.registration_impossible]


def disk(free_bytes: int) -> list[Finding]:
    """Badges register until SQLite finds the disk full; only then are new badges refused (nothing stored is lost)."""
    if free_bytes >= LOW_DISK_BYTES:
        return []
    free_space = "free space now (old exports, journal: `journalctl --vacuum-size=50M`)"
    if free_bytes < FULL_DISK_BYTES:
        text = f"the data partition is full ({free_bytes // 1024} KiB free): new badges are refused; {free_space}"
        return [Finding(CRITICAL, text, True)]
    text = (
        f"only {free_bytes // 2**20} MiB free on the data partition: badges still register, but once it is full "
        f"new badges are refused (nothing stored is lost); {free_space}"
    )
    return [Finding(CRITICAL, text)]


def backlog(summary: QueueSummary, reception_delay_s: int) -> list[Finding]:
    """Remark 32 comes at the reception delay: warn at half of it, critical at it."""
    age = summary.oldest_pending_age_s or 0
    if age >= reception_delay_s:
        text = (
            f"the oldest undelivered registration is {age:.0f} s old (reception delay {reception_delay_s} s: "
            "remark 32): see `sitegate queue` and `sitegate outage`"
        )
        return [Finding(CRITICAL, text)]
    if age >= reception_delay_s / 2:
        return [Finding(WARNING, f"the oldest undelivered registration is {age:.0f} s old")]
    return []


FLAKY_SHARE, FLAKY_MIN_CALLS = 0.25, 6  # one send in four failing, over enough calls to mean something


def flaky(calls: int, failed: int, worst_wait_s: float | None, outage_open: bool) -> list[Finding]:
    """A service that fails most calls but answers one every few minutes opens no outage: registration works, late.
    Say it, with the share of failed sends and the delay, rather than nothing (an outage has its own lines)."""
    if outage_open or calls < FLAKY_MIN_CALLS or failed / calls < FLAKY_SHARE:
        return []
    waited = f"; registrations waited up to {worst_wait_s / 60:.0f} min" if worst_wait_s else ""
    text = (
        f"delivery is unreliable: {failed} of {calls} sends failed in the last hour ({failed / calls:.0%}){waited}. "
        "Not an outage (the service still answers): no exemption, workers badge as usual; if it lasts, tell the "
        "provider (`sitegate queue`, `sitegate outage --json`)"
    )
    return [Finding(WARNING, text)]


def delivery(summary: QueueSummary) -> list[Finding]:
    found = []
    if summary.last_error_class == Cause.OURS and summary.undelivered:
        found.append(Finding(CRITICAL, f"delivery fails on our side: {summary.last_error} — the provider must act"))
    if summary.rejected:
        found.append(Finding(WARNING, f"{summary.rejected} registration(s) refused by the service: `sitegate remarks`"))
    return found


def clock(state: str, dispute: str | None = None) -> list[Finding]:
    """A clock that is not synced (or that the service's Date disputes) is a warning and a provider task;
    registrations are still accepted."""
    if state == ClockState.SYNCED:
        return []
    return [Finding(WARNING, f"clock {state}: {dispute or '`sitegate clock`'}")]


def episode(current: dict | None, never_connected: bool) -> list[Finding]:
    """Suspected: a warning at once. An outage: a warning when workers are exempt, critical when they are not."""
    found = []
    if current and current["state"] == OutageState.SUSPECTED:
        text = (
            f"registration failing since {show(current['start_utc'])} ({current['cause']}, suspected: an outage opens "
            "after the grace period): `sitegate outage`"
        )
        found.append(Finding(WARNING, text))
    elif current and current["state"] == OutageState.OPEN:
        text = f"outage since {show(current['start_utc'])} ({current['cause']}): `sitegate outage` says what to do"
        found.append(Finding(WARNING if current["exempt"] else CRITICAL, text))
    if never_connected:
        found.append(Finding(WARNING, "never connected: no registration has ever been delivered (`sitegate outage`)"))
    return found


def witnesses(verdicts: list[WitnessVerdict], recorded: list[Record]) -> list[Finding]:
    """A log that does not extend a witness (shorter than a checkpoint or a delivery, or replaced) is critical: a
    registration may have been made to disappear. The gate keeps registering. A witness gone missing is a warning,
    and so is each finding the daemon recorded in the log that nobody has acknowledged yet (a head file deleted
    and written again, a cut since acknowledged and found again)."""
    found = [
        Finding(
            CRITICAL,
            f"{v.text}: keep every file as evidence, `sitegate verify`, report it to the site manager; once looked "
            "into, `sitegate verify --acknowledge`",
        )
        for v in verdicts
        if v.broken
    ]
    found += [Finding(WARNING, v.text) for v in verdicts if v.state == Judgement.MISSING]
    return found + [
        Finding(
            WARNING,
            f"the log records witness findings at seq {r.seq} ({r.wall_utc[:10]}): {'; '.join(r.data['texts'])}; "
            "once looked into, `sitegate verify --acknowledge`",
        )
        for r in recorded
    ]


def site_bus(connected: bool, stale: list[str], rejected_recently: int, rejected_in_all: int) -> list[Finding]:
    """The site bus is never needed to register: its problems are warnings (the site view may be incomplete)."""
    findings = []
    if not connected:
        text = "the site bus is not connected: this gate decides and lists with its own records only; check the broker"
        findings.append(Finding(WARNING, text))
    if stale:
        text = f"not heard from {', '.join(stale)}: their latest workers may be missing here; `sitegate site`"
        findings.append(Finding(WARNING, text))
    if rejected_recently:  # a recent rate: one old forged message must not keep every gate amber for ever
        text = (
            f"{rejected_recently} message(s) from the bus failed verification and were rejected in the last hour "
            f"({rejected_in_all} in all): see `sitegate site`; once looked into, `sitegate site acknowledge`"
        )
        findings.append(Finding(WARNING, text))
    return findings
