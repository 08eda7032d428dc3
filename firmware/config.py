"""The device configuration: one TOML file, validated at start with every problem listed at once.

Each problem names its key path and the fix; checks anticipate the service's remarks 4, 10, 25, 36, 37 and 38
(see ciaw/remarks.csv) so a typing error is caught at the gate, not weeks later in a remark.
"""

from __future__ import annotations

import os
import re
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from sitegate.errors import ConfigError, IdentifierError
from sitegate.identifiers import normalise_enterprise_number, normalise_works_declaration

DEFAULT_PATH = Path("/etc/sitegate/sitegate.toml")
ENV_VAR = "SITEGATE_CONFIG"

# Not published by ONSS (see DESIGN.md): a conservative default, so the device warns early.
DEFAULT_RECEPTION_DELAY_S = 900
REGISTRATION_MODES = ("in_out", "presence")
LANGUAGES = ("fr", "nl", "en")  # what the foreman reads: the outage guidance and the listing's headings
READER_SOURCES = ("mfrc522", "keyboard", "fifo")
DIRECTIONS = ("toggle", "entry", "exit", "presence")
# Belgium's bounding box, slightly widened: coordinates outside it are almost always swapped or mistyped.
BELGIUM_LATITUDE = (49.45, 51.55)
BELGIUM_LONGITUDE = (2.50, 6.45)
_POST_CODE = re.compile(r"^[1-9][0-9]{3}$")
_DEVICE_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_-]{0,11}$")


@dataclass(frozen=True)
class Problem:
    path: str
    message: str
    fix: str = ""
    severity: str = "error"  # "error" stops the device; "warning" is reported and tolerated

    def __str__(self) -> str:
        text = f"{self.path}: {self.message}"
        return f"{text} — fix: {self.fix}" if self.fix else text


@dataclass(frozen=True)
class Coordinates:
    latitude: float
    longitude: float


@dataclass(frozen=True)
class Address:
    post_code: str
    municipality: str
    street: str
    house_number: str
    box: str = ""


@dataclass(frozen=True)
class PlaceOfWork:
    coordinates: Coordinates | None
    address: Address | None


@dataclass(frozen=True)
class SiteConfig:
    works_declaration: str | None  # None: a sector without works declarations (cleaning, ...)
    employers: tuple[str, ...]  # KBO/BCE numbers, 10 digits
    place_of_work: PlaceOfWork
    registration_mode: str
    reception_delay_s: int
    employer_names: tuple[tuple[str, str], ...] = ()  # (KBO/BCE number, company name), as printed on the listing
    language: str = "fr"

    def employer_name(self, number: str) -> str:
        return dict(self.employer_names).get(number, "")


@dataclass(frozen=True)
class ReaderConfig:
    name: str
    source: str
    direction: str
    fifo_path: Path
    spi_bus: int
    spi_device: int
    reset_pin: int
    poll_interval_s: float
    same_badge_window_s: float
    input_device: Path | None = None  # keyboard source on the device: /dev/input/by-id/...-event-kbd


@dataclass(frozen=True)
class GpioConfig:
    green_led: int | None
    red_led: int | None
    buzzer: int | None
    print_button: int | None


@dataclass(frozen=True)
class ServiceConfig:
    base_url: str
    token_url: str
    client_id: str
    key_file: Path | None
    cert_file: Path | None
    ca_file: Path | None
    batch_size: int
    connect_timeout_s: float
    read_timeout_s: float


@dataclass(frozen=True)
class GateConfig:
    backlog_warning: int  # undelivered registrations beyond which the gate shows the warning signal
    toggle_reset_hours: float  # an IN older than this no longer makes the next badge an OUT (forgotten OUT)
    heartbeat_s: float


@dataclass(frozen=True)
class PrinterConfig:
    format: str  # "pdf" (A4, to CUPS) or "escpos" (80 mm thermal)
    cups_name: str | None
    escpos: str | None  # usb:VID:PID, serial:DEVICE, network:HOST, file:PATH
    include_roster: bool


