"""The device configuration: one TOML file, each key declared once, validated with every problem listed at once.

A key is a dataclass field whose `key()` metadata holds its range, choices, the fix to show and the comment of
the example configuration; `sitegate.settings` reads the TOML against these declarations and writes the example
from them. Checks anticipate the service's remarks 4, 10, 25, 36, 37 and 38 (ciaw/remarks.csv) so a typing error
is caught at the gate, not weeks later in a remark.
"""

from __future__ import annotations

import os
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import ClassVar

from sitegate import value_checks as checks
from sitegate.errors import ConfigError
from sitegate.settings import REQUIRED, Checker, Problem, example, key, read_section

DEFAULT_PATH = Path("/etc/sitegate/sitegate.toml")
ENV_VAR = "SITEGATE_CONFIG"
SERVICE_HOST = "https://services.socialsecurity.be"
# The service's URL paths (service.base_url and service.token_url end with them on the service's host) and its
# largest bulk call: the configuration's defaults and bounds, declared here; the REST contract and the simulator use
# them from here, so the configuration needs nothing above it.
BASE_PATH = "/REST/presenceRegistration/v1"
TOKEN_PATH = "/REST/oauth/v5/token"
MAX_BULK = 200
SOAP_PATH = "/PresenceRegistration/v1"  # the SOAP channel's (presence_soap_v1.py)
_BCM = {"low": 0, "high": 27, "fix": "a BCM pin number"}


@dataclass(frozen=True, kw_only=True)
class Coordinates:
    DOC: ClassVar[str] = "A fixed gate always sends its position (remark 25); it must lie in Belgium (remark 36)."
    latitude: float = key(example=50.8466, low=-90, high=90, fix="decimal degrees, e.g. 50.8466 (remark 36)")
    longitude: float = key(example=4.3528, low=-180, high=180, fix="decimal degrees, e.g. 4.3528 (remark 36)")


@dataclass(frozen=True, kw_only=True)
class Address:
    DOC: ClassVar[str] = "Municipality, street and number are required (remark 37); a wrong address gives remark 38."
    post_code: str = key(example="1000", check=checks.post_code, accept=(int,), fix="the 4-digit post code (remark 37)")
    municipality: str = key(
        example="Bruxelles", check=checks.address_part, fix="as on the works declaration (remark 37)"
    )
    street: str = key(example="Rue de la Loi", check=checks.address_part, fix="the street name (remark 37)")
    house_number: str = key(example="16", check=checks.address_part, accept=(int,), fix="the house number (remark 37)")
    box: str = key("")


@dataclass(frozen=True, kw_only=True)
class PlaceOfWork:
    DOC: ClassVar[str] = "Where the gate stands: coordinates (sent) and the address."
    allow_outside_belgium: bool = key(False, doc="true only for a site abroad")
    coordinates: Coordinates | None = key(None, section=Coordinates)
    address: Address | None = key(None, section=Address)

    @staticmethod
    def validate(checker: Checker, values: dict, path: str) -> None:
        """One of coordinates and address (remarks 25, 37); coordinates in Belgium unless allowed (remark 36)."""
        coordinates = values["coordinates"]
        if coordinates is None and values["address"] is None:
            checker.problem(
                path,
                "neither coordinates nor address (remarks 25 and 37 would follow)",
                "add [site.place_of_work.coordinates] latitude/longitude of the gate, and the address",
            )
            values["coordinates"] = REQUIRED
        elif coordinates is None:
            fix = "add latitude and longitude of the gate"
            checker.problem(f"{path}.coordinates", "missing: no GPS position (remark 25)", fix, severity="warning")
        elif isinstance(coordinates, Coordinates) and not values["allow_outside_belgium"]:
            lat, lon = coordinates.latitude, coordinates.longitude
            if not checks.inside(lat, lon):
                swapped = "latitude and longitude look swapped" if checks.inside(lon, lat) else ""
                checker.problem(
                    f"{path}.coordinates",
                    f"({lat}, {lon}) is outside Belgium (remark 36 would follow)",
                    swapped or "check them, or set allow_outside_belgium = true for a site abroad",
                )
                values["coordinates"] = REQUIRED


