"""The foreman's page: how fast the signed-in state page loads while a rush of badges runs, and how much the
page's load costs the badge path (the same badge-to-feedback measure as bench_gate, the page loaded meanwhile)."""

from __future__ import annotations

import contextlib
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

from bench_gate import _peak_rss_mb, badge_latencies, bare_interpreter, percentile

from sitegate.pins import hash_pin

HERE = Path(__file__).resolve().parent
PIN = "246810"
IDLE_LOADS = 300


def web_section() -> str:
    return (
        '\n[web]\nenabled = true\nlisten = "127.0.0.1"\nport = 0\n'
        f'[[web.foreman]]\nname = "Bench Foreman"\npin_hash = "{hash_pin(PIN)}"\n'
    )


@contextlib.contextmanager
def page_process(config_file: Path):
    """`sitegate web serve` for this site; yields its URL and process id."""
    env = {**os.environ, "SITEGATE_CONFIG": str(config_file)}
    process = subprocess.Popen(
        [str(Path(sys.executable).parent / "sitegate"), "web", "serve"],
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
        env=env,
        preexec_fn=lambda: os.nice(5),  # as systemd/sitegate-web.service runs it (Nice=5)
    )
    try:
        for line in process.stdout:
            if '"web_ready"' in line:
                yield json.loads(line)["url"].rstrip("/"), process.pid
                break
        else:
            raise RuntimeError("the page did not start")
    finally:
        process.terminate()
        process.wait(20)


def loader(url: str, count: int = 0) -> subprocess.Popen:
    """The phones. They are not on the gate: at the lowest priority here, their own CPU time competes as little as
    possible with the gate's (the page's process still serves every load they ask for)."""
    return subprocess.Popen(
        [sys.executable, str(HERE / "page_load.py"), url, PIN, str(count)],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
        preexec_fn=lambda: os.nice(19),
    )


def bench_web(scratch: Path, result) -> list[dict]:
    found: dict[str, list[float]] = {}

    @contextlib.contextmanager
    def page_under_load(config_file: Path):
        with page_process(config_file) as (url, pid):
            idle = loader(url, IDLE_LOADS)  # the reference: the same page while the gate is idle
            found["idle"] = json.loads(idle.communicate(timeout=300)[0])
            rush = loader(url)
            try:
                yield
            finally:
                found["rush"] = json.loads(rush.communicate("", timeout=60)[0])
                found["rss"] = [_peak_rss_mb(pid)]

    latencies, floor = badge_latencies(scratch / "web", web_section(), page_under_load)
    return [
        result(
            "page_load_p99_ms",
            percentile(found["rush"], 0.99),
            "ms",
            percentile(found["idle"], 0.99),
            f"<= 200 ms during the rush ({len(found['rush'])} loads; reference: the page with the gate idle)",
        ),
        result(
            "badge_to_feedback_p99_ms_with_page",
            percentile(latencies, 0.99),
            "ms",
            percentile(floor, 0.99),
            "ratio <= 2 (reference: raw durable insert p99), the page loaded meanwhile",
        ),
        result(
            "web_peak_rss_mb",
            found["rss"][0],
            "MB",
            bare_interpreter()[1],
            "the page's process after the rush (reference: a bare interpreter); its unit caps it at 200 MB",
        ),
    ]


if __name__ == "__main__":
    with tempfile.TemporaryDirectory() as directory:
        print(json.dumps(bench_web(Path(directory), lambda *a: a), indent=1))
