"""`make install` into a throw-away folder, then the technician's SSH session as a real unprivileged user.

Needs root (it adds users, groups and a sudoers rule, all under names of its own, all removed at the end) and a
machine where systemd is not PID 1 (on one where it is, the install would enable a unit).
"""

from __future__ import annotations

import grp
import json
import os
import pwd
import shutil
import subprocess
import tempfile
from pathlib import Path

import pytest
import sqlite_utils
from conftest import REPO

from sitegate import config as configuration
from sitegate.queue.log import LogView
from sitegate.queue.records import Kind

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(os.geteuid() != 0, reason="adds users, groups and a sudoers rule: run the suite as root"),
    pytest.mark.skipif(Path("/run/systemd/system").exists(), reason="systemd runs here: the install would enable it"),
    pytest.mark.skipif(not shutil.which("visudo"), reason="sudo is not installed (apt-get install sudo)"),
    pytest.mark.skipif(not Path("/usr/bin/python3").exists(), reason="no /usr/bin/python3 to build the venv from"),
    pytest.mark.skipif(not (REPO / ".wheelhouse" / ".complete").exists(), reason="no wheelhouse: run `make test`"),
]
SYSTEM_PYTHON = "/usr/bin/python3"  # as on the Pi: every user can run it (a pyenv under /root could not)


WHEELHOUSE = REPO / ".wheelhouse"  # gathered by `make test` before the suite runs


def make(target: str, names: dict, *extra: str) -> subprocess.CompletedProcess:
    """make in a network namespace of its own (loopback only): pip installs from the wheelhouse or fails."""
    variables = [f"{key}={value}" for key, value in names.items()]
    offline = {**os.environ, "PIP_NO_INDEX": "1", "PIP_FIND_LINKS": str(WHEELHOUSE), "PIP_CONFIG_FILE": os.devnull}
    return subprocess.run(
        [
            "unshare",
            "--net",
            "make",
            "--no-print-directory",
            "-C",
            str(REPO),
            target,
            *variables,
            *extra,
            f"PYTHON={SYSTEM_PYTHON}",
        ],  # fmt: skip
        capture_output=True,
        text=True,
        timeout=600,
        env=offline,
    )


def as_user(user: str, *args: str, bindir: Path) -> subprocess.CompletedProcess:
    """A login as that user would run it: their own groups, PATH with the install's bin folder, no sitegate env."""
    env = {"PATH": f"{bindir}:/usr/bin:/bin:/usr/sbin:/sbin", "HOME": "/", "LANG": "C.UTF-8"}
    return subprocess.run(
        ["runuser", "-u", user, "--", "sitegate", *args], capture_output=True, text=True, env=env, cwd="/", timeout=120
    )


@pytest.fixture
def installed():
    """Install, yield the names and paths, then uninstall (PURGE=1) and remove the test's own users."""
    tag = f"{os.getpid() % 100000}"
    root = Path(tempfile.mkdtemp(prefix="sitegate-install-"))
    root.chmod(0o755)  # the technician and the daemon's user must reach the installed files
    names = {
        "INSTALL_DIR": root / "opt",
        "BINDIR": root / "bin",
        "CONFDIR": root / "etc",
        "STATEDIR": root / "state",
        "UNITDIR": root / "units",
        "SUDOERS": f"/etc/sudoers.d/sitegate-test-{tag}",
        "SITEGATE_USER": f"sgd{tag}",
        "ADMIN_GROUP": f"sgadm{tag}",
        "HW_GROUPS": "",
        "EXTRAS": "",  # the Pi's drivers (spidev, rpi-lgpio, evdev) do not build here; the command needs none of them
    }
    technician, outsider = f"sgt{tag}", f"sgo{tag}"
    try:
        result = make("install", names)
        assert result.returncode == 0, result.stdout + result.stderr
        # A first attempt that broke off half-way (its virtualenv without pip, say): running it again must work.
        shutil.rmtree(names["INSTALL_DIR"] / "venv" / "bin")
        again = make("install", names)
        assert again.returncode == 0, again.stdout + again.stderr
        for user in (technician, outsider):
            subprocess.run(["useradd", "--no-create-home", "--shell", "/bin/sh", user], check=True)
        subprocess.run(["usermod", "-aG", names["ADMIN_GROUP"], technician], check=True)
        yield names, technician, outsider, result.stdout
    finally:
        for user in (technician, outsider):
            subprocess.run(["userdel", user], capture_output=True)
        uninstalled = make("uninstall", names, "PURGE=1")
        shutil.rmtree(root, ignore_errors=True)
    assert uninstalled.returncode == 0, uninstalled.stdout + uninstalled.stderr
    assert not Path(names["SUDOERS"]).exists() and not (names["BINDIR"] / "sitegate").exists()
    for name in (names["SITEGATE_USER"], technician):
        with pytest.raises(KeyError):
            pwd.getpwnam(name)
    assert subprocess.run(["getent", "group", names["ADMIN_GROUP"]], capture_output=True).returncode == 2


