"""`make demo` is a newcomer's first contact: it must run end to end and say what happened."""

import os
import sys
from pathlib import Path

import pytest
from conftest import run_sitegate

from sitegate.queue import database, delivery


def test_scripted_morning_runs_to_delivered(tmp_path):
    result = run_sitegate("demo", "--dir", str(tmp_path / "demo"))
    assert result.returncode == 0, result.stderr[-2000:]
    out = result.stdout
    assert "35 registered, 1 duplicate_suppressed, 1 unknown_badge" in out
    assert "delivered       35 (pending 0, rejected 0)" in out
    assert "OUT without IN in the previous 24 hours." in out
    verified = run_sitegate("verify", config=tmp_path / "demo" / "sitegate.toml")
    assert verified.returncode == 0
    # the commands it suggests next are runnable as printed: the config exported, the command by its full path
    assert f"export SITEGATE_CONFIG={tmp_path / 'demo' / 'sitegate.toml'}" in out
    assert f"  {Path(sys.executable).parent / 'sitegate'} status" in out


def test_the_demo_runs_on_the_soap_channel_to_delivered(tmp_path):
    result = run_sitegate("demo", "--channel", "soap", "--dir", str(tmp_path / "demo"))
    assert result.returncode == 0, result.stderr[-2000:]
    assert "(SOAP channel)" in result.stdout and "delivered       35 (pending 0, rejected 0)" in result.stdout
    config = tmp_path / "demo" / "sitegate.toml"
    assert 'channel = "soap"\nfallback = "rest"' in config.read_text()
    ledger = database.connect_readonly(tmp_path / "demo" / "data" / "sitegate.db")
    ids = [row.service_id for row in delivery.rows(ledger)]
    # a SOAP PresenceRegistrationId is a long (the REST simulator's ids are "SIM-…"): each came over SOAP
    assert len(ids) == 35 and all(service_id.isdigit() for service_id in ids), ids
    assert run_sitegate("verify", config=config).returncode == 0


def test_badging_by_hand_is_said_as_a_person_reads_it_and_ctrl_d_stops_it(tmp_path):
    result = run_sitegate("demo", "--interactive", "--dir", str(tmp_path / "demo"), input="04A1B2C3\n")
    assert result.returncode == 0, result.stderr[-2000:]
    assert "04A1B2C3: registered IN" in result.stdout and "gate stopped" in result.stdout
    assert '{"ts"' not in result.stdout  # no JSON line for a person to decode


def test_the_demo_folder_is_replaced_at_each_run_and_no_other_folder_is_touched(tmp_path):
    from sitegate.demo import fresh
    from sitegate.errors import SitegateError

    first = fresh(tmp_path / "demo-data")
    (first / "left-over").write_text("from the last run")
    again = fresh(tmp_path / "demo-data")
    assert again == first and not (again / "left-over").exists()
    mine = tmp_path / "photos"
    mine.mkdir()
    (mine / "holiday.jpg").write_text("not a demo")
    with pytest.raises(SitegateError, match="holds no earlier demo"):
        fresh(mine)
    assert (mine / "holiday.jpg").exists()


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
