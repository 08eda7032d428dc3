"""Issue 11: the foreman's page in a real browser, against the real daemon, the simulator and the page's own
process, every fault made on loopback. Screenshots of the phone-sized page go to .screenshots/web/."""

from __future__ import annotations

import http.server
import io
import threading
import time

import pytest
import requests
from pypdf import PdfReader
from selenium.webdriver.common.by import By
from selenium.webdriver.support.expected_conditions import staleness_of
from selenium.webdriver.support.ui import WebDriverWait
from simulator_process import SimulatorProcess
from verdict_site import closed_port_url
from web_site import PINS, WebSite, browser, screenshot

from sitegate.paper_fallback import guidance
from sitegate.queue import database
from sitegate.queue.failures import Cause
from sitegate.queue.log import LogView
from sitegate.queue.records import Kind

pytestmark = pytest.mark.slow
ANNA = "Anna Janssens"
WORKERS = [f"{0x10000000 + i:08X},,{10**16 + i:017d},Worker{i},Test,0403170701,," for i in range(3)]


@pytest.fixture(scope="module")
def service():
    server = SimulatorProcess()
    yield server
    server.stop()


@pytest.fixture(scope="module")
def reference():
    """The independent HTTPS host (the internet works)."""
    server = SimulatorProcess("--tls")
    yield server
    server.stop()


@pytest.fixture
def driver(tmp_path):
    opened = browser(tmp_path / "downloads")
    yield opened
    opened.quit()


@pytest.fixture
def sites():
    started: list[WebSite] = []
    yield started
    for site in started:
        site.stop()


def start(sites, directory, service, **options) -> WebSite:
    site = WebSite(directory, service.base_url, service.token_url, **options)
    site.roster(WORKERS)
    sites.append(site.start())
    site.start_web()
    return site


def sign_in(driver, url: str, pin: str, language: str = "en") -> None:
    driver.get(f"{url}/login?lang={language}")
    field = driver.find_element(By.ID, "pin")
    field.clear()
    field.send_keys(pin)
    submit(driver, "sign-in")


def submit(driver, button_id: str) -> None:
    """Press a form's button and wait until the answer's page has replaced this one."""
    page = driver.find_element(By.TAG_NAME, "html")
    driver.find_element(By.ID, button_id).click()
    WebDriverWait(driver, 20).until(staleness_of(page))


def text(driver, element_id: str) -> str:
    found = driver.find_elements(By.ID, element_id)
    assert found, f"no #{element_id} on {driver.current_url}: {driver.page_source[:3000]}"
    return found[0].text


def test_sign_in_right_pin_wrong_pin_and_the_rate_limit(tmp_path, sites, service, driver):
    site = start(sites, tmp_path / "site", service)
    sign_in(driver, site.web.url, PINS[ANNA])
    assert text(driver, "who") == f"Signed in: {ANNA}"
    screenshot(driver, "signed-in")
    submit(driver, "sign-out")
    driver.get(site.web.url)  # signed out: the page sends to sign-in again
    assert driver.current_url.split("?")[0].endswith("/login")

    sign_in(driver, site.web.url, "000000")
    assert text(driver, "error") == "Wrong PIN."
    assert driver.find_elements(By.ID, "who") == []
    screenshot(driver, "wrong-pin")
    for _ in range(2):  # max_failures = 3 in this site
        sign_in(driver, site.web.url, "111111")
    sign_in(driver, site.web.url, PINS[ANNA])  # even the right PIN waits now
    assert "Too many wrong PINs" in text(driver, "error"), driver.page_source[-500:]
    assert driver.find_elements(By.ID, "who") == []
    screenshot(driver, "rate-limited")
    throttled = [e for e in site.web.lines if e.get("event") == "web_sign_in_throttled"]
    assert throttled and throttled[-1]["wait_s"] <= 10
    time.sleep(throttled[-1]["wait_s"] + 1)  # lockout_s = 10 in this site
    sign_in(driver, site.web.url, PINS["Marc Dubois"])
    assert text(driver, "who") == "Signed in: Marc Dubois"


