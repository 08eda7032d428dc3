"""The package as pip builds it: every data file inside, and a build that prints no warning a newcomer would read
as a failure (`make demo` and `make install` show pip's output)."""

from __future__ import annotations

import subprocess
import sys
import zipfile

from conftest import REPO


def test_the_wheel_holds_the_page_and_builds_without_warnings(tmp_path):
    built = subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-w", str(tmp_path), str(REPO)],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert built.returncode == 0, built.stderr
    assert "BuildBackendWarning" not in built.stdout + built.stderr
    [wheel] = tmp_path.glob("sitegate-*.whl")
    names = set(zipfile.ZipFile(wheel).namelist())
    for needed in ("sitegate/web/templates/home.tpl", "sitegate/web/static/page.css", "sitegate/data/remarks.csv"):
        assert needed in names
