"""The shipped Prometheus alerting rules, checked and unit-tested with Debian's promtool."""

from __future__ import annotations

import re
import subprocess

from conftest import REPO

RULES = REPO / "systemd" / "prometheus"


def test_the_alerting_rules_are_valid_and_fire_as_their_tests_say():
    checked = subprocess.run(
        ["promtool", "check", "rules", "sitegate-alerts.yml"], cwd=RULES, capture_output=True, text=True, timeout=60
    )
    assert checked.returncode == 0, checked.stdout + checked.stderr
    assert "SUCCESS: 11 rules found" in checked.stdout
    tested = subprocess.run(
        ["promtool", "test", "rules", "sitegate-alerts.test.yml"], cwd=RULES, capture_output=True, text=True, timeout=60
    )
    assert tested.returncode == 0, tested.stdout + tested.stderr
    assert "SUCCESS" in tested.stdout


def test_every_metric_the_rules_use_is_one_the_gate_writes(device):
    from sitegate.metrics import Metrics

    metrics = Metrics()
    metrics.refresh(device, device.log.clock.now())
    written = metrics.text()
    rules = (RULES / "sitegate-alerts.yml").read_text()
    used = set(re.findall(r"\b(sitegate_[a-z_]+)", rules))
    assert used and all(f"\n{name}" in written or f"\n{name}{{" in written for name in used), used


def test_the_rules_name_no_scrape_job_and_warn_of_the_disk_where_status_does():
    """The job is the site's scrape configuration, never ours; a disk alert at another size than `sitegate status`."""
    from sitegate.health import LOW_DISK_BYTES

    rules = (RULES / "sitegate-alerts.yml").read_text()
    assert "job=" not in rules
    assert f"sitegate_disk_free_bytes < {LOW_DISK_BYTES}\n" in rules