@dataclass(frozen=True, kw_only=True)
class SiteConfig:
    DOC: ClassVar[str] = "The site: what every registration and the paper listing carry."
    works_declaration: str | None = key(
        "",
        example="1Y101DRUNWB5Z",
        check=checks.works_declaration,
        doc="the works-declaration (DDT/WVA) number: 13 letters and digits (remarks 10, 11, 12); "
        '"" for a sector without one (cleaning)',
    )
    employers: tuple[tuple[str, str], ...] = key(
        example=[{"number": "0403.170.701", "name": "Example Construct NV"}],
        check=checks.employers,
        fix='a list of KBO/BCE numbers, or of tables: [{number = "0403.170.701", name = "Bouw NV"}]',
        doc="every company whose workers badge here, contractor and subcontractors (remarks 1, 4): a KBO/BCE "
        "number, or a table with its name for the listing",
    )
    registration_mode: str = key("in_out", choices=("in_out", "presence"), doc="presence: once a day")
    reception_delay_s: int = key(
        900, low=60, high=7 * 86400, fix="seconds (not published by ONSS; keep the default unless told otherwise)",
        doc="remark 32: the service flags a registration received this late; ONSS does not publish the value",
    )  # fmt: skip
    language: str = key("fr", choices=("fr", "nl", "en"), doc="the foreman's: outage guidance and the listing")
    place_of_work: PlaceOfWork = key(section=PlaceOfWork)

    @property
    def employer_numbers(self) -> tuple[str, ...]:
        return tuple(number for number, _ in self.employers)

    def employer_name(self, number: str) -> str:
        return dict(self.employers).get(number, "")


@dataclass(frozen=True, kw_only=True)
class ReaderConfig:
    DOC: ClassVar[str] = 'One per reader. source: "mfrc522" (SPI), "keyboard" (USB wedge), "fifo" (named pipe).'
    name: str = key("gate", doc="each reader its own name")
    source: str = key("mfrc522", choices=("mfrc522", "keyboard", "fifo"))
    direction: str = key("toggle", choices=("toggle", "entry", "exit", "presence"), doc="entry/exit: two readers")
    spi_bus: int = key(0, low=0, high=6)
    spi_device: int = key(0, low=0, high=3)
    reset_pin: int = key(25, **_BCM, doc="BCM; the mfrc522 package's default (BCM 15) is the UART RX pin")
    poll_interval_s: float = key(0.05, low=0.01, high=1.0, fix="seconds between polls", doc="no busy loop")
    same_badge_window_s: float = key(60, low=0, high=3600, doc="the same badge again within it counts once")
    fifo_path: Path = key(Path("/run/sitegate/badges"), doc='source = "fifo": the named pipe')
    input_device: Path | None = key(
        None, example="/dev/input/by-id/usb-READER-event-kbd", doc='source = "keyboard" on the device'
    )


@dataclass(frozen=True, kw_only=True)
class GpioConfig:
    DOC: ClassVar[str] = "BCM pin numbers of the LEDs, the buzzer and the optional print button."
    green_led: int | None = key(17, **_BCM)
    red_led: int | None = key(27, **_BCM)
    buzzer: int | None = key(22, **_BCM)
    print_button: int | None = key(None, **_BCM, example=23, doc="prints the day's paper listing")

    @staticmethod
    def validate(checker: Checker, values: dict, path: str) -> None:
        pins = [pin for pin in values.values() if isinstance(pin, int)]
        if len(set(pins)) != len(pins):
            checker.problem(
                path, f"two functions share a pin: {values}", "give each LED, buzzer and button its own pin"
            )


