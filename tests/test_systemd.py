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
