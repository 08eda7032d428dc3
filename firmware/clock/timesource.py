"""Where the device learns how good its clock is: chrony, then systemd-timesyncd, then a direct NTP query.

Each source gives a TimeReading; subprocess runners and the NTP client are injected so tests feed real
output captured from those tools, and a real chronyd on loopback.
"""

from __future__ import annotations

import subprocess
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import ntplib


@dataclass(frozen=True)
class TimeReading:
    source: str
    synced: bool
    offset_s: float | None  # positive: the local clock is behind true time
    max_error_s: float | None
    detail: str = ""


Runner = Callable[[Sequence[str]], str]


def run_command(command: Sequence[str]) -> str:
    return subprocess.run(command, capture_output=True, text=True, timeout=5, check=True).stdout


def parse_chrony(output: str) -> TimeReading:
    """`chronyc -c -m tracking sources`: the tracking line (14 comma-separated fields), then a line per source.

    The clock's error is the larger of two figures. Tracking's field 5, the system time, is how far chronyd still
    has to move the clock (positive: local clock behind). The selected source's (`*`) last sample, as adjusted for
    every correction applied since (sources' field 8; positive: local clock ahead), is what chronyd measured and
    could not apply (a failed step). Tracking's last offset (field 6) is not used: after chronyd steps the clock it
    goes on reporting the offset it has just applied until its next update, and trusted, it dated registrations 3
    hours ahead on the arm64 VM. Fields 11 and 12 (root delay, root dispersion) bound the error; field 14 is the leap
    status.
    """
    lines = output.strip().splitlines() or [""]
    fields = lines[0].strip().split(",")
    if len(fields) != 14:
        raise ValueError(f"chronyc tracking: expected 14 fields, got {len(fields)}: {lines[0].strip()[:120]!r}")
    system = float(fields[4])
    sources = [line.split(",") for line in lines[1:]]
    selected = next((source for source in sources if len(source) == 10 and source[1] == "*"), None)
    sample = -float(selected[7]) if selected else 0.0
    offset = system if abs(system) >= abs(sample) else sample
    root_delay, root_dispersion = float(fields[10]), float(fields[11])
    leap = fields[13]
    synced = leap != "Not synchronised" and int(fields[2]) > 0
    return TimeReading(
        "chrony",
        synced,
        round(offset, 6),
        round(root_dispersion + root_delay / 2 + abs(offset), 6),
        f"reference {fields[1]} stratum {fields[2]}, leap status {leap}",
    )


def parse_timesyncd(text: str) -> TimeReading:
    """`timedatectl show-timesync` (NTPMessage holds the last exchange) plus `timedatectl show`."""
    values = dict(line.split("=", 1) for line in text.splitlines() if "=" in line)
    synced = values.get("NTPSynchronized") == "yes"
    return TimeReading("timesyncd", synced, None, None, f"server {values.get('ServerName', '?')}")


def chrony(runner: Runner = run_command, host: str | None = None, port: int | None = None) -> TimeReading:
    command = ["chronyc", "-c"]
    if host:
        command += ["-h", host]
    if port:
        command += ["-p", str(port)]
    return parse_chrony(runner([*command, "-m", "tracking", "sources"]))


def timesyncd(runner: Runner = run_command) -> TimeReading:
    return parse_timesyncd(runner(["timedatectl", "show"]) + runner(["timedatectl", "show-timesync"]))


def ntp(server: str, client: ntplib.NTPClient | None = None, port: int = 123) -> TimeReading:
    """A direct query: the offset is measured, but whether the system clock is disciplined is not known."""
    response = (client or ntplib.NTPClient()).request(server, version=4, port=port, timeout=3)
    return TimeReading(
        "ntp",
        False,
        round(response.offset, 6),
        round(response.root_delay / 2 + response.root_dispersion + response.delay / 2, 6),
        f"server {server} stratum {response.stratum}",
    )


NO_SOURCE_FIX = "fix: `systemctl status chrony` (start it, or install chrony), or set clock.ntp_server"


def describe(error: Exception) -> str:
    """A time source's failure as a technician reads it, never a raw exception."""
    if isinstance(error, FileNotFoundError):
        return f"{error.filename or 'the program'} is not installed"
    if isinstance(error, subprocess.CalledProcessError):
        said = (error.stderr or error.stdout or "").strip().splitlines()
        return f"{error.cmd[0]} failed (exit {error.returncode}){': ' + said[0] if said else ''}"
    if isinstance(error, subprocess.TimeoutExpired):
        return f"{error.cmd[0]} did not answer within {error.timeout:.0f} s"
    if isinstance(error, ntplib.NTPException):
        return "the NTP server did not answer"
    if isinstance(error, OSError):  # ntplib does not wrap DNS errors: a name that does not resolve is an OSError
        return f"unreachable ({error.strerror or error})"
    return f"an answer that cannot be read ({error})"


def best_reading(sources: Sequence[Callable[[], TimeReading]]) -> TimeReading:
    """The first source that answers, in order; a source that is absent or fails is skipped."""
    problems = []
    for source in sources:
        try:
            return source()
        except (OSError, subprocess.SubprocessError, ValueError, ntplib.NTPException) as error:
            problems.append(f"{getattr(source, '__name__', source)}: {describe(error)}")
    return TimeReading("none", False, None, None, f"no time source answered ({'; '.join(problems)}) — {NO_SOURCE_FIX}")
