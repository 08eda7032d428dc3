"""queue/ must never shadow the standard library's queue (urllib3, hence requests, needs it; the README's Layout)."""

import subprocess
import sys

from conftest import REPO


def test_stdlib_queue_wins_from_the_repo_root():
    result = subprocess.run(
        [sys.executable, "-c", "import queue, requests; queue.LifoQueue; print(queue.__file__)"],
        cwd=REPO,
        capture_output=True,
        text=True,
    )
    assert result.returncode == 0, result.stderr
    assert "site-packages" not in result.stdout and str(REPO) not in result.stdout


def test_pytest_collects_from_the_repo_root():
    result = subprocess.run(
        [sys.executable, "-m", "pytest", "--collect-only", "-q", "tests/test_identifiers.py"],
        cwd=REPO,
        capture_output=True,
        text=True,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "LifoQueue" not in result.stdout + result.stderr


def test_the_package_queue_is_ours():
    import sitegate.queue.log

    assert sitegate.queue.log.__file__.endswith("sitegate/queue/log.py")
    assert not (REPO / "queue" / "__init__.py").exists(), "an __init__.py in queue/ would shadow the stdlib"