def test_an_outage_day_state_reference_listing_and_who_is_on_site(tmp_path, sites, service, reference, driver):
    """The gate delivered this morning, then the service became unreachable while the internet works."""
    site = start(sites, tmp_path / "site", service)
    site.badge("10000000", "10000001", "10000002")
    site.wait(lambda: site.json("queue")["delivered"] == 3, "the morning delivered")
    site.badge("10000002", reader="exit")  # Worker2 leaves
    site.env.update(trusting(tmp_path, reference.ca_file))
    site.web.stop()
    site.restart(base_url=closed_port_url("/b"), token_url=closed_port_url(), reference_url=reference.url)
    site.start_web()
    site.badge("10000001", reader="exit")
    site.badge("10000001")  # Worker1 back in, during the outage
    site.wait_outage("open")

    sign_in(driver, site.web.url, PINS[ANNA])
    expected = guidance.what_to_do(Cause.SERVICE, "en")
    assert text(driver, "state-line") == expected
    assert "Workers are EXEMPT" in expected
    evidence = driver.find_element(By.ID, "evidence")
    assert not evidence.get_attribute("open")
    evidence.find_element(By.TAG_NAME, "summary").click()  # the evidence, one tap away
    assert "service_connect FAILED" in evidence.text, evidence.text
    screenshot(driver, "outage-state")

    driver.find_element(By.ID, "reference").send_keys("CC-2026-112233")
    submit(driver, "record")
    assert "Reference CC-2026-112233 recorded" in text(driver, "message")
    assert "CC-2026-112233" in text(driver, "references") and f"by {ANNA}" in text(driver, "references")
    screenshot(driver, "reference-recorded")
    shown = site.outage()["current"]
    assert shown["references"] == {"": "CC-2026-112233"}
    assert site.sitegate("verify").returncode == 0

    downloads = tmp_path / "downloads"
    driver.find_element(By.ID, "download").click()
    pdf = wait_for_file(downloads, "*.pdf")
    listing = "\n".join(page.extract_text() for page in PdfReader(io.BytesIO(pdf.read_bytes())).pages)
    for expected_text in ("CC-2026-112233", "1Y101DRUNWB5Z", "Worker0", "Worker1", "Worker2", "10000000000000000"):
        assert expected_text in listing, expected_text

    driver.get(f"{site.web.url}/onsite")
    assert text(driver, "count") == "2 on site"
    rows = driver.find_element(By.ID, "present").text
    assert "Worker0 Test" in rows and "Worker1 Test" in rows and "Worker2" not in rows
    assert "Bouw Peeters NV" in rows and "gate-01" in rows
    screenshot(driver, "on-site")
    driver.get(f"{site.web.url}/today?lang=nl")
    assert "Registraties van vandaag (6)" in driver.page_source
    screenshot(driver, "today-nl")

    signed = signed_records(site)
    assert [(r["reference"], r["by"]) for r in signed[Kind.OUTAGE_REFERENCE]] == [("CC-2026-112233", ANNA)]
    assert [(r["destination"], r["by"], r["reference"]) for r in signed[Kind.PAPER_LISTING]] == [
        ("download", ANNA, "CC-2026-112233")
    ]


def signed_records(site) -> dict[str, list[dict]]:
    """The payloads of the records a foreman causes, read from the log (read-only)."""
    db = database.connect_readonly(site.directory / "data" / "sitegate.db")
    try:
        view = LogView(db)
        return {kind: [r.data for r in view.records(kind=kind)] for kind in (Kind.OUTAGE_REFERENCE, Kind.PAPER_LISTING)}
    finally:
        db.close()


def trusting(directory, ca_file) -> dict:
    empty = directory / "no-certs"
    empty.mkdir(parents=True, exist_ok=True)
    return {"SSL_CERT_FILE": str(ca_file), "SSL_CERT_DIR": str(empty)}


def wait_for_file(directory, pattern: str, timeout: float = 20):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        found = [p for p in directory.glob(pattern) if p.stat().st_size > 0]
        if found:
            return found[0]
        time.sleep(0.2)
    raise AssertionError(f"nothing like {pattern} in {directory}: {list(directory.iterdir()) if directory.exists() else []}")
