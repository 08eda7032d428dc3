"""Shared fixtures: a valid configuration on disk, an opened device, registrations to append."""

from __future__ import annotations

import contextlib
import io
import logging
import os
import sqlite3
import subprocess
import sys
import threading
import time
from datetime import UTC, datetime
from pathlib import Path

import pytest
from fake_mfrc522 import FakeChip, install
from simulator_process import SimulatorProcess, client_credentials

from sitegate import config as configuration
from sitegate.clock import ManualClock
from sitegate.demo import DEMO_SITE, LOOPBACK_PROBES
from sitegate.device import Device
from sitegate.domain.identifiers import WorkerId
from sitegate.domain.registration import Registration

REPO = Path(__file__).resolve().parent.parent
VALID_NISS = ["85073003328", "17073003384", "90020199704", "88051212342", "79112345608", "01020300438"]

CONFIG_TEXT = (
    """
[device]
id = "gate-01"
data_dir = "data"
"""
    + DEMO_SITE
    + """
[[reader]]
name = "gate"
source = "fifo"
fifo_path = "badges.fifo"
"""
    + LOOPBACK_PROBES
)


def _lingering(base: str) -> list[str]:
    """Running processes this test session started: our descendants, and any process whose command line names
    the session's temporary folder (a wrapper's child re-parented to init after the wrapper died)."""
    parents, commands = {}, {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
            command = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace").strip()
        except OSError:
            continue
        state, ppid = stat.rsplit(")", 1)[1].split()[:2]
        if state != "Z":
            parents[int(entry.name)], commands[int(entry.name)] = int(ppid), command

    def ours(pid: int) -> bool:
        while pid in parents and pid != os.getpid():
            pid = parents[pid]
        return pid == os.getpid()

    return [f"{pid} {cmd}" for pid, cmd in commands.items() if pid != os.getpid() and (ours(pid) or base in cmd)]


@pytest.fixture(scope="session", autouse=True)
def leaves_nothing_behind(tmp_path_factory):
    """The suite leaves no process behind (faketime, for one, does not pass SIGTERM on to its child)."""
    base = str(tmp_path_factory.getbasetemp())
    yield
    deadline = time.monotonic() + 10
    while (left := _lingering(base)) and time.monotonic() < deadline:
        time.sleep(0.2)  # processes just signalled are still exiting
    assert not left, f"processes the tests started are still running: {left}"


@pytest.fixture(scope="session")
def credentials(tmp_path_factory):
    """The client's key and certificate the simulator is told to trust."""
    return client_credentials(tmp_path_factory.mktemp("credentials"))


@pytest.fixture
def simulator():
    """A service simulator of the test's own (what it received is the test's alone)."""
    process = SimulatorProcess()
    yield process
    process.stop()


@pytest.fixture(scope="module")
def service():
    """The service simulator, a process of its own, shared by a module's tests."""
    server = SimulatorProcess()
    yield server
    server.stop()


@pytest.fixture(scope="module")
def reference():
    """An independent HTTPS host (its own CA): the internet works when it answers."""
    server = SimulatorProcess("--tls")
    yield server
    server.stop()


@pytest.fixture
def config_file(tmp_path: Path) -> Path:
    path = tmp_path / "sitegate.toml"
    path.write_text(CONFIG_TEXT, encoding="utf-8")
    return path


@pytest.fixture
def config(config_file: Path) -> configuration.Config:
    return configuration.load(config_file)


@pytest.fixture
def chip(monkeypatch) -> FakeChip:
    """The fake MFRC522 in place of the SPI bus (tests/fake_mfrc522.py): a reader without hardware."""
    fake = FakeChip()
    install(fake, monkeypatch)
    return fake


@pytest.fixture
def clock() -> ManualClock:
    return ManualClock(datetime(2026, 11, 22, 7, 0, tzinfo=UTC))


@pytest.fixture
def device(config, clock):
    opened = Device.open(config, clock)
    yield opened
    opened.close()


def registration(index: int = 0, direction: str = "IN") -> Registration:
    return Registration(
        worker=WorkerId("ssin", VALID_NISS[index % len(VALID_NISS)]),
        employer="0403170701",
        direction=direction,
        works_declaration="1Y101DRUNWB5Z",
        badge_uid=f"04A1B2{index:02X}",
        reader="gate",
        last_name=f"Worker{index}",
        first_name="Test",
    )


def cut_log(database: Path, keep: int) -> None:
    """What an attacker with the file does: drop the guard and delete the records after seq `keep`."""
    conn = sqlite3.connect(database, isolation_level=None)
    conn.execute("DROP TRIGGER records_no_delete")
    conn.execute("DELETE FROM registration_keys WHERE seq > ?", [keep])
    conn.execute("DELETE FROM records WHERE seq > ?", [keep])
    conn.close()


# Commands that run a process of their own (a daemon, a server, a scripted site): always the installed command.
LONG_RUNNING = {"run", "demo", "simulator"}


def run_sitegate(*args: str, config: Path | None = None, check: bool = False, **kwargs) -> subprocess.CompletedProcess:
    """The `sitegate` command as a technician types it: in this process (`cli.main`, output captured) for the
    short commands, the installed command as a real subprocess for the long-running ones."""
    env = dict(kwargs.pop("env", None) or os.environ)
    if config:
        env["SITEGATE_CONFIG"] = str(config)
    if args and args[0] in LONG_RUNNING:
        return installed_sitegate(*args, env=env, check=check, **kwargs)
    return _in_process(list(args), env, check, **kwargs)


def installed_sitegate(*args: str, env: dict, check: bool = False, **kwargs) -> subprocess.CompletedProcess:
    command = [str(Path(sys.executable).parent / "sitegate"), *args]
    return subprocess.run(command, capture_output=True, text=True, env=env, check=check, timeout=120, **kwargs)


def _in_process(argv: list[str], env: dict, check: bool, cwd: Path | None = None) -> subprocess.CompletedProcess:
    from sitegate import cli

    saved, here = dict(os.environ), Path.cwd()
    out, err = io.StringIO(), io.StringIO()
    try:
        os.environ.clear()
        os.environ.update(env)
        if cwd:
            os.chdir(cwd)
        with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
            try:
                code = cli.main(argv)
            except SystemExit as exit_:  # argparse's usage errors
                code = exit_.code if isinstance(exit_.code, int) else 2
    finally:
        os.chdir(here)
        os.environ.clear()
        os.environ.update(saved)
    result = subprocess.CompletedProcess(["sitegate", *argv], code, out.getvalue(), err.getvalue())
    if check:
        result.check_returncode()
    return result


@pytest.fixture
def thread_errors():
    """Every exception that escapes a thread, and every error the daemon logs (it logs what its threads catch)."""
    escaped: list[str] = []
    previous_hook = threading.excepthook
    threading.excepthook = lambda args: escaped.append(
        f"{args.thread.name}: {args.exc_type.__name__}: {args.exc_value}"
    )

    class Errors(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            escaped.append(f"{record.name}: {record.getMessage()}")

    handler = Errors(logging.ERROR)
    logger = logging.getLogger("sitegate")
    logger.addHandler(handler)
    try:
        yield escaped
    finally:
        logger.removeHandler(handler)
        threading.excepthook = previous_hook
