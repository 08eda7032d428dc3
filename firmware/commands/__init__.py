"""The `sitegate` command's commands: one module per command or group of commands, the parser built from `COMMANDS`.

A command names its handler as "module:function" in this package; only the chosen command's module is imported,
so `sitegate status` does not load the daemon, the web framework or the printer's library.
"""

from __future__ import annotations

import argparse
import importlib
from collections.abc import Callable
from dataclasses import dataclass, field

from sitegate import __version__
from sitegate import config as configuration
from sitegate.output import Report

DESCRIPTION = "The `sitegate` command: what technicians and foremen type over SSH."
LANGUAGES = ("fr", "nl", "en")


@dataclass(frozen=True)
class Option:
    """One argument of a command, as argparse's add_argument takes it."""

    flags: tuple[str, ...]
    settings: dict = field(default_factory=dict)


def option(*flags: str, **settings) -> Option:
    return Option(flags, settings)


@dataclass(frozen=True)
class Command:
    name: str
    handler: str  # "module:function" in this package, imported when the command runs
    help: str
    options: tuple[Option, ...] = ()
    json: bool = True  # offers --json


@dataclass(frozen=True)
class Group:
    """A command of actions (`sitegate key show`)."""

    name: str
    help: str
    commands: tuple[Command, ...]