@dataclass(frozen=True, kw_only=True)
class ServiceConfig:
    DOC: ClassVar[str] = "Check In and Out at Work, and the company's credentials (the key signs the JWT)."
    base_url: str = key(SERVICE_HOST + BASE_PATH, check=checks.https)
    token_url: str = key(SERVICE_HOST + TOKEN_PATH, check=checks.https)
    channel: str = key("rest", choices=("rest", "soap"), doc="soap: the construction sector's PresenceRegistration")
    fallback: str = key("", choices=("", "rest", "soap"), doc="the other channel, tried when the first is down")
    soap_url: str = key(SERVICE_HOST + SOAP_PATH, check=checks.https, doc="SOAP: signed with key_file, cert_file")
    client_id: str = key("")
    key_file: Path | None = key(
        None, example="/etc/sitegate/credentials/client.key", doc="the company's certificate key: set it"
    )
    cert_file: Path | None = key(None, example="/etc/sitegate/credentials/client.crt", doc="its certificate: set it")
    ca_file: Path | None = key(None, example="/etc/sitegate/credentials/ca.pem", doc="only for a test service")
    batch_size: int = key(MAX_BULK, low=1, high=MAX_BULK, fix=f"at most {MAX_BULK} registrations per call")
    connect_timeout_s: float = key(5.0, low=0.1, high=60)
    read_timeout_s: float = key(20.0, low=0.1, high=300)

    @staticmethod
    def validate(checker: Checker, values: dict, path: str) -> None:
        if values["fallback"] == values["channel"]:
            checker.problem(f"{path}.fallback", "is the channel itself", 'name the other channel, or "" for none')


@dataclass(frozen=True, kw_only=True)
class GateConfig:
    DOC: ClassVar[str] = "The gate's behaviour."
    backlog_warning: int = key(500, low=1, high=10**7, doc="undelivered registrations before the warning signal")
    toggle_reset_hours: float = key(16.0, low=1, high=24, doc="an IN older than this makes the next badge an IN")
    heartbeat_s: float = key(60.0, low=5, high=3600, doc="how often the daemon notes it is alive (power cuts)")
    foreman_print_s: float = key(
        3.0, low=1, high=10,
        doc="a foreman badge read twice within this prints the day's listing; a foreman's IN/OUT waits this long",
    )  # fmt: skip


@dataclass(frozen=True, kw_only=True)
class PrinterConfig:
    DOC: ClassVar[str] = 'The emergency paper listing: "pdf" (A4, sent to CUPS with lp) or "escpos" (80 mm thermal).'
    format: str = key("pdf", choices=("pdf", "escpos"))
    cups_name: str | None = key(None, example="site-office", doc="the CUPS printer")
    escpos: str | None = key(
        None, example="usb:0x04b8:0x0202", doc="or serial:/dev/ttyUSB0, network:192.0.2.10, file:/dev/usb/lp0"
    )
    include_roster: bool = key(False, doc="also list roster workers expected today who have not badged")


@dataclass(frozen=True, kw_only=True)
class OutageConfig:
    DOC: ClassVar[str] = "Probes tell which hop failed, so the verdict (our side, a third party, the service) holds."
    probe_interval_s: float = key(60.0, low=1, high=3600)
    grace_s: float = key(300.0, low=0, high=86400, doc="failures this long open an outage; before, it is suspected")
    summary_every_s: float = key(900.0, low=1, high=86400, doc="while open, signed evidence this often")
    gateway: str = key("auto", doc='"auto": the default route\'s gateway; an address ("192.0.2.1:53"); "": none')
    dns_resolver: str = key("", doc='"": the system\'s resolver; else a resolver asked directly, e.g. "192.0.2.1"')
    reference_url: str = key(
        "https://www.belgium.be", check=checks.https, doc="an HTTPS site independent of the service: the internet works"
    )
    probe_timeout_s: float = key(5.0, low=0.1, high=60)


