import json
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest
from conftest import REPO, run_sitegate

from sitegate.domain.roster import parse_csv
from sitegate.errors import RosterError

DEMO_ROSTER = REPO / "firmware" / "data" / "demo_roster.csv"
HEADER = "badge_uid,niss,limosa,last_name,first_name,employer,valid_from,valid_until\n"


def test_demo_roster_parses_with_diacritics_intact():
    parsed = parse_csv(DEMO_ROSTER.read_text(encoding="utf-8"), ("0403170701",))
    assert not parsed.bad_rows and not parsed.warnings
    names = {w.last_name for w in parsed.workers}
    assert {"Dvořák", "Nowak-Łukasiewicz", "Çelik", "Ødegård"} <= names


def test_bad_rows_named_with_line_and_reason():
    text = HEADER + (
        "04A1B2C3,85073003328,,Dvořák,Antonín,0403170701,,\n"
        "04A1B2C4,85073003329,,Bad,Check,0403170701,,\n"
        "XYZ,85073003328,,Bad,Uid,0403170701,,\n"
        "04A1B2C5,,,No,Number,0403170701,,\n"
        "04A1B2C3,17073003384,,Twice,Badge,0403170701,,\n"
        "04A1B2C6,17073003384,,Bad,Date,0403170701,2026-13-01,\n"
        "04A1B2C7,17073003384,,,Noname,0403170701,,\n"
    )
    parsed = parse_csv(text)
    reasons = {bad.line: bad.reason for bad in parsed.bad_rows}
    assert set(reasons) == {3, 4, 5, 6, 7, 8}
    assert "check digits" in reasons[3]
    assert "card UID" in reasons[4]
    assert "neither" in reasons[5]
    assert "line 2" in reasons[6]
    assert "not a date" in reasons[7]
    assert "last_name" in reasons[8]
    assert len(parsed.workers) == 1


def test_semicolons_bom_and_foreign_employer_warning():
    text = "\ufeff" + HEADER.replace(",", ";") + "04A1B2C3;85073003328;;Dvořák;Antonín;0202.239.951;;\n"
    parsed = parse_csv(text, ("0403170701",))
    assert len(parsed.workers) == 1 and "remark 1" in parsed.warnings[0]


def test_missing_columns_are_named():
    with pytest.raises(RosterError, match="employer, niss or limosa"):
        parse_csv("badge_uid,last_name,first_name\n")


def test_import_command_is_all_or_nothing(tmp_path, config_file):
    good = tmp_path / "good.csv"
    good.write_text(DEMO_ROSTER.read_text(encoding="utf-8"), encoding="utf-8")
    result = run_sitegate("roster", "import", str(good), config=config_file)
    assert result.returncode == 0, result.stderr
    bad = tmp_path / "bad.csv"
    bad.write_text(HEADER + "04A1B2C9,85073003328,,Nieuw,Piet,0403170701,,\nXX,1,,A,B,0403170701,,\n", encoding="utf-8")
    refused = run_sitegate("roster", "import", str(bad), config=config_file)
    assert refused.returncode == 2 and "line 3" in refused.stderr and "nothing imported" in refused.stderr
    listed = json.loads(run_sitegate("roster", "list", "--json", config=config_file).stdout)
    assert len(listed) == 5  # the old roster is still whole
    skipped = run_sitegate("roster", "import", str(bad), "--skip-bad", config=config_file)
    assert skipped.returncode == 1 and "1 worker" in skipped.stdout
    listed = json.loads(run_sitegate("roster", "list", "--json", config=config_file).stdout)
    assert [w["last_name"] for w in listed] == ["Nieuw"]


def test_list_masks_personal_numbers_and_keeps_names(tmp_path, config_file):
    run_sitegate("roster", "import", str(DEMO_ROSTER), config=config_file, check=True)
    table = run_sitegate("roster", "list", config=config_file).stdout
    assert "85073003328" not in table and "*********28" in table
    assert "Nowak-Łukasiewicz" in table and "Ødegård" in table
    assert table.index("Çelik") < table.index("Dvořák") < table.index("Ødegård") < table.index("Peeters")


def test_two_badges_for_one_worker_are_a_warning_with_the_number_masked():
    text = (
        HEADER
        + "04A1B2C3,85073003328,,Dvořák,Antonín,0403170701,,\n04A1B2C4,85073003328,,Dvořák,Antonín,0403170701,,\n"
    )
    parsed = parse_csv(text, ("0403170701",))
    [warning] = parsed.warnings
    assert "line 3" in warning and "04A1B2C3 (line 2)" in warning and "85073003328" not in warning
    assert len(parsed.workers) == 2  # both kept: a technician decides which one is the old badge


@pytest.mark.skipif(os.geteuid() != 0, reason="needs root to read as another user")
def test_a_roster_the_command_s_user_cannot_read_names_who_and_how(tmp_path):
    import pwd

    nobody = pwd.getpwnam("nobody")
    folder = Path(tempfile.mkdtemp())
    try:
        folder.chmod(0o755)
        roster = folder / "roster.csv"
        roster.write_text(HEADER, encoding="utf-8")
        roster.chmod(0o600)  # a technician's own file, as it came out of their mail
        code = (
            "from sitegate.domain.roster import read_csv\n"
            f"try:\n read_csv({str(roster)!r})\nexcept Exception as e:\n print(e)"
        )
        command = ["setpriv", f"--reuid={nobody.pw_uid}", f"--regid={nobody.pw_gid}", "--clear-groups"]
        shown = subprocess.run([*command, sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
        assert f"{roster} cannot be read by nobody" in shown.stdout and "owned by root:root, mode 0600" in shown.stdout
        assert "install -m 0644" in shown.stdout
    finally:
        shutil.rmtree(folder)
