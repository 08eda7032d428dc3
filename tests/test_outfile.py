"""`--out` (paper print, export): never over the device's own data, never a traceback, whole or not at all."""

from __future__ import annotations

import json
import os
import sqlite3
from pathlib import Path

import pytest
from conftest import run_sitegate

from sitegate import outfile
from sitegate.errors import OutputFileError

SQLITE_HEADER = b"SQLite format 3\x00"


@pytest.fixture
def data(config_file: Path, tmp_path: Path) -> Path:
    """A gate that printed one listing: a signed record in the log, a checkpoint in the head file."""
    first = run_sitegate("paper", "print", "--out", str(tmp_path / "first.pdf"), config=config_file)
    assert first.returncode == 0, first.stderr
    return tmp_path / "data"


def records(data: Path) -> int:
    conn = sqlite3.connect(data / "sitegate.db")
    try:
        return conn.execute("SELECT count(*) FROM records").fetchone()[0]
    finally:
        conn.close()


def assert_refused(result, *needles: str) -> None:
    assert result.returncode == 2, result.stdout + result.stderr
    assert "Traceback" not in result.stderr
    for needle in needles:
        assert needle in result.stderr, result.stderr


def test_paper_print_refuses_the_database_and_the_key(data, config_file):
    before = records(data)
    for name in ("sitegate.db", "device.key"):
        kept = (data / name).read_bytes()
        result = run_sitegate("paper", "print", "--out", str(data / name), config=config_file)
        assert_refused(result, "error: ", "inside the data directory", "fix: write it elsewhere, such as /tmp/")
        assert (data / name).read_bytes()[:16] == kept[:16]
    assert (data / "sitegate.db").read_bytes().startswith(SQLITE_HEADER)
    assert records(data) == before  # no paper_listing record for a listing that was not written
    assert run_sitegate("verify", config=config_file).returncode == 0


def test_export_refuses_the_head_file_even_through_a_symlink(data, config_file, tmp_path):
    head = data / "sitegate-head.json"
    held = head.read_text()
    assert json.loads(held)["seq"] >= 1
    result = run_sitegate("export", "--out", str(head), config=config_file)
    assert_refused(result, "inside the data directory")
    link = tmp_path / "innocent.jsonl"
    link.symlink_to(head)
    result = run_sitegate("export", "--out", str(link), config=config_file)
    assert_refused(result, "inside the data directory")
    relative = run_sitegate("export", "--out", "data/../data/sitegate-head.json", config=config_file, cwd=tmp_path)
    assert_refused(relative, "inside the data directory")
    assert head.read_text() == held and link.is_symlink()


def test_a_folder_that_does_not_exist_is_an_error_with_the_fix(data, config_file):
    for command in (("paper", "print"), ("export",)):
        result = run_sitegate(*command, "--out", "/nonexistent/sitegate/x.pdf", config=config_file)
        assert_refused(result, "error: cannot write /nonexistent/sitegate/x.pdf", "user can write, such as /tmp")


def test_a_folder_or_a_device_is_not_overwritten(data, config_file, tmp_path):
    folder = tmp_path / "listings"
    folder.mkdir()
    assert_refused(run_sitegate("export", "--out", str(folder), config=config_file), "is a folder")
    assert_refused(run_sitegate("paper", "print", "--out", os.devnull, config=config_file), "not a regular file")
    fifo = tmp_path / "pipe"
    os.mkfifo(fifo)
    with pytest.raises(OutputFileError, match="not a regular file"):
        outfile.write_bytes(fifo, b"x", data)  # would block, then feed whoever reads the pipe


def test_an_existing_file_is_replaced_whole_and_nothing_is_left_beside_it(data, config_file, tmp_path):
    out = tmp_path / "export.jsonl"
    out.write_text("an older export\n")
    result = run_sitegate("export", "--out", str(out), config=config_file)
    assert result.returncode == 0, result.stderr
    assert json.loads(out.read_text().splitlines()[0])["format"] == "sitegate-export/1"
    assert run_sitegate("verify", "--export", str(out), config=config_file).returncode == 0
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(["data", "export.jsonl", "first.pdf", "sitegate.toml"])


def test_a_failed_write_leaves_the_old_file(tmp_path):
    data, out = tmp_path / "data", tmp_path / "listing.pdf"
    data.mkdir()
    out.write_bytes(b"yesterday's listing")
    with pytest.raises(RuntimeError), outfile.replacing(out, data) as handle:
        handle.write(b"half of today's")
        raise RuntimeError("the renderer failed")
    assert out.read_bytes() == b"yesterday's listing"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["data", "listing.pdf"]


@pytest.mark.parametrize("umask", [0o000, 0o022, 0o077])
def test_files_with_every_niss_are_for_the_owner_and_the_group_only(data, config_file, tmp_path, umask):
    """An export and a listing hold every full NISS: never readable by any local user (the umask's 0644), and still
    by the admin group the technicians' command runs as (tests/test_install.py checks that part as a technician)."""
    export, listing = tmp_path / "export.jsonl", tmp_path / "listing.pdf"
    listing.write_bytes(b"yesterday's listing")
    listing.chmod(0o644)  # replaced: the new file's mode, not the old one's
    previous = os.umask(umask)
    try:
        assert run_sitegate("export", "--out", str(export), config=config_file).returncode == 0
        assert run_sitegate("paper", "print", "--out", str(listing), config=config_file).returncode == 0
    finally:
        os.umask(previous)
    assert [oct(p.stat().st_mode & 0o777) for p in (export, listing)] == ["0o640", "0o640"]
