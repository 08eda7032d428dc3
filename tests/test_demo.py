"""`make demo` is a newcomer's first contact: it must run end to end and say what happened."""

import os
import sys
from pathlib import Path

from conftest import run_sitegate


def test_scripted_morning_runs_to_delivered(tmp_path):
    result = run_sitegate("demo", "--dir", str(tmp_path / "demo"))
    assert result.returncode == 0, result.stderr[-2000:]
    out = result.stdout
    assert "35 registered, 1 duplicate_suppressed, 1 unknown_badge" in out
    assert "delivered       35 (pending 0, rejected 0)" in out
    assert "OUT without IN in the previous 24 hours." in out
    verified = run_sitegate("verify", config=tmp_path / "demo" / "sitegate.toml")
    assert verified.returncode == 0


def test_the_site_demo_runs_two_gates_on_a_local_broker(tmp_path):
    result = run_sitegate("demo", "--site", "--dir", str(tmp_path / "site"))
    assert result.returncode == 0, result.stdout[-2000:] + result.stderr[-2000:]
    out = result.stdout
    assert "2 on site now" in out  # four IN at gate-a, two OUT at gate-b: seen at gate-b
    assert "Çelik" in out and "Dvořák" not in out.split("$ sitegate fleet")[0]
    fleet = out.split("$ sitegate fleet")[1]
    assert "OK     site-1  gate-a" in fleet and "OK     site-1  gate-b" in fleet


def test_the_site_demo_says_how_to_install_the_broker(tmp_path):
    bare = tmp_path / "bin"  # a PATH with the sitegate command and no mosquitto
    bare.mkdir()
    (bare / "sitegate").symlink_to(Path(sys.executable).parent / "sitegate")
    env = {**os.environ, "PATH": str(bare)}
    result = run_sitegate("demo", "--site", "--dir", str(tmp_path / "site"), env=env)
    assert result.returncode == 1
    assert "sudo apt-get install mosquitto" in result.stdout
