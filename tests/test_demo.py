"""`make demo` is a newcomer's first contact: it must run end to end and say what happened."""

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