@dataclass(frozen=True)
class OutageConfig:
    """The probes that tell which hop failed (all optional): the gateway, a DNS resolver, an independent HTTPS host."""

    probe_interval_s: float
    grace_s: float  # failures for this long before an outage is opened
    summary_every_s: float
    gateway: str = "auto"  # "auto": the default route's gateway; "" : not probed; else HOST or HOST:PORT
    dns_resolver: str = ""  # "": the system's resolver; else HOST or HOST:PORT, asked directly
    reference_url: str = "https://www.belgium.be"  # an HTTPS host independent of the service; "": none
    probe_timeout_s: float = 5.0


@dataclass(frozen=True)
class ClockConfig:
    warn_fraction: float
    ntp_server: str
    trust_system_clock: bool = False  # demo and bench only: no time source is asked


@dataclass(frozen=True)
class Config:
    device_id: str
    data_dir: Path
    site: SiteConfig
    readers: tuple[ReaderConfig, ...]
    gpio: GpioConfig
    service: ServiceConfig
    clock: ClockConfig
    gate: GateConfig = GateConfig(500, 16.0, 60.0)
    printer: PrinterConfig = PrinterConfig("pdf", None, None, False)
    outage: OutageConfig = OutageConfig(60.0, 300.0, 900.0)
    source: str = "<memory>"
    warnings: tuple[Problem, ...] = field(default=(), compare=False)

    @property
    def database_path(self) -> Path:
        return self.data_dir / "sitegate.db"

    @property
    def key_path(self) -> Path:
        return self.data_dir / "device.key"


class _Checker:
    """Reads typed values out of nested TOML tables, collecting problems instead of stopping at the first."""

    def __init__(self) -> None:
        self.problems: list[Problem] = []

    def problem(self, path: str, message: str, fix: str = "", severity: str = "error") -> None:
        self.problems.append(Problem(path, message, fix, severity))

    def table(self, parent: dict, key: str, path: str, known: set[str], required: bool = True) -> dict:
        value = parent.get(key)
        if value is None:
            if required:
                self.problem(path, "missing table", f"add a [{path}] section (see the example config)")
            return {}
        if not isinstance(value, dict):
            self.problem(path, f"must be a table, not {type(value).__name__}", f"write it as [{path}]")
            return {}
        self.unknown_keys(value, path, known)
        return value

    def unknown_keys(self, table: dict, path: str, known: set[str]) -> None:
        for key in sorted(set(table) - known):
            self.problem(
                f"{path}.{key}" if path else key,
                "unknown key",
                f"remove it or correct its spelling (known here: {', '.join(sorted(known))})",
            )

    def value(self, table: dict, key: str, path: str, kind: type | tuple, default: Any = ..., fix: str = "") -> Any:
        full = f"{path}.{key}"
        if key not in table:
            if default is ...:
                self.problem(full, "missing", fix)
            return None if default is ... else default
        value = table[key]
        # TOML booleans are ints in Python; never accept one where a number is meant.
        if (isinstance(value, bool) and kind is not bool) or not isinstance(value, kind):
            names = kind.__name__ if isinstance(kind, type) else " or ".join(k.__name__ for k in kind)
            self.problem(full, f"must be {names}, not {value!r}", fix)
            return None if default is ... else default
        return value

    def text(self, table: dict, key: str, path: str, default: Any = ..., fix: str = "") -> str | None:
        value = self.value(table, key, path, str, default, fix)
        if isinstance(value, str):
            value = value.strip()
            if not value and default is ...:
                self.problem(f"{path}.{key}", "empty", fix)
                return None
        return value

    def number(self, table, key, path, default, low, high, fix: str = "", integer: bool = False):
        value = self.value(table, key, path, int if integer else (int, float), default, fix)
        if value is not None and not low <= value <= high:
            self.problem(f"{path}.{key}", f"{value} is out of range {low}..{high}", fix)
            return default if default is not ... else None
        return value

    def choice(self, table, key, path, choices, default=...):
        value = self.text(table, key, path, default, f"one of: {', '.join(choices)}")
        if value is not None and value not in choices:
            self.problem(f"{path}.{key}", f"{value!r} is not one of {', '.join(choices)}", "pick one of those")
            return None
        return value