COMMANDS: tuple[Command | Group, ...] = (
    Group(
        "config",
        "check or show the configuration",
        (
            Command(
                "check",
                "config:check",
                "validate the configuration, listing every problem",
                (option("--online", action="store_true", help="also obtain a token from the service now"),),
            ),
            Command(
                "example",
                "config:example",
                "print a commented example configuration",
                (
                    option(
                        "--data-dir",
                        metavar="DIR",
                        help="write this as device.data_dir (make install: its state directory)",
                    ),
                ),
                json=False,
            ),
        ),
    ),
    Group(
        "key",
        "the device's signing key",
        (
            Command("show", "key:describe", "print the public key and its fingerprint"),
            Command(
                "replace",
                "key:replace",
                "the key is lost: start a new one that continues the log (signed, naming you)",
                (option("--reason", required=True, help="why (kept in the signed record)"),),
            ),
        ),
    ),
    Command(
        "verify",
        "verify:verify",
        "check every signature, the hash chain and the sequence",
        (
            option("--export", metavar="FILE", help="verify an export file instead of the live database"),
            option("--fingerprint", help="also require this key fingerprint (as printed on paper)"),
            option(
                "--checkpoint",
                metavar="SEQ:HASH",
                help="also prove the log extends this earlier checkpoint (SEQ:HASH, or a paper listing's QR text)",
            ),
            option(
                "--acknowledge",
                action="store_true",
                help="once the findings were looked into: a signed record naming you; checkpoints resume",
            ),
        ),
    ),
    Command(
        "export",
        "export:export",
        "write the signed records and public key as JSON lines",
        (option("--out", required=True, metavar="FILE"),),
        json=False,
    ),
    Command(
        "outage",
        "outage:outage",
        "current and past outages, their evidence and what to do",
        (
            option(
                "words",
                nargs="*",
                metavar="reference REF",
                help="`sitegate outage reference REF` records the contact centre's reference number",
            ),
            option("--lang", choices=LANGUAGES, help="language of the guidance (default: site.language)"),
            option("--employer", metavar="KBO", help="the reference is for this employer only (KBO/BCE)"),
        ),
    ),
    Group(
        "paper",
        "the emergency paper attendance listing",
        (
            Command(
                "print",
                "paper:print_listing",
                "print the day's attendance listing",
                (
                    option("--date", help="YYYY-MM-DD (default: today in Brussels)"),
                    option("--reference", help="the contact centre's reference number"),
                    option("--format", choices=("pdf", "escpos"), help="default: printer.format"),
                    option("--out", metavar="FILE", help="write to a file instead of a printer"),
                    option("--printer", metavar="NAME", help="CUPS printer name (default: printer.cups_name)"),
                    option("--with-roster", action="store_true", help="add roster workers who did not badge"),
                    option("--employer", metavar="KBO", help="only this employer's workers (KBO/BCE number)"),
                    option("--lang", choices=LANGUAGES, help="language of the listing (default: site.language)"),
                ),
            ),
        ),
    ),
    Command("status", "status:status", "the device's health; exit 0 ok, 1 warning, 2 critical"),
    Command("fleet", "site:fleet", "every gate of every site on the broker, one line each, worst first"),
    Command("metrics", "metrics:metrics", "the Prometheus metrics the daemon writes as a node_exporter textfile"),
    Command(
        "site",
        "site:site",
        "who is on the whole site now (every gate of the site bus), and the gates' state",
        (
            option("action", nargs="?", choices=("acknowledge",), help="acknowledge the rejected messages"),
            option("--reason", help="with acknowledge: what you found (kept in the signed record)"),
            option("--lang", choices=LANGUAGES, help="language (default: site.language)"),
        ),
    ),
    Command(
        "doctor", "doctor:commission", "commissioning: test reader, signals, printer, service, clock, disk, watchdog"
    ),
    Command("run", "run:run", "run the gate (the systemd service runs this)", json=False),
    Command("queue", "delivery:queue", "what is pending, in flight, delivered and rejected"),
    Command(
        "forward",
        "delivery:forward",
        "send pending registrations to the service now",
        (option("--once", action="store_true", required=True, help="drain once and stop"),),
    ),
    Command("clock", "clock:clock", "how good the clock is: source, offset, records to re-date (remark 32)"),
    Command(
        "remarks",
        "remarks:remarks",
        "remarks and refusals that need someone's action, soonest deadline first",
        (option("--lang", choices=LANGUAGES, help="language of the remark and its action (default: en)"),),
    ),
    Command(
        "simulator",
        "simulator:simulator",
        "run the local service simulator",
        (
            option("--host", default="127.0.0.1"),
            option("--port", type=int, default=8765, help="0 picks a free port (printed)"),
            option("--tls", action="store_true", help="serve HTTPS with a self-signed certificate"),
            option("--tls-dir", help="where to write the simulator's key and certificate"),
            option("--delay", type=int, default=900, help="reception delay behind remark 32, seconds"),
            option("--persons", help="file of known NISS numbers; others get remark 15"),
            option("--trust", help="the gate's certificate (PEM) whose SOAP signatures are accepted"),
        ),
        json=False,
    ),
    Command(
        "demo",
        "demo:demo",
        "run a demonstration site on this machine",
        (
            option(
                "--dir",
                help="where to keep the demo's files (default: ./demo-data, ./demo-site-data; replaced at each run)",
            ),
            option("--interactive", action="store_true", help="keep the gate running for badging by hand"),
            option("--site", action="store_true", help="two gates of one site on a local mosquitto (site bus)"),
            option(
                "--channel",
                choices=("rest", "soap"),
                default="rest",
                help="the service channel the gate uses first (the other one is its fallback)",
            ),
        ),
        json=False,
    ),
    Group(
        "web",
        "the foreman's page: serve it, hash a PIN, make its certificate",
        (
            Command("serve", "web:serve", "serve the foreman's page (sitegate-web.service runs this)", json=False),
            Command("pin-hash", "web:pin_hash", "hash a foreman's PIN for the configuration (read from the terminal)"),
            Command(
                "make-cert",
                "web:make_cert",
                "make the device's own certificate for the page's HTTPS",
                (
                    option("--host", action="append", required=True, help="the gate's address (repeatable)"),
                    option("--dir", help="where to write it (default: DATA_DIR/web-tls)"),
                ),
            ),
        ),
    ),
    Group(
        "roster",
        "badge to worker table",
        (
            Command(
                "import",
                "roster:import_csv",
                "replace the roster from a CSV file",
                (
                    option("file", metavar="FILE.csv"),
                    option("--skip-bad", action="store_true", help="import the good rows even if some are bad"),
                ),
                json=False,
            ),
            Command("list", "roster:list_workers", "show the roster (personal numbers masked)"),
        ),
    ),
)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="sitegate", description=DESCRIPTION)
    parser.add_argument("--version", action="version", version=f"sitegate {__version__}")
    parser.add_argument(
        "--config", help=f"configuration file (default: ${configuration.ENV_VAR} or {configuration.DEFAULT_PATH})"
    )
    top = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for entry in COMMANDS:
        if isinstance(entry, Group):
            group = top.add_parser(entry.name, help=entry.help)
            actions = group.add_subparsers(dest="action", required=True, metavar="ACTION")
            for command in entry.commands:
                _add(actions, command)
        else:
            _add(top, entry)
    return parser


def _add(parent, command: Command) -> None:
    sub = parent.add_parser(command.name, help=command.help, description=command.help)
    sub.set_defaults(handler=command.handler)
    if command.json:
        sub.add_argument("--json", action="store_true", help="print JSON for scripts")
    for argument in command.options:
        sub.add_argument(*argument.flags, **argument.settings)


def handler(name: str) -> Callable[[argparse.Namespace], Report | int]:
    """The function behind "module:function", its module imported now."""
    module, function = name.split(":")
    return getattr(importlib.import_module(f"{__name__}.{module}"), function)