def _pin_hash(checker: Checker, value: str, path: str) -> str | None:
    from sitegate.pins import PinError, parse

    try:
        parse(value)
    except PinError as error:
        checker.problem(path, error.problem, error.fix)
        return REQUIRED
    return value


@dataclass(frozen=True, kw_only=True)
class ForemanConfig:
    DOC: ClassVar[str] = (
        "One per foreman who may sign in to the page with a PIN; the name goes into the signed records they cause. "
        "The PIN hash below belongs to no known PIN: replace it with the line `sitegate web pin-hash` prints."
    )
    name: str = key(example="Jan Peeters", fix="the foreman's name, as the signed records will name them")
    pin_hash: str = key(
        example="scrypt$16384$8$1$EQXz593gxfBfC5CtNfbdCw==$ctPqVuZ7H9ICvuht4wwe3efiKikN8pP8o5JwZgK4bXA=",
        check=_pin_hash,
        fix="run `sitegate web pin-hash` and paste the line it prints",
    )


@dataclass(frozen=True, kw_only=True)
class WebConfig:
    DOC: ClassVar[str] = (
        "The foreman's page (`sitegate web serve`, its own process and unit): off unless enabled; it listens on "
        "this address only, over HTTPS when a certificate is given."
    )
    enabled: bool = key(False, doc="true: serve the page (and enable sitegate-web.service)")
    listen: str = key("127.0.0.1", example="192.0.2.20", doc="the gate's address on the site network, not 0.0.0.0")
    port: int = key(8080, low=0, high=65535, doc="0: any free port (tests; the chosen one is logged)")
    tls_cert: Path | None = key(None, example="/etc/sitegate/web/cert.pem", doc="the device's own certificate: HTTPS")
    tls_key: Path | None = key(None, example="/etc/sitegate/web/key.pem", doc="its key (mode 0640, group sitegate)")
    session_hours: float = key(10.0, low=0.25, high=24, doc="a sign-in lasts a working day at most")
    max_failures: int = key(5, low=1, high=100, doc="wrong PINs from one address before it must wait")
    lockout_s: float = key(300.0, low=10, high=86400, doc="how long it waits; the whole page after 4 times as many")
    foremen: tuple[ForemanConfig, ...] = key(section=ForemanConfig, name="foreman", many=True, optional=True)

    @staticmethod
    def validate(checker: Checker, values: dict, path: str) -> None:
        if values["enabled"] is True and values["foremen"] == ():
            checker.problem(
                f"{path}.foreman", "the page is enabled but no foreman can sign in", "add a [[web.foreman]] table"
            )
        if values["listen"] in ("0.0.0.0", "::", "*"):
            checker.problem(
                f"{path}.listen",
                "the page would listen on every interface, a mobile or upstream network included",
                "give the gate's address on the site network",
                severity="warning",
            )
        if (values["tls_cert"] is None) != (values["tls_key"] is None):
            checker.problem(path, "tls_cert and tls_key go together", "give both, or neither (plain HTTP)")
        foremen = values["foremen"] if isinstance(values["foremen"], tuple) else ()
        names = [foreman.name for foreman in foremen]
        if len(set(names)) != len(names):
            checker.problem(f"{path}.foreman", f"foreman names repeat: {names}", "give each foreman their own name")


@dataclass(frozen=True, kw_only=True)
class ClockConfig:
    DOC: ClassVar[str] = "Time: chrony, then systemd-timesyncd, then this NTP server (remark 32 depends on it)."
    warn_fraction: float = key(0.1, low=0.001, high=0.9, doc="warn when the offset reaches this share of the delay")
    ntp_server: str = key("be.pool.ntp.org")
    trust_system_clock: bool = key(False, doc="demo and bench only: no time source is asked; never on a gate")
    # A Pi has no RTC: after a power cut it boots at the last saved time, hours or days behind, until chrony's first
    # sync (`iburst`: about 10 s once the network is up; a site's 4G router powered on with the gate attaches in about
    # a minute). 120 s covers both and is 2 min of the 15 min reception delay: a held registration still arrives
    # in near real time with its true time. A gate with no time source at all delivers, 2 min late, with a warning.
    first_sync_wait_s: float = key(
        120.0, low=0, high=600, fix="seconds (0: send at once with the unsynced time; at most 600)",
        doc="a registration captured before the boot's first clock sync waits this long at most for its true time",
    )  # fmt: skip