def _site(checker: _Checker, data: dict) -> SiteConfig | None:
    site = checker.table(
        data,
        "site",
        "site",
        {"works_declaration", "employers", "place_of_work", "registration_mode", "reception_delay_s", "language"},
    )
    works = checker.text(site, "works_declaration", "site", default="")
    if works:
        try:
            works = normalise_works_declaration(works, "site.works_declaration")
        except IdentifierError as error:
            checker.problem("site.works_declaration", error.problem, error.fix)
            works = ""
    elif works is not None:
        checker.problem(
            "site.works_declaration",
            'none: registrations are sent without a works-declaration number and the listing says "none"',
            "fine for a sector without works declarations (cleaning); on a construction site add the number "
            "(remark 10 would follow)",
            severity="warning",
        )
    employers: list[tuple[str, str]] = []
    raw_employers = checker.value(
        site,
        "employers",
        "site",
        list,
        fix='a list of KBO/BCE numbers, or of tables: [{number = "0403.170.701", name = "Bouw NV"}]',
    )
    if raw_employers is not None and not raw_employers:
        checker.problem(
            "site.employers", "empty list", "list every company (contractor, subcontractors) whose workers badge here"
        )
    for index, raw in enumerate(raw_employers or []):
        employer = _employer(checker, raw, f"site.employers[{index}]")
        if employer:
            employers.append(employer)
    language = checker.choice(site, "language", "site", LANGUAGES, default="fr")
    mode = checker.choice(site, "registration_mode", "site", REGISTRATION_MODES, default="in_out")
    delay = checker.number(
        site,
        "reception_delay_s",
        "site",
        DEFAULT_RECEPTION_DELAY_S,
        60,
        7 * 86400,
        "seconds (not published by ONSS; keep the default unless told otherwise)",
        integer=True,
    )
    place = _place_of_work(checker, site)
    if None in (works, mode, place, language) or len(employers) != len(raw_employers or [None]):
        return None
    return SiteConfig(
        works or None,
        tuple(number for number, _ in employers),
        place,
        mode,
        delay,
        tuple((number, name) for number, name in employers if name),
        language,
    )


def _employer(checker: _Checker, raw: object, path: str) -> tuple[str, str] | None:
    """A KBO/BCE number, or a table with the number and the company's name (printed on the listing)."""
    name = ""
    if isinstance(raw, dict):
        checker.unknown_keys(raw, path, {"number", "name"})
        name = checker.text(raw, "name", path, default="") or ""
        raw = checker.text(raw, "number", path, fix="the company's KBO/BCE number")
        if raw is None:
            return None
    try:
        return normalise_enterprise_number(str(raw), path), name
    except IdentifierError as error:
        checker.problem(path, error.problem.removeprefix(f"{path}: "), error.fix)
        return None


def _place_of_work(checker: _Checker, site: dict) -> PlaceOfWork | None:
    place = checker.table(
        site, "place_of_work", "site.place_of_work", {"coordinates", "address", "allow_outside_belgium"}
    )
    if not place:
        return None
    outside_ok = checker.value(place, "allow_outside_belgium", "site.place_of_work", bool, default=False)
    coordinates = _coordinates(checker, place, outside_ok) if "coordinates" in place else None
    address = _address(checker, place) if "address" in place else None
    if "coordinates" not in place and "address" not in place:
        checker.problem(
            "site.place_of_work",
            "neither coordinates nor address (remarks 25 and 37 would follow)",
            "add [site.place_of_work.coordinates] latitude/longitude of the gate, and the address",
        )
        return None
    if "coordinates" not in place:
        checker.problem(
            "site.place_of_work.coordinates",
            "missing: registrations would carry no GPS position (remark 25)",
            "add latitude and longitude of the gate",
            severity="warning",
        )
    if (coordinates is None and "coordinates" in place) or (address is None and "address" in place):
        return None
    return PlaceOfWork(coordinates, address)


