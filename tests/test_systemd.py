"""The unit file, checked by systemd's own tools (they work without systemd running as PID 1)."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import REPO

UNIT = REPO / "systemd" / "sitegate.service"
WEB_UNIT = REPO / "systemd" / "sitegate-web.service"


@pytest.fixture(params=[UNIT, WEB_UNIT], ids=["daemon", "web"])
def unit(tmp_path, request) -> Path:
    """Each unit as installed, with ExecStart pointing at this machine's sitegate (verify checks it exists)."""
    path = tmp_path / request.param.name
    path.write_text(
        request.param.read_text().replace(
            "/opt/sitegate/venv/bin/sitegate", str(Path(sys.executable).parent / "sitegate")
        )
    )
    return path


def test_verify_is_clean(unit):
    result = subprocess.run(["systemd-analyze", "verify", str(unit)], capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    assert unit.name not in result.stderr, result.stderr


def test_exposure_is_low(unit):
    result = subprocess.run(
        ["systemd-analyze", "security", "--offline=true", str(unit)], capture_output=True, text=True
    )
    match = re.search(rf"Overall exposure level for {re.escape(unit.name)}: (\d+\.\d+)", result.stdout)
    assert match, result.stdout[-500:] + result.stderr
    assert float(match.group(1)) <= 2.5


def test_the_unit_says_what_the_daemon_needs():
    text = UNIT.read_text()
    for line in (
        "Type=notify",
        "WatchdogSec=30",
        "Restart=always",
        "User=sitegate",
        "SupplementaryGroups=gpio spi",
        "StateDirectory=sitegate",
        "ConfigurationDirectory=sitegate",
        "ProtectSystem=strict",
        "WorkingDirectory=/var/lib/sitegate",  # lgpio's notify pipe: never in `/`, which the user cannot write
    ):
        assert re.search(rf"^{re.escape(line)}$", text, re.MULTILINE), line


def test_the_page_runs_as_the_daemons_user_and_never_restarts_when_off():
    text = WEB_UNIT.read_text()
    for line in (
        "ExecStart=/opt/sitegate/venv/bin/sitegate web serve",
        "User=sitegate",
        "Restart=on-failure",
        "InaccessiblePaths=-/var/lib/sitegate/device.key",
        "PrivateDevices=yes",
        "ProtectSystem=strict",
        "MemoryMax=200M",
    ):
        assert re.search(rf"^{re.escape(line)}$", text, re.MULTILINE), line


def rendered(**names: str) -> str:
    """The unit as `make install` writes it under these names (`make unit` prints it with the same substitution)."""
    variables = [f"{name}={value}" for name, value in names.items()]
    result = subprocess.run(
        ["make", "-s", "--no-print-directory", "-C", str(REPO), "unit", *variables],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0, result.stderr
    return result.stdout


def lines(text: str, *keys: str) -> dict[str, list[str]]:
    found = {key: [] for key in keys}
    for line in text.splitlines():
        key, _, value = line.partition("=")
        if key in found:
            found[key].append(value)
    return found


def test_installed_under_other_names_the_unit_runs_as_that_user_in_that_folder(tmp_path):
    assert rendered() == UNIT.read_text()  # the default install writes the unit as it is in the repository
    venv_bin = tmp_path / "opt" / "venv" / "bin"
    venv_bin.mkdir(parents=True)
    (venv_bin / "sitegate").symlink_to(Path(sys.executable).parent / "sitegate")  # verify checks ExecStart exists
    names = {
        "INSTALL_DIR": str(tmp_path / "opt"),
        "CONFDIR": "/srv/gate/etc",
        "STATEDIR": "/srv/gate/state",
        "SITEGATE_USER": "gatekeeper",
        "HW_GROUPS": "gpio",
    }
    text = rendered(**names)
    keys = ("User", "Group", "SupplementaryGroups", "StateDirectory", "StateDirectoryMode", "ReadWritePaths")
    assert lines(text, *keys, "ConfigurationDirectory", "ExecStart", "Environment", "WorkingDirectory") == {
        "User": ["gatekeeper"],
        "Group": ["gatekeeper"],
        "SupplementaryGroups": ["gpio"],
        "StateDirectory": [],  # a name under /var/lib only: elsewhere the folder is made writable
        "StateDirectoryMode": [],
        "ReadWritePaths": ["/srv/gate/state", "-/var/lib/prometheus/node-exporter"],  # and the metrics textfile's
        "ConfigurationDirectory": [],  # read only, and not under /etc: systemd has nothing to create
        "ExecStart": [f"{venv_bin}/sitegate run"],
        "Environment": ["SITEGATE_CONFIG=/srv/gate/etc/sitegate.toml PYTHONUNBUFFERED=1"],
        "WorkingDirectory": ["/srv/gate/state"],  # where lgpio can create its notify pipe
    }
    unit = tmp_path / "sitegate.service"
    unit.write_text(text)
    result = subprocess.run(["systemd-analyze", "verify", str(unit)], capture_output=True, text=True)
    assert result.returncode == 0 and "sitegate.service" not in result.stderr, result.stderr
    under_var_lib = rendered(STATEDIR="/var/lib/gate-2/", CONFDIR="/etc/gate-2", HW_GROUPS="")
    keys = ("StateDirectory", "ConfigurationDirectory", "SupplementaryGroups", "WorkingDirectory")
    assert lines(under_var_lib, *keys) == {
        "StateDirectory": ["gate-2"],
        "WorkingDirectory": ["/var/lib/gate-2"],
        "ConfigurationDirectory": ["gate-2"],
        "SupplementaryGroups": [""],
    }