@dataclass(frozen=True, kw_only=True)
class BusConfig:
    DOC: ClassVar[str] = (
        "The site bus (MQTT): off unless host is set. Each gate publishes its own signed records and mirrors its "
        "peers', so decisions, `sitegate site` and the listing cover the whole site."
    )
    host: str | None = key(None, example="192.0.2.10", doc="the broker (on the site router or on one gate)")
    port: int = key(8883, low=1, high=65535)
    site: str = key("site", check=checks.topic_level, doc="the site's name in topics: the same on every gate of it")
    username: str | None = key(None, example="gate-01", doc="this gate's broker user (default: the device id)")
    password_file: Path | None = key(None, example="/etc/sitegate/credentials/bus.password", doc="mode 0640")
    ca_file: Path | None = key(None, example="/etc/sitegate/credentials/bus-ca.pem", doc="the broker's CA (TLS)")
    tls: bool = key(True, doc="false only for a demo broker on 127.0.0.1")
    peers: tuple[tuple[str, str], ...] | None = key(
        None,
        example=[{"id": "gate-02", "public_key": "0" * 64}],
        check=checks.peers,
        doc="the site's other gates, each with the public key it signs with (`sitegate key show` on it)",
    )
    stale_after_s: float = key(300.0, low=5, high=86400, doc="a gate unheard this long is named on the listing")
    health_every_s: float = key(30.0, low=1, high=3600, doc="the retained health message (`sitegate fleet`)")

    @property
    def enabled(self) -> bool:
        return bool(self.host)

    @property
    def peer_keys(self) -> dict[str, str]:
        """Device id -> the pinned public key (hex) of each peer."""
        return dict(self.peers or ())


@dataclass(frozen=True, kw_only=True)
class MetricsConfig:
    DOC: ClassVar[str] = "Prometheus: a node_exporter textfile (no port of its own on the gate; see the README)."
    textfile: Path | None = key(None, example="/var/lib/prometheus/node-exporter/sitegate.prom", doc="off unless set")
    every_s: float = key(15.0, low=1, high=3600)


@dataclass(frozen=True, kw_only=True)
class DeviceConfig:
    DOC: ClassVar[str] = "This gate."
    id: str = key(example="gate-01", check=checks.device_id, fix='a short name, e.g. "gate-01" (at most 12 characters)')
    data_dir: Path = key(Path("/var/lib/sitegate"), doc="the database (mode 0600) and the device key")