def _coordinates(checker: _Checker, place: dict, outside_ok: bool) -> Coordinates | None:
    path = "site.place_of_work.coordinates"
    table = checker.table(place, "coordinates", path, {"latitude", "longitude"})
    lat = checker.number(table, "latitude", path, ..., -90, 90, "decimal degrees, e.g. 50.8466 (remark 36)")
    lon = checker.number(table, "longitude", path, ..., -180, 180, "decimal degrees, e.g. 4.3528 (remark 36)")
    if lat is None or lon is None:
        return None
    if not outside_ok:
        in_lat = BELGIUM_LATITUDE[0] <= lat <= BELGIUM_LATITUDE[1]
        in_lon = BELGIUM_LONGITUDE[0] <= lon <= BELGIUM_LONGITUDE[1]
        if not (in_lat and in_lon):
            swapped = (
                BELGIUM_LATITUDE[0] <= lon <= BELGIUM_LATITUDE[1]
                and BELGIUM_LONGITUDE[0] <= lat <= BELGIUM_LONGITUDE[1]
            )
            checker.problem(
                path,
                f"({lat}, {lon}) is outside Belgium (remark 36 would follow)",
                "latitude and longitude look swapped"
                if swapped
                else "check the coordinates, or set allow_outside_belgium = true for a site abroad",
            )
            return None
    return Coordinates(float(lat), float(lon))


def _address(checker: _Checker, place: dict) -> Address | None:
    path = "site.place_of_work.address"
    table = checker.table(place, "address", path, {"post_code", "municipality", "street", "house_number", "box"})
    parts = {}
    for key, fix in (
        ("post_code", "the 4-digit Belgian post code"),
        ("municipality", "the municipality name as on the works declaration"),
        ("street", "the street name"),
        ("house_number", "the house number (or the nearest one)"),
    ):
        value = checker.value(table, key, path, (str, int), fix=f"{fix} (remark 37 would follow)")
        value = str(value).strip() if value is not None else None
        if value == "":
            checker.problem(f"{path}.{key}", "empty (remark 37 would follow)", fix)
            value = None
        parts[key] = value
    box = checker.text(table, "box", path, default="")
    code = parts["post_code"]
    if code is not None and not _POST_CODE.match(code):
        checker.problem(
            f"{path}.post_code", f"{code!r} is not a Belgian post code (remark 38 would follow)", "4 digits, 1000-9999"
        )
        parts["post_code"] = None
    if None in parts.values():
        return None
    return Address(box=box or "", **parts)


def _optional_path(value: str | None, base: Path) -> Path | None:
    return base / value if value else None


def _readers(checker: _Checker, data: dict, base: Path) -> tuple[ReaderConfig, ...] | None:
    raw = data.get("reader", [{}])
    if isinstance(raw, dict):
        raw = [raw]
    if not isinstance(raw, list) or not raw:
        checker.problem("reader", "must be one [[reader]] table or more", "see the example config")
        return None
    known = {
        "name",
        "input_device",
        "source",
        "direction",
        "fifo_path",
        "spi_bus",
        "spi_device",
        "reset_pin",
        "poll_interval_s",
        "same_badge_window_s",
    }
    readers = []
    for index, table in enumerate(raw):
        path = f"reader[{index}]"
        if not isinstance(table, dict):
            checker.problem(path, "must be a table", "write it as [[reader]]")
            continue
        checker.unknown_keys(table, path, known)
        reader = ReaderConfig(
            name=checker.text(table, "name", path, default=f"gate{index + 1}"),
            source=checker.choice(table, "source", path, READER_SOURCES, default="mfrc522"),
            direction=checker.choice(table, "direction", path, DIRECTIONS, default="toggle"),
            fifo_path=base / (checker.text(table, "fifo_path", path, default="/run/sitegate/badges") or "."),
            spi_bus=checker.number(table, "spi_bus", path, 0, 0, 6, integer=True),
            spi_device=checker.number(table, "spi_device", path, 0, 0, 3, integer=True),
            # BCM 25: the usual wiring. The mfrc522 package's default (BCM 15) is the UART RX pin.
            reset_pin=checker.number(table, "reset_pin", path, 25, 0, 27, "a BCM pin number", integer=True),
            poll_interval_s=checker.number(table, "poll_interval_s", path, 0.05, 0.01, 1.0, "seconds between polls"),
            same_badge_window_s=checker.number(
                table, "same_badge_window_s", path, 60, 0, 3600, "seconds during which the same badge again counts once"
            ),
            input_device=_optional_path(checker.text(table, "input_device", path, default=""), base),
        )
        readers.append(reader)
    names = [r.name for r in readers]
    if len(set(names)) != len(names):
        checker.problem("reader", f"reader names repeat: {names}", "give every [[reader]] its own name")
    if any(None in (r.name, r.source, r.direction) for r in readers):
        return None
    return tuple(readers)