def test_install_then_a_technician_runs_sitegate_without_sudo(installed):
    names, technician, outsider, output = installed
    assert "systemd is not running here" in output and "usermod -aG " + names["ADMIN_GROUP"] in output
    config = names["CONFDIR"] / "sitegate.toml"
    assert oct(config.stat().st_mode & 0o777) == "0o640"
    assert oct(Path(names["SUDOERS"]).stat().st_mode & 0o777) == "0o440"
    assert configuration.load(config).data_dir == names["STATEDIR"]  # the install wrote its own state directory
    unit = (names["UNITDIR"] / "sitegate.service").read_text()
    user = names["SITEGATE_USER"]
    for line in (f"User={user}", f"Group={user}", f"ReadWritePaths={names['STATEDIR']}", "SupplementaryGroups="):
        assert line in unit.splitlines(), line
    assert "StateDirectory=" not in unit  # a name under /var/lib: the test's state folder is elsewhere
    assert f"hide {names['STATEDIR']} from the daemon" in output  # under /tmp: said, PrivateTmp= would hide it
    verified = subprocess.run(
        ["systemd-analyze", "verify", str(names["UNITDIR"] / "sitegate.service")], capture_output=True, text=True
    )
    assert verified.returncode == 0 and "sitegate.service" not in verified.stderr, verified.stderr
    bindir = names["BINDIR"]

    status = as_user(technician, "status", "--json", bindir=bindir)
    assert status.returncode == 2, status.stderr  # critical: the daemon is not running here, and status says so
    assert json.loads(status.stdout)["device_id"] == "gate-01"
    queue = as_user(technician, "queue", "--json", bindir=bindir)
    assert queue.returncode == 0 and json.loads(queue.stdout)["pending"] == 0, queue.stderr
    reference = as_user(technician, "outage", "reference", "REF-123", bindir=bindir)
    assert reference.returncode == 0 and "signed record" in reference.stdout, reference.stderr

    database = names["STATEDIR"] / "sitegate.db"
    assert database.stat().st_uid == pwd.getpwnam(names["SITEGATE_USER"]).pw_uid
    assert oct(database.stat().st_mode & 0o777) == "0o600"  # the data keeps its modes
    verified = as_user(technician, "verify", "--json", bindir=bindir)
    assert verified.returncode == 0 and json.loads(verified.stdout)["ok"], verified.stderr
    [record] = LogView(sqlite_utils.Database(database)).newest(Kind.OUTAGE_REFERENCE)
    assert json.loads(record.payload)["by"] == technician  # the change names who made it

    roster = names["INSTALL_DIR"].parent / "roster.csv"  # where the daemon's user can read it (README)
    roster.write_text(
        "badge_uid,niss,limosa,last_name,first_name,employer\n04A1B2C3,85073003328,,Peeters,Jan,0403170701\n"
    )
    roster.chmod(0o644)
    imported = as_user(technician, "roster", "import", str(roster), bindir=bindir)
    assert imported.returncode == 0 and "signed record" in imported.stdout, imported.stderr
    [record] = LogView(sqlite_utils.Database(database)).newest(Kind.ROSTER_IMPORT)
    assert json.loads(record.payload)["by"] == technician

    secret = names["CONFDIR"] / "client.key"  # root's own, mode 0600: the daemon's user cannot read it
    secret.write_text("-----BEGIN PRIVATE KEY-----\n")
    secret.chmod(0o600)
    config.write_text(config.read_text().replace("[service]\n", f'[service]\nkey_file = "{secret}"\n', 1))
    checked = as_user(technician, "config", "check", "--json", bindir=bindir)
    problems = {p["path"]: p["message"] for p in json.loads(checked.stdout)["problems"]}
    assert checked.returncode == 2 and "cannot be read" in problems["service.key_file"], problems

    shared = names["INSTALL_DIR"].parent / "tmp"  # a folder like /tmp: anyone may write there, and read what it may
    shared.mkdir(mode=0o1777)
    shared.chmod(0o1777)
    export = shared / "export.jsonl"  # every full NISS: the technician reads it, no other user
    exported = as_user(technician, "export", "--out", str(export), bindir=bindir)
    assert exported.returncode == 0, exported.stderr
    assert (
        oct(export.stat().st_mode & 0o777) == "0o640"
        and export.stat().st_gid == grp.getgrnam(names["ADMIN_GROUP"]).gr_gid
    )
    for user, readable in ((technician, True), (outsider, False)):
        read = subprocess.run(["runuser", "-u", user, "--", "head", "-c1", str(export)], capture_output=True)
        assert (read.returncode == 0) is readable, (user, read.stderr)

    refused = as_user(outsider, "status", "--json", bindir=bindir)
    assert refused.returncode == 2 and names["ADMIN_GROUP"] in refused.stderr and "usermod" in refused.stderr
    # lgpio creates its notify pipe in $LG_WD or the current folder: the wrapper names the state directory, and sudo
    # keeps it (a technician's home, unwritable for the daemon's user, made `import lgpio` fail and blame the cable).
    assert f"export LG_WD={names['STATEDIR']}" in (bindir / "sitegate").read_text().splitlines()
    venv_command = str(names["INSTALL_DIR"] / "venv" / "bin" / "sitegate")
    kept = subprocess.run(
        ["runuser", "-u", technician, "--", "sudo", "-n", "-u", names["SITEGATE_USER"], f"LG_WD={names['STATEDIR']}"]
        + [venv_command, "--config", str(config), "queue", "--json"],
        capture_output=True,
        text=True,
        cwd="/",
    )
    assert kept.returncode == 0 and json.loads(kept.stdout)["pending"] == 0, kept.stderr
    direct = subprocess.run(["runuser", "-u", technician, "--", "cat", str(database)], capture_output=True)
    assert direct.returncode != 0 and b"Permission denied" in direct.stderr  # only through the command
