"""Remarks come back with their registration, explained, and the ones with a deadline come first."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import registration, run_sitegate
from inprocess import simulated_site
from simulator_process import client_credentials

from sitegate.domain.registration import append_registration
from sitegate.output import PIPE_CLOSED
from sitegate.queue import delivery
from sitegate.service.presence_rest_v1 import ItemResult
from sitegate.service.remarks import (
    OUR_TRANSLATION,
    OWN_RESEND,
    action_wording,
    info,
    needing_action,
    remark_wording,
    table,
)


def test_the_official_table_is_shipped_whole():
    codes = sorted(table())
    assert codes == [1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 14, 15, 16, 17, 21, 22, 24, 25, 32, 33, 34, 35, 36, 37, 38]
    assert info(10).web_form_report and not info(21).needs_action and info(32).needs_action


def test_late_registration_is_flagged_and_remark_32_kept(tmp_path, clock):
    credentials = client_credentials(tmp_path / "credentials")
    with simulated_site(tmp_path, clock, credentials) as (device, service, forwarder):
        append_registration(device.log, registration(0))
        clock.advance(900)  # the reception delay of the configuration and of the simulator
        append_registration(device.log, registration(1))
        forwarder.drain()
        rows = device.db.execute("SELECT seq, expected_remarks, remarks FROM delivery ORDER BY seq").fetchall()
        assert [(json.loads(e), json.loads(r)) for _, e, r in rows] == [([32], [32]), ([], [])]
        listed = needing_action(device.db)
        assert [(i.seq, i.code) for i in listed] == [(1, 32)] and "clock" in listed[0].cause


def test_deadline_first_then_the_rest(device, clock):
    for index in range(3):
        append_registration(device.log, registration(index))
        clock.advance(3600)
    delivery.take_batch(device.ledger, 10, "2026-11-22T10:00:00.000000Z", "gate-01", delivery.ClockHold.at(clock, 0))
    delivery.settle(
        device.ledger,
        [
            (1, ItemResult(True, "A", "INVALID", (32,))),
            (2, ItemResult(True, "B", "INVALID", (12,))),
            (3, ItemResult(True, "C", "INVALID", (1, 21))),
        ],
        "2026-11-22T10:00:00.000000Z",
    )
    listed = needing_action(device.db)
    assert [(i.seq, i.code) for i in listed] == [(2, 12), (3, 1), (1, 32)]
    assert listed[0].deadline_utc == "2026-12-22T08:00:00.000000Z"
    assert all("*" in i.worker for i in listed)
    assert listed[0].as_dict()["deadline_basis"].startswith("assumed") and listed[2].as_dict()["deadline_basis"] is None


def test_the_procedure_s_own_words_for_remarks_24_and_5():
    assert not info(24).needs_action  # "cette situation ne peut être rectifiée": nothing to act on
    assert "INASTI" in info(5).action and "BCE" in info(5).action and info(5).needs_action


@pytest.mark.parametrize("argv", [["remarks"], ["remarks", "--json"]])
def test_a_reader_gone_away_is_no_traceback(device, config_file, argv):
    """`sitegate remarks | head`: the pipe closes before we write; the command stops quietly."""
    read_end, write_end = os.pipe()
    os.close(read_end)  # the reader has already taken what it wanted
    env = {**os.environ, "SITEGATE_CONFIG": str(config_file)}
    command = [str(Path(sys.executable).parent / "sitegate"), *argv]
    try:
        done = subprocess.run(command, stdout=write_end, stderr=subprocess.PIPE, env=env, timeout=60)
    finally:
        os.close(write_end)
    assert (done.returncode, done.stderr.decode()) == (PIPE_CLOSED, "")


def test_remark_14_is_ours_only_where_an_answer_was_lost(device, clock):
    """Two registrations draw remark 14; only the one whose earlier send lost its answer is our own resend."""
    for index in range(2):
        append_registration(device.log, registration(index))
        clock.advance(1)
    now = "2026-11-22T10:00:00.000000Z"
    [first] = delivery.take_batch(device.ledger, 1, now, "gate-01", delivery.ClockHold.at(clock, 0))
    delivery.release(device.ledger, [first.seq], "bulk call: no answer in time", "no_answer", now, answer_lost=True)
    delivery.take_batch(device.ledger, 10, now, "gate-01", delivery.ClockHold.at(clock, 0))
    delivery.settle(
        device.ledger, [(1, ItemResult(True, "A", "INVALID", (14,))), (2, ItemResult(True, "B", "INVALID", (14,)))], now
    )
    blamed, ours = needing_action(device.db)
    assert (blamed.seq, blamed.needs_action, ours.seq, ours.needs_action) == (2, True, 1, False)
    assert "explain to the worker" in blamed.action and blamed.action_in("fr") == blamed.action
    assert [ours.action_in(language) for language in ("en", "fr", "nl")] == [OWN_RESEND[k] for k in ("en", "fr", "nl")]
    assert "lost" in ours.cause and ours.as_dict()["own_resend"]


def test_remarks_in_the_foreman_s_language_our_translations_said_so(device, config_file, clock):
    """`sitegate remarks --lang fr|nl|en`: the remark and its action in that language; the French and Dutch
    actions and the Dutch remarks are our translations, marked "*" and said so, never passed off as official."""
    append_registration(device.log, registration(0))
    now = "2026-11-22T10:00:00.000000Z"
    delivery.take_batch(device.ledger, 10, now, "gate-01", delivery.ClockHold.at(clock, 0))
    delivery.settle(device.ledger, [(1, ItemResult(True, "A", "INVALID", (10,)))], now)
    english = run_sitegate("remarks", config=config_file).stdout
    assert info(10).text_en in english and info(10).action in english
    assert f"{info(10).action} *" not in english and OUR_TRANSLATION["en"] not in english  # the official list's
    for language, official in (("fr", True), ("nl", False)):
        remark = remark_wording(10, language).text
        shown = run_sitegate("remarks", "--lang", language, config=config_file)
        action = action_wording(10, language)
        assert action.translated and f"{action.text} *" in shown.stdout.replace("\n", " ")
        assert remark in shown.stdout and (f"{remark} *" in shown.stdout) is not official
        assert shown.stdout.rstrip().endswith(f"* {OUR_TRANSLATION[language]}")
        [item] = json.loads(run_sitegate("remarks", "--lang", language, "--json", config=config_file).stdout)
        assert item["language"] == language and item["action"] == action.text
        assert item["translated"] == (["action"] if official else ["text", "action"])
