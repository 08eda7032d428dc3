"""Issue 23 §3 and §4: what a technician and a foreman do with the site's warnings, on a real mosquitto (TLS, the
shipped configuration and ACL) and real daemons: gate-a, gate-b and gate-c run; gate-c's password is also what
the tests misuse to send messages every gate rejects.

§3: a rejection warns while recent until a technician acknowledges it (a signed record); only newer ones warn.
§4: a worker whose direction was decided apart (the bus down, toggle readers) is flagged wherever people look.
"""

from __future__ import annotations

import functools
import json
import re

import pytest
from gate_site import wait_until as wait
from pypdf import PdfReader
from selenium.webdriver.common.by import By
from site_bus import badge, client, roster_rows, running_site
from test_web import sign_in
from test_web import text as text_of
from web_site import PINS, WebProcess, browser, screenshot

from sitegate.commissioning import actor
from sitegate.domain.gate import UNCERTAIN
from sitegate.domain.presence import DOUBT_MARK, DOUBT_WORDS
from sitegate.pins import hash_pin
from sitegate.queue import database
from sitegate.queue.log import LogView
from sitegate.queue.records import Kind
from sitegate.site import topics
from sitegate.site.broker import SITE, LocalBroker

pytestmark = pytest.mark.slow

FIRST_UID = 0x60000000
ROSTER = roster_rows(FIRST_UID, 4 * 10**16, "Ops", 20)
worker_uid = functools.partial(badge, FIRST_UID)
REJECTION = "message(s) from the bus failed verification"
ANNA = "Anna Janssens"


@pytest.fixture(scope="module")
def site(tmp_path_factory):
    with running_site(tmp_path_factory.mktemp("ops"), ROSTER) as (broker, gates, _):
        yield broker, gates


def garbage_as_gate_c(broker: LocalBroker, count: int = 1) -> None:
    """What someone holding gate-c's password can publish: every gate rejects it."""
    connection = client(broker, "gate-c", "test-misused-gate-c")
    try:
        wait(connection.is_connected, "gate-c's credentials connected")
        for _ in range(count):
            connection.publish(topics.topic(SITE, "gate-c", topics.RECORDS), b"not json", qos=1).wait_for_publish(30)
    finally:
        connection.loop_stop()
        connection.disconnect()


def fleet_state(gate, device: str) -> dict:
    return next(g for g in gate.json("fleet") if g["device"] == device)


def rejection_warnings(status: dict) -> list[str]:
    return [w for w in status["warnings"] if REJECTION in w]


def test_3_a_technician_acknowledges_the_rejections_and_only_newer_ones_warn(site):
    broker, gates = site
    a, b = gates["gate-a"], gates["gate-b"]
    wait(lambda: b.sitegate("status").returncode == 0, "gate-b healthy: every peer heard")
    garbage_as_gate_c(broker, 3)
    status = wait(lambda: (s := b.json("status"))["bus"]["rejected_last_hour"] >= 3 and s, "gate-b rejects them")
    assert rejection_warnings(status) and b.sitegate("status").returncode == 1
    wait(lambda: fleet_state(a, "gate-b")["state"] == "warning", "the fleet shows gate-b amber")
    assert b.sitegate("site").returncode == 1

    assert b.sitegate("site", "acknowledge").returncode == 2  # no reason: refused, nothing signed
    done = b.sitegate("site", "acknowledge", "--reason", "gate-c's password misused by the test", "--json")
    assert done.returncode == 0, done.stderr
    acknowledged = json.loads(done.stdout)
    assert acknowledged["acknowledged"] >= 3 and acknowledged["by"] == actor()
    assert all(r["device"] == "gate-c" and r["reason"] == "not JSON" for r in acknowledged["latest"])
    with database.connect(b.directory / "data" / "sitegate.db") as db:
        record = next(LogView(db).newest(Kind.BUS_REJECTIONS_ACK))
    assert record.seq == acknowledged["record"] and record.data["reason"] == "gate-c's password misused by the test"
    assert record.data["rejections"] == acknowledged["acknowledged"] and record.data["by"] == actor()
    again = b.sitegate("site", "acknowledge", "--reason", "once more", "--lang", "fr")
    assert again.returncode == 0 and "aucun message rejeté à prendre en compte depuis l'enregistrement" in again.stdout

    status = b.json("status")
    assert not rejection_warnings(status) and status["bus"]["rejected"] >= 3  # the total stays shown
    assert status["bus"]["rejections_acknowledged"]["seq"] == record.seq
    assert b.sitegate("status").returncode == 0
    wait(lambda: fleet_state(a, "gate-b")["state"] == "ok", "the fleet shows gate-b healthy again")
    shown = b.sitegate("site")
    assert shown.returncode == 0 and f"acknowledged up to record {record.seq} by {actor()}" in shown.stdout
    assert b.json("verify")["ok"]
    assert a.sitegate("status").returncode == 1  # each gate's technician acknowledges its own

    garbage_as_gate_c(broker, 1)
    status = wait(lambda: (s := b.json("status"))["bus"]["rejected_last_hour"] == 1 and s, "a newer one counts")
    assert rejection_warnings(status) and b.sitegate("status").returncode == 1
    nl = b.sitegate("site", "acknowledge", "--reason", "again the test", "--lang", "nl")
    assert nl.returncode == 0 and "1 geweigerd(e) bericht(en) erkend door" in nl.stdout, nl.stdout
    assert "POORT" in nl.stdout and "ONTVANGEN" in nl.stdout  # the table's columns, in Dutch


