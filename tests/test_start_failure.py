"""A data directory the daemon cannot write: the daemon and `sitegate status` name the file, its owner and mode,
and the command that fixes it, and status shows the daemon's last start failure instead of only "not running"."""

from __future__ import annotations

import os
import pwd
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest
from conftest import CONFIG_TEXT

from sitegate import config as configuration
from sitegate import health
from sitegate.clock import SYSTEM
from sitegate.device import Device

NOBODY = pwd.getpwnam("nobody")
pytestmark = pytest.mark.skipif(os.geteuid() != 0, reason="needs root to run the daemon as another user")


def as_nobody(*args: str, env: dict) -> subprocess.CompletedProcess:
    command = ["setpriv", f"--reuid={NOBODY.pw_uid}", f"--regid={NOBODY.pw_gid}", "--clear-groups"]
    command += [str(Path(sys.executable).parent / "sitegate"), *args]
    return subprocess.run(command, capture_output=True, text=True, env=env, timeout=60)


@pytest.fixture
def foreign_data_dir():
    """A gate whose data directory belongs to root (restored from a backup as root, say): readable, not writable."""
    with tempfile.TemporaryDirectory() as folder:
        base = Path(folder)
        base.chmod(0o755)
        (base / "sitegate.toml").write_text(CONFIG_TEXT, encoding="utf-8")
        config = configuration.load(base / "sitegate.toml")
        Device.open(config, SYSTEM).close()
        config.data_dir.chmod(0o755)
        for file in config.data_dir.iterdir():
            file.chmod(0o644)
        runtime = base / "run"
        runtime.mkdir(mode=0o700)
        os.chown(runtime, NOBODY.pw_uid, NOBODY.pw_gid)
        env = {**os.environ, "SITEGATE_CONFIG": str(base / "sitegate.toml"), "RUNTIME_DIRECTORY": str(runtime)}
        env["GPIOZERO_PIN_FACTORY"] = "mock"  # no GPIO here: the gate's LEDs on gpiozero's mock pins
        yield config, env


def test_a_data_directory_the_daemon_cannot_write_is_named_with_its_fix(foreign_data_dir):
    config, env = foreign_data_dir
    started = as_nobody("run", env=env)
    assert started.returncode != 0
    assert f"{config.data_dir}" in started.stderr and "owned by root:root, mode " in started.stderr
    assert f"sudo chown -R nobody: {config.data_dir}" in started.stderr
    assert "sitegate status" not in started.stderr  # the fix no longer points in a circle
    assert not list(config.data_dir.glob("*.corrupt-*"))  # a file we cannot write is not corrupt: nothing moved

    status = as_nobody("status", env=env)
    assert status.returncode == 2
    assert "daemon: NOT RUNNING; the daemon failed to start at " in status.stderr
    assert status.stderr.count("sudo chown -R nobody:") == 2  # the daemon's failure, then status's own


def test_status_shows_the_last_start_failure_and_forgets_it_once_started():
    failure = {"utc": "2026-12-02T13:00:00.000000Z", "problem": "the disk is read-only", "fix": "replace the card"}
    [finding] = health.start_failure(failure)
    assert finding.severity == health.CRITICAL
    assert finding.text == (
        "the daemon failed to start at 2026-12-02 14:00:00 CET: the disk is read-only — fix: replace the card"
    )
    assert health.start_failure(None) == []