@dataclass(frozen=True, kw_only=True)
class Config:
    """The whole file; `reader` is a list of tables ([[reader]])."""

    device: DeviceConfig = key(section=DeviceConfig)
    site: SiteConfig = key(section=SiteConfig)
    readers: tuple[ReaderConfig, ...] = key(section=ReaderConfig, name="reader", many=True)
    gpio: GpioConfig = key(section=GpioConfig, optional=True)
    service: ServiceConfig = key(section=ServiceConfig, optional=True)
    clock: ClockConfig = key(section=ClockConfig, optional=True)
    gate: GateConfig = key(section=GateConfig, optional=True)
    printer: PrinterConfig = key(section=PrinterConfig, optional=True)
    outage: OutageConfig = key(section=OutageConfig, optional=True)
    bus: BusConfig = key(section=BusConfig, optional=True)
    metrics: MetricsConfig = key(section=MetricsConfig, optional=True)
    web: WebConfig = key(section=WebConfig, optional=True)
    source: str = field(default="<memory>", metadata={"internal": True})
    warnings: tuple[Problem, ...] = field(default=(), compare=False, metadata={"internal": True})

    @staticmethod
    def validate(checker: Checker, values: dict, path: str) -> None:
        names = [reader.name for reader in values["readers"]] if isinstance(values["readers"], tuple) else []
        if len(set(names)) != len(names):
            checker.problem("reader", f"reader names repeat: {names}", "give every [[reader]] its own name")
        service, site = values["service"], values["site"]
        if isinstance(service, ServiceConfig) and isinstance(site, SiteConfig) and not site.works_declaration:
            if "soap" in (service.channel, service.fallback):
                fix = "set site.works_declaration (the SOAP channel registers presences on it), or use the REST channel"
                checker.problem("site.works_declaration", "empty, but the SOAP channel needs it (WorkPlaceId)", fix)
        bus, device = values["bus"], values["device"]
        if isinstance(bus, BusConfig) and isinstance(device, DeviceConfig) and bus.enabled:
            if device.id in bus.peer_keys:
                checker.problem("bus.peers", f"lists this gate ({device.id}) itself", "list only the other gates")
            if not bus.peer_keys:
                fix = "list the site's other gates with their public keys (`sitegate key show` on each)"
                checker.problem("bus.peers", "none: this gate publishes but mirrors nobody", fix, severity="warning")

    @property
    def device_id(self) -> str:
        return self.device.id

    @property
    def data_dir(self) -> Path:
        return self.device.data_dir

    @property
    def database_path(self) -> Path:
        return self.data_dir / "sitegate.db"

    @property
    def key_path(self) -> Path:
        return self.data_dir / "device.key"

    @property
    def mirror_path(self) -> Path:
        """The site bus's own file beside the log: peers' records, what was published; never the signed log."""
        return self.data_dir / "sitegate-site.db"


def parse(data: dict, source: str = "<memory>", base: Path | None = None) -> Config:
    """Validate a decoded TOML document; raise ConfigError listing every error at once."""
    checker = Checker(base or Path.cwd())
    values = read_section(checker, Config, data, "")
    if any(p.severity == "error" for p in checker.problems) or REQUIRED in values.values():
        raise ConfigError(checker.problems, source)
    return Config(**values, source=source, warnings=tuple(checker.problems))


def example_text(data_dir: Path | None = None) -> str:
    """`sitegate config example`: written from the declarations above, so it always holds the defaults.

    data_dir: the state directory this machine's install created, written in place of the default."""
    header = [
        "# sitegate configuration: copy to /etc/sitegate/sitegate.toml, edit, then run `sitegate config check`.",
        "# Every problem is listed at once, with the key and the fix. Relative paths are relative to this file.",
        "# Values in the [site] and [device] sections are examples: replace every one with this site's own.",
    ]
    values = {"device.data_dir": str(data_dir)} if data_dir else {}
    return "\n".join(header + example(Config, values=values)[1:]) + "\n"


def config_path(explicit: str | os.PathLike | None = None) -> Path:
    """--config wins, then $SITEGATE_CONFIG, then /etc/sitegate/sitegate.toml."""
    return Path(explicit or os.environ.get(ENV_VAR) or DEFAULT_PATH)


def load(path: str | os.PathLike | None = None) -> Config:
    """Read and validate the configuration file; relative paths in it are relative to the file."""
    path = config_path(path)
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        fix = f"copy the example (`sitegate config example > {path}`) and edit it"
        raise ConfigError([Problem(str(path), "file not found", fix)], str(path)) from None
    except (OSError, UnicodeDecodeError) as error:
        problem = Problem(str(path), f"cannot be read: {error}", "check the file's permissions")
        raise ConfigError([problem], str(path)) from None
    except tomllib.TOMLDecodeError as error:
        problem = Problem(str(path), f"not valid TOML: {error}", "fix the syntax at that line")
        raise ConfigError([problem], str(path)) from None
    return parse(data, str(path), path.parent.resolve())