def _gpio(checker: _Checker, data: dict) -> GpioConfig:
    table = checker.table(data, "gpio", "gpio", {"green_led", "red_led", "buzzer", "print_button"}, required=False)
    pins = {
        key: checker.number(table, key, "gpio", default, 0, 27, "a BCM pin number", integer=True)
        for key, default in (("green_led", 17), ("red_led", 27), ("buzzer", 22), ("print_button", None))
    }
    used = [p for p in pins.values() if p is not None]
    if len(set(used)) != len(used):
        checker.problem("gpio", f"two functions share a pin: {pins}", "give each LED, buzzer and button its own pin")
    return GpioConfig(**pins)


def _service(checker: _Checker, data: dict, base: Path) -> ServiceConfig:
    path = "service"
    table = checker.table(
        data,
        "service",
        path,
        {
            "base_url",
            "token_url",
            "client_id",
            "key_file",
            "cert_file",
            "ca_file",
            "batch_size",
            "connect_timeout_s",
            "read_timeout_s",
        },
        required=False,
    )
    url_fix = "an https:// address (http:// only for the local simulator on 127.0.0.1)"
    urls = {}
    for key, default in (
        ("base_url", "https://services.socialsecurity.be/REST/presenceRegistration/v1"),
        ("token_url", "https://services.socialsecurity.be/REST/oauth/v5/token"),
    ):
        url = checker.text(table, key, path, default=default, fix=url_fix) or default
        local = url.startswith(("http://127.", "http://localhost", "http://[::1]"))
        if not url.startswith("https://") and not local:
            checker.problem(f"{path}.{key}", f"{url!r} is not an https address", url_fix)
        urls[key] = url.rstrip("/")

    def file(key: str) -> Path | None:
        return _optional_path(checker.text(table, key, path, default=""), base)

    return ServiceConfig(
        base_url=urls["base_url"],
        token_url=urls["token_url"],
        client_id=checker.text(table, "client_id", path, default="") or "",
        key_file=file("key_file"),
        cert_file=file("cert_file"),
        ca_file=file("ca_file"),
        batch_size=checker.number(
            table, "batch_size", path, 200, 1, 200, "at most 200 registrations per call", integer=True
        ),
        connect_timeout_s=checker.number(table, "connect_timeout_s", path, 5.0, 0.1, 60),
        read_timeout_s=checker.number(table, "read_timeout_s", path, 20.0, 0.1, 300),
    )


def _clock(checker: _Checker, data: dict) -> ClockConfig:
    table = checker.table(data, "clock", "clock", {"warn_fraction", "ntp_server", "trust_system_clock"}, required=False)
    return ClockConfig(
        warn_fraction=checker.number(
            table,
            "warn_fraction",
            "clock",
            0.1,
            0.001,
            0.9,
            "the share of the reception delay an offset may reach before a warning",
        ),
        ntp_server=checker.text(table, "ntp_server", "clock", default="be.pool.ntp.org") or "be.pool.ntp.org",
        trust_system_clock=checker.value(table, "trust_system_clock", "clock", bool, default=False),
    )


def _printer(checker: _Checker, data: dict) -> PrinterConfig:
    table = checker.table(
        data, "printer", "printer", {"format", "cups_name", "escpos", "include_roster"}, required=False
    )
    return PrinterConfig(
        format=checker.choice(table, "format", "printer", ("pdf", "escpos"), default="pdf") or "pdf",
        cups_name=checker.text(table, "cups_name", "printer", default="") or None,
        escpos=checker.text(table, "escpos", "printer", default="") or None,
        include_roster=checker.value(table, "include_roster", "printer", bool, default=False),
    )


