"""The roster: which badge belongs to which worker, for which company, for how long.

Imported from a CSV file (UTF-8, comma or semicolon separated, header row) and replaced atomically: a file with a
bad row imports nothing unless the caller accepts skipping bad rows.
"""

from __future__ import annotations

import csv
import io
import unicodedata
from dataclasses import asdict, dataclass
from datetime import date
from pathlib import Path

import sqlite_utils

from sitegate.domain.identifiers import WorkerId, mask, normalise_badge_uid, normalise_enterprise_number
from sitegate.errors import IdentifierError, RosterError
from sitegate.ownership import current_user, ownership
from sitegate.queue.database import immediate

REQUIRED_COLUMNS = ("badge_uid", "last_name", "first_name", "employer")
OPTIONAL_COLUMNS = ("niss", "limosa", "valid_from", "valid_until", "role")
WORKER, FOREMAN = "worker", "foreman"  # roster roles: a foreman's badge also prints the day's listing
ROLES = {"": WORKER, WORKER: WORKER, FOREMAN: FOREMAN}


@dataclass(frozen=True)
class Worker:
    badge_uid: str
    worker: WorkerId
    last_name: str
    first_name: str
    employer: str
    valid_from: date | None = None
    valid_until: date | None = None
    role: str = WORKER

    def valid_on(self, day: date) -> bool:
        return (self.valid_from is None or self.valid_from <= day) and (
            self.valid_until is None or day <= self.valid_until
        )

    def row(self) -> dict:
        return {
            "badge_uid": self.badge_uid,
            "worker_kind": self.worker.kind,
            "worker_number": self.worker.number,
            "last_name": self.last_name,
            "first_name": self.first_name,
            "employer": self.employer,
            "valid_from": self.valid_from.isoformat() if self.valid_from else None,
            "valid_until": self.valid_until.isoformat() if self.valid_until else None,
            "role": self.role,
        }

    @classmethod
    def from_row(cls, row: dict) -> Worker:
        return cls(
            badge_uid=row["badge_uid"],
            worker=WorkerId(row["worker_kind"], row["worker_number"]),
            last_name=row["last_name"],
            first_name=row["first_name"],
            employer=row["employer"],
            valid_from=date.fromisoformat(row["valid_from"]) if row["valid_from"] else None,
            valid_until=date.fromisoformat(row["valid_until"]) if row["valid_until"] else None,
            role=row.get("role") or WORKER,
        )

    def masked(self) -> dict:
        """For screens and logs: the personal number masked."""
        data = asdict(self)
        data["worker"] = {"kind": self.worker.kind, "number": self.worker.masked}
        data["valid_from"] = self.valid_from.isoformat() if self.valid_from else None
        data["valid_until"] = self.valid_until.isoformat() if self.valid_until else None
        return data


@dataclass(frozen=True)
class BadRow:
    line: int
    reason: str

    def __str__(self) -> str:
        return f"line {self.line}: {self.reason}"


@dataclass(frozen=True)
class ParsedRoster:
    workers: list[Worker]
    bad_rows: list[BadRow]
    warnings: list[str]


def _date(text: str, field: str) -> date | None:
    text = (text or "").strip()
    if not text:
        return None
    try:
        return date.fromisoformat(text)
    except ValueError:
        raise IdentifierError(f"{field}: {text!r} is not a date", "write dates as YYYY-MM-DD") from None


def _worker(row: dict) -> Worker:
    for column in ("last_name", "first_name"):
        if not (row.get(column) or "").strip():
            raise IdentifierError(f"{column}: empty", "the paper listing needs the worker's last and first name")
    role = ROLES.get((row.get("role") or "").strip().lower())
    if role is None:
        raise IdentifierError(f"role: {row['role']!r} is not one of worker, foreman", "leave it empty or write foreman")
    worker = Worker(
        badge_uid=normalise_badge_uid(row.get("badge_uid") or ""),
        worker=WorkerId.parse(row.get("niss") or "", row.get("limosa") or "", "worker"),
        last_name=row["last_name"].strip(),
        first_name=row["first_name"].strip(),
        employer=normalise_enterprise_number(row.get("employer") or "", "employer"),
        valid_from=_date(row.get("valid_from"), "valid_from"),
        valid_until=_date(row.get("valid_until"), "valid_until"),
        role=role,
    )
    if worker.valid_from and worker.valid_until and worker.valid_until < worker.valid_from:
        raise IdentifierError("valid_until is before valid_from", "swap or correct the two dates")
    return worker