def on_site(gate) -> dict[str, dict]:
    return {p["last_name"]: p for p in gate.json("site")["present"]}


def doubted(gate) -> dict[str, str]:
    return {d["last_name"]: d["reason"] for d in gate.json("site")["direction_doubts"]}


def listing_text(gate, path, language: str) -> str:
    printed = gate.sitegate("paper", "print", "--format", "pdf", "--out", str(path), "--lang", language)
    assert printed.returncode in (0, 1), printed.stderr
    return "\n".join(page.extract_text() for page in PdfReader(path).pages)


def test_4_a_worker_whose_direction_was_decided_apart_is_flagged_wherever_people_look(site, tmp_path):
    broker, gates = site
    a, b, c = gates["gate-a"], gates["gate-b"], gates["gate-c"]
    leaves, twice = worker_uid(0), worker_uid(1)  # Ops0 leaves at gate-a, back in at gate-b; Ops1 IN at both
    a.badge(leaves)
    wait(lambda: "Ops0" in on_site(b), "gate-b sees Ops0 come in at gate-a")
    broker.kill()
    for gate in (a, b):
        wait(lambda g=gate: not g.json("status")["bus"]["connected"], f"{gate.device} sees the broker gone")
    a.badge(leaves, twice)
    b.badge(leaves, twice)
    for gate in (a, b):
        out, came_in = gate.badges()[-2:]
        assert (out["outcome"], out["direction"], came_in["direction"]) == ("registered", "OUT", "IN"), out
        assert all(UNCERTAIN in e["warnings"] for e in (out, came_in))  # the warning signal, and why
    # Bus down: each gate flags what it decided without the others; Ops0 is not counted at gate-b, but named.
    assert doubted(b) == {"Ops0": "uncertain", "Ops1": "uncertain"}
    assert "Ops0" not in on_site(b) and on_site(b)["Ops1"]["direction_doubt"] == "uncertain"

    broker.start()
    for gate in (a, b):
        records = gate.json("status")["records"]
        wait(
            lambda g=gate, n=records: (
                next(p for p in c.json("site")["gates"] if p["device"] == g.device)["records"] >= n
            ),
            f"gate-c mirrors all of {gate.device}",
            timeout=60,
        )
    shown = c.json("site")
    assert {(x["direction"]) for x in shown["conflicts"]} == {"IN", "OUT"}
    assert doubted(c) == {"Ops0": "conflict", "Ops1": "conflict"}
    assert "10000000000000001" not in str(shown["direction_doubts"])  # numbers masked
    text = c.sitegate("site", "--lang", "fr")
    assert text.returncode == 1
    row = next(line for line in text.stdout.splitlines() if "Ops1" in line)
    assert row.startswith(DOUBT_MARK)
    assert DOUBT_WORDS["legend"]["fr"] in text.stdout and DOUBT_WORDS["not_counted"]["fr"] in text.stdout
    assert "Ops0 Test" in text.stdout.split(DOUBT_WORDS["not_counted"]["fr"])[1]  # not counted, but named

    listing = listing_text(c, tmp_path / "listing.pdf", "nl")
    assert " ".join(DOUBT_WORDS["legend"]["nl"].split()[:6]) in " ".join(listing.split())
    assert re.search(r"^1 ! \d+ Limosa Ops0 ", listing, re.M) and re.search(r"^2 ! \d+ Limosa Ops1 ", listing, re.M)
    slips = tmp_path / "slips.bin"
    assert c.sitegate("paper", "print", "--format", "escpos", "--out", str(slips), "--lang", "nl").returncode in (0, 1)
    thermal = slips.read_bytes()
    assert b"  1 40000000000000000 Limosa !" in thermal and b"  2 40000000000000001 Limosa !" in thermal
    assert DOUBT_WORDS["legend"]["nl"].encode() in thermal

    with c.config.open("a") as handle:
        handle.write(f'\n[web]\nenabled = true\nlisten = "127.0.0.1"\nport = 0\n[[web.foreman]]\nname = "{ANNA}"\n'
                     f'pin_hash = "{hash_pin(PINS[ANNA])}"\n')  # fmt: skip
    page = WebProcess(c.config)
    try:
        with browser(tmp_path / "downloads") as driver:
            sign_in(driver, page.url, PINS[ANNA], "fr")
            driver.get(f"{page.url}/onsite")
            row = next(r for r in driver.find_elements(By.CSS_SELECTOR, "#present tr") if "Ops1" in r.text)
            assert row.get_attribute("class") == "doubt" and f"Ops1 Test {DOUBT_MARK}" in row.text
            assert text_of(driver, "doubt-legend") == DOUBT_WORDS["legend"]["fr"]
            assert "Ops0 Test" in text_of(driver, "doubt-absent") and "Ops0" not in text_of(driver, "present")
            screenshot(driver, "on-site-direction-doubt-fr")
    finally:
        page.stop()