def _outage(checker: _Checker, data: dict) -> OutageConfig:
    keys = {"probe_interval_s", "grace_s", "summary_every_s", "gateway", "dns_resolver", "reference_url"}
    table = checker.table(data, "outage", "outage", keys | {"probe_timeout_s"}, required=False)
    reference = checker.text(table, "reference_url", "outage", default=OutageConfig.reference_url) or ""
    if reference and not reference.startswith("https://"):
        checker.problem(
            "outage.reference_url",
            f"{reference!r} is not an https address",
            'an HTTPS site independent of the service, e.g. "https://www.belgium.be", or "" for none',
        )
    return OutageConfig(
        probe_interval_s=checker.number(table, "probe_interval_s", "outage", 60.0, 1, 3600),
        grace_s=checker.number(
            table, "grace_s", "outage", 300.0, 0, 86400, "seconds of failures before an outage is opened"
        ),
        summary_every_s=checker.number(table, "summary_every_s", "outage", 900.0, 1, 86400),
        gateway=checker.text(table, "gateway", "outage", default="auto") or "",
        dns_resolver=checker.text(table, "dns_resolver", "outage", default="") or "",
        reference_url=reference.rstrip("/"),
        probe_timeout_s=checker.number(table, "probe_timeout_s", "outage", 5.0, 0.1, 60),
    )


def _gate(checker: _Checker, data: dict) -> GateConfig:
    table = checker.table(
        data, "gate", "gate", {"backlog_warning", "toggle_reset_hours", "heartbeat_s"}, required=False
    )
    return GateConfig(
        backlog_warning=checker.number(table, "backlog_warning", "gate", 500, 1, 10**7, integer=True),
        toggle_reset_hours=checker.number(
            table, "toggle_reset_hours", "gate", 16.0, 1, 24, "hours after which a worker's next badge is an IN again"
        ),
        heartbeat_s=checker.number(table, "heartbeat_s", "gate", 60.0, 5, 3600),
    )


def parse(data: dict, source: str = "<memory>", base: Path | None = None) -> Config:
    """Validate a decoded TOML document; raise ConfigError listing every error at once."""
    checker = _Checker()
    checker.unknown_keys(
        data, "", {"device", "site", "reader", "gpio", "service", "clock", "gate", "printer", "outage"}
    )
    device = checker.table(data, "device", "device", {"id", "data_dir"})
    device_id = checker.text(device, "id", "device", fix='a short name for this gate, e.g. "gate-01" (≤ 12 characters)')
    if device_id is not None and not _DEVICE_ID.match(device_id):
        checker.problem(
            "device.id",
            f"{device_id!r}: letters, digits, - and _ only, at most 12 characters",
            "it is part of the 24-character client reference of each registration",
        )
        device_id = None
    data_dir = Path(checker.text(device, "data_dir", "device", default="/var/lib/sitegate") or ".")
    base = base or Path.cwd()
    site = _site(checker, data)
    readers = _readers(checker, data, base)
    gpio = _gpio(checker, data)
    service = _service(checker, data, base)
    clock = _clock(checker, data)
    gate = _gate(checker, data)
    printer = _printer(checker, data)
    outage = _outage(checker, data)
    errors = [p for p in checker.problems if p.severity == "error"]
    if errors:
        raise ConfigError(checker.problems, source)
    return Config(
        device_id=device_id,
        data_dir=data_dir if data_dir.is_absolute() else base / data_dir,
        site=site,
        readers=readers,
        gpio=gpio,
        service=service,
        clock=clock,
        gate=gate,
        printer=printer,
        outage=outage,
        source=source,
        warnings=tuple(checker.problems),
    )


def config_path(explicit: str | os.PathLike | None = None) -> Path:
    """--config wins, then $SITEGATE_CONFIG, then /etc/sitegate/sitegate.toml."""
    return Path(explicit or os.environ.get(ENV_VAR) or DEFAULT_PATH)


def load(path: str | os.PathLike | None = None) -> Config:
    """Read and validate the configuration file; relative paths in it are relative to the file."""
    path = config_path(path)
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ConfigError(
            [
                Problem(
                    str(path), "file not found", f"copy the example (`sitegate config example > {path}`) and edit it"
                )
            ],
            str(path),
        ) from None
    except (OSError, UnicodeDecodeError) as error:
        raise ConfigError(
            [Problem(str(path), f"cannot be read: {error}", "check the file's permissions")], str(path)
        ) from None
    except tomllib.TOMLDecodeError as error:
        raise ConfigError(
            [Problem(str(path), f"not valid TOML: {error}", "fix the syntax at that line")], str(path)
        ) from None
    return parse(data, str(path), path.parent.resolve())