def parse_csv(text: str, site_employers: tuple[str, ...] = ()) -> ParsedRoster:
    """Parse roster CSV text; every bad row is reported with its line number and reason."""
    text = text.removeprefix("\ufeff")
    first_line = text.split("\n", 1)[0]
    delimiter = ";" if first_line.count(";") > first_line.count(",") else ","
    reader = csv.DictReader(io.StringIO(text), delimiter=delimiter)
    header = [name.strip().lower() for name in (reader.fieldnames or [])]
    missing = [c for c in REQUIRED_COLUMNS if c not in header]
    if missing or not ({"niss", "limosa"} & set(header)):
        need = missing + ([] if {"niss", "limosa"} & set(header) else ["niss or limosa"])
        raise RosterError(
            f"roster header lacks column(s): {', '.join(need)} (found: {', '.join(header) or 'nothing'})",
            f"the first line must name the columns: {', '.join(REQUIRED_COLUMNS + OPTIONAL_COLUMNS)}",
        )
    reader.fieldnames = header
    workers, bad, warnings, seen, persons = [], [], [], {}, {}
    for row in reader:
        line = reader.line_num
        if not any((value or "").strip() for value in row.values() if isinstance(value, str)):
            continue  # blank line
        try:
            worker = _worker(row)
        except IdentifierError as error:
            bad.append(BadRow(line, str(error)))
            continue
        if worker.badge_uid in seen:
            bad.append(BadRow(line, f"badge {worker.badge_uid} is already given to line {seen[worker.badge_uid]}"))
            continue
        seen[worker.badge_uid] = line
        person = (worker.worker.kind, worker.worker.number)
        if person in persons:
            warnings.append(
                f"line {line}: worker {mask(worker.worker.number)} already has badge {persons[person][1]} (line "
                f"{persons[person][0]}): two badges for one worker register them twice; remove the old one if it was "
                "replaced"
            )
        persons.setdefault(person, (line, worker.badge_uid))
        if site_employers and worker.employer not in site_employers:
            warnings.append(
                f"line {line}: employer {worker.employer} is not among the site's companies "
                "(remark 1 would follow); add it to site.employers if it works here"
            )
        workers.append(worker)
    return ParsedRoster(workers, bad, warnings)


def read_csv(path: Path, site_employers: tuple[str, ...] = ()) -> ParsedRoster:
    try:
        text = Path(path).read_text(encoding="utf-8")
    except UnicodeDecodeError as error:
        raise RosterError(f"{path} is not UTF-8 text ({error})", "save the file as CSV UTF-8") from None
    except PermissionError:
        raise RosterError(
            f"{path} cannot be read by {current_user()}, the user sitegate runs as ({ownership(Path(path))})",
            f"copy it where that user can read it (`install -m 0644 {path} /tmp/roster.csv`) and import that copy",
        ) from None
    except OSError as error:
        raise RosterError(f"{path} cannot be read: {error.strerror}", "check the path (`ls -l` it)") from None
    return parse_csv(text, site_employers)


class RosterStore:
    def __init__(self, db: sqlite_utils.Database) -> None:
        self.db = db

    def replace(self, workers: list[Worker]) -> None:
        """Swap the whole roster in one transaction: readers see the old one or the new one, never a mix."""
        with immediate(self.db):
            self.db.execute("DELETE FROM roster")
            self.db["roster"].insert_all(worker.row() for worker in workers)

    def lookup(self, badge_uid: str) -> Worker | None:
        """On the badge path: one indexed SELECT, without sqlite-utils' table introspection."""
        cursor = self.db.conn.execute("SELECT * FROM roster WHERE badge_uid = ?", [badge_uid])
        row = cursor.fetchone()
        return Worker.from_row(dict(zip([c[0] for c in cursor.description], row, strict=True))) if row else None

    def all(self) -> list[Worker]:
        """Every worker, sorted by name as people expect (Çelik among the C, Ødegård among the O)."""
        workers = [Worker.from_row(row) for row in self.db["roster"].rows]
        return sorted(workers, key=lambda w: (sort_key(w.last_name), sort_key(w.first_name)))


def sort_key(name: str) -> str:
    decomposed = unicodedata.normalize(
        "NFKD", name.replace("Ø", "O").replace("ø", "o").replace("Ł", "L").replace("ł", "l")
    )
    return "".join(c for c in decomposed if not unicodedata.combining(c)).casefold()
