"""Issue 11: the foreman's page in a real browser, against the real daemon, the simulator and the page's own
process, every fault made on loopback. Screenshots of the phone-sized page go to .screenshots/web/."""

from __future__ import annotations

import http.server
import io
import re
import signal
import tempfile
import threading
import time
from pathlib import Path

import pytest
import requests
from pypdf import PdfReader
from selenium.common.exceptions import WebDriverException
from selenium.webdriver.common.by import By
from selenium.webdriver.support.expected_conditions import staleness_of
from selenium.webdriver.support.ui import Select, WebDriverWait
from simulator_process import SimulatorProcess
from verdict_site import closed_port_url, trusting
from waiting import wait_until
from web_site import (
    PINS,
    WebSite,
    axe_violations,
    browser,
    console_errors,
    lighthouse,
    narrow,
    save_narrow,
    screenshot,
    too_wide,
)

from sitegate.clock import SYSTEM
from sitegate.clock.timefmt import format_utc, show
from sitegate.paper_fallback import guidance
from sitegate.queue import database, delivery
from sitegate.queue.database import immediate
from sitegate.queue.failures import Cause
from sitegate.queue.log import LogView
from sitegate.queue.records import Kind
from sitegate.service import remarks
from sitegate.service.credentials import make_self_signed
from sitegate.service.remarks import OWN_RESEND
from sitegate.status import STALL_MARGIN_S, daemon_running
from sitegate.web import words
from sitegate.web.words import WORDS

pytestmark = pytest.mark.slow
ANNA = "Anna Janssens"
WORKERS = [f"{0x10000000 + i:08X},,{10**16 + i:017d},Worker{i},Test,0403170701,," for i in range(4)]


@pytest.fixture
def driver(tmp_path):
    before = set(Path(tempfile.gettempdir()).glob("org.chromium.Chromium.*"))
    with browser(tmp_path / "downloads") as opened:
        yield opened
    left = set(Path(tempfile.gettempdir()).glob("org.chromium.Chromium.*")) - before
    assert not left, f"the browser left {sorted(left)} in the temporary folder"


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
    WebDriverWait(driver, 20).until(lambda _: replaced(page))
    WebDriverWait(driver, 20).until(lambda d: d.execute_script("return document.readyState") == "complete")


def replaced(page) -> bool:
    """The old page's root is gone. Asked in the middle of the navigation, ChromeDriver may answer "Node with given id
    does not belong to the document" instead of a stale element (it failed the suite once in about ten runs)."""
    try:
        return staleness_of(page)(None)
    except WebDriverException as error:
        if "does not belong to the document" in str(error):
            return True
        raise


def open_paper(driver) -> None:
    """The reference box and the listing, folded away while the gate works: one tap opens them."""
    paper = driver.find_element(By.ID, "paper")
    if not paper.get_attribute("open"):
        paper.find_element(By.TAG_NAME, "summary").click()


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
    # The limit's rules (an address claimed in a header, the lockout's end): tests/test_web_routes.py, on a fake clock.


def test_an_outage_day_state_reference_listing_and_who_is_on_site(tmp_path, sites, service, reference, driver):
    """The gate delivered this morning, then the service became unreachable while the internet works."""
    site = start(sites, tmp_path / "site", service)
    site.badge("10000000", "10000001", "10000002", "10000003")
    time.sleep(1.1)  # remark 14: the same worker twice within one second would be a duplicate
    site.badge("10000003", reader="exit")  # Worker3 leaves
    site.wait(lambda: site.json("queue")["delivered"] == 5, "the morning delivered")
    site.env.update(trusting(tmp_path, reference.ca_file))
    site.web.stop()
    site.restart(base_url=closed_port_url("/b"), token_url=closed_port_url(), reference_url=reference.url)
    site.start_web()
    site.badge("10000001", reader="exit")  # Worker1 leaves during the outage
    site.wait_outage("open")

    sign_in(driver, site.web.url, PINS[ANNA])
    expected, steps = guidance.steps(Cause.SERVICE, "en")
    assert text(driver, "state-line") == expected
    assert "Workers are EXEMPT" in expected
    assert [step.text for step in driver.find_elements(By.CSS_SELECTOR, "#steps li")] == list(map(str, steps))
    evidence = driver.find_element(By.ID, "evidence")
    assert not evidence.get_attribute("open")
    evidence.find_element(By.TAG_NAME, "summary").click()  # the evidence, one tap away
    assert "connection to the service: connection refused" in evidence.text, evidence.text
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
    for expected_text in ("CC-2026-112233", "1Y101DRUNWB5Z", "Worker0", "Worker1", "Worker3", "10000000000000003"):
        assert expected_text in listing, expected_text

    driver.get(f"{site.web.url}/onsite")
    assert text(driver, "count") == "2 on site"
    rows = driver.find_element(By.ID, "present").text
    assert "Worker0 Test" in rows and "Worker2 Test" in rows and "Worker1" not in rows and "Worker3" not in rows
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


def wait_for_file(directory, pattern: str) -> Path:
    """A download, once the browser has written something into it."""
    return wait_until(
        lambda: next((p for p in directory.glob(pattern) if p.stat().st_size > 0), None),
        f"a file like {pattern} in {directory}",
        20,
        lambda: list(directory.iterdir()) if directory.exists() else [],
    )


def test_no_session_no_page_and_a_cross_site_form_is_refused(tmp_path, sites, service, driver):
    site = start(sites, tmp_path / "site", service)
    site.badge("10000000")
    url = site.web.url  # without a session, a form without its token or origin: tests/test_web_routes.py
    sign_in(driver, url, PINS[ANNA])
    cookie = driver.get_cookie("sitegate_session")
    assert cookie["httpOnly"] is True and cookie["sameSite"] == "Strict"

    with attacker_page(url) as attacker:  # another site, on another port, posting into the signed-in gate's page
        driver.get(attacker + "/reference.html")
        WebDriverWait(driver, 20).until(lambda d: d.current_url.startswith(url))
        assert "refused: this form did not come from the gate's page" in driver.page_source
        driver.get(attacker + "/login.html")
        WebDriverWait(driver, 20).until(lambda d: d.current_url.startswith(url))
        assert "refused" in driver.page_source
    assert signed_records(site)[Kind.OUTAGE_REFERENCE] == []
    refusals = [e for e in site.web.lines if e.get("event") == "web_cross_site_refused"]
    assert len(refusals) >= 2


def test_the_page_can_crash_without_the_gate_noticing(tmp_path, sites, service):
    site = start(sites, tmp_path / "site", service)
    site.web.process.kill()  # SIGKILL, in the middle of nothing: no clean stop
    site.web.process.wait(10)
    site.badge("10000000", "10000001")
    assert [e["outcome"] for e in site.badges()] == ["registered", "registered"]
    assert site.sitegate("verify").returncode == 0
    site.start_web()  # and it comes back on the same log
    assert requests.get(site.web.url + "/login", timeout=10).status_code == 200


def test_the_page_signs_nothing_itself_without_the_daemon_it_only_reads(tmp_path, sites, service, driver):
    site = start(sites, tmp_path / "site", service)
    site.badge("10000000")
    site.daemon.kill(signal.SIGTERM)  # the gate's daemon stopped; the page goes on
    sign_in(driver, site.web.url, PINS[ANNA])
    assert text(driver, "state-line")  # it still reads the log
    open_paper(driver)
    driver.find_element(By.ID, "reference").send_keys("CC-1")
    submit(driver, "record")
    assert "The gate's daemon does not answer" in text(driver, "error")
    driver.get(f"{site.web.url}/onsite")
    assert "Worker0 Test" in text(driver, "present")
    assert signed_records(site)[Kind.OUTAGE_REFERENCE] == []
    assert site.sitegate("verify").returncode == 0


def test_the_page_sends_the_listing_to_the_printer(tmp_path, sites, service, driver):
    site = start(sites, tmp_path / "site", service)
    site.badge("10000000", "10000002")
    sign_in(driver, site.web.url, PINS["Marc Dubois"], language="fr")
    open_paper(driver)
    submit(driver, "print")
    assert "Liste envoyée à l'imprimante" in text(driver, "message")
    printed = site.printer_file.read_bytes()
    assert b"Worker0" in printed and b"Worker2" in printed
    assert [(r["destination"], r["by"]) for r in signed_records(site)[Kind.PAPER_LISTING]] == [
        (f"escpos file:{site.printer_file}", "Marc Dubois")
    ]
    screenshot(driver, "printed-fr")


def test_a_reference_with_printer_commands_is_refused_and_never_printed(tmp_path, sites, service, driver):
    site = start(sites, tmp_path / "site", service)
    site.badge("10000000")
    sign_in(driver, site.web.url, PINS[ANNA])
    injected = "CC-1\x1dVA\x03"  # GS V A 3: the thermal printer feeds and cuts the listing there
    open_paper(driver)
    driver.execute_script("document.getElementById('reference').value = arguments[0]", injected)
    submit(driver, "record")
    assert "printable characters" in text(driver, "error")
    driver.get(f"{site.web.url}/")
    open_paper(driver)
    submit(driver, "print")
    assert injected.encode() not in site.printer_file.read_bytes(), "the reference's command reached the printer"
    assert signed_records(site)[Kind.OUTAGE_REFERENCE] == []


class _Attacker(http.server.BaseHTTPRequestHandler):
    target = ""

    def do_GET(self) -> None:  # noqa: N802 - the standard library's name
        action, fields = (
            ("/login", '<input name="pin" value="246810">')
            if "login" in self.path
            else (
                "/reference",
                '<input name="reference" value="EVIL-1">',
            )
        )
        body = (
            f'<form id="f" method="post" action="{self.target}{action}">{fields}</form>'
            '<script>document.getElementById("f").submit()</script>'
        ).encode()
        self.send_response(200)
        self.send_header("Content-Type", "text/html")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args) -> None:
        pass


class attacker_page:
    """A page of another site on this machine whose form posts into the gate's page as soon as it loads."""

    def __init__(self, target: str) -> None:
        handler = type("Attacker", (_Attacker,), {"target": target})
        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def __enter__(self) -> str:
        self.thread.start()
        return f"http://127.0.0.1:{self.server.server_address[1]}"

    def __exit__(self, *exc) -> None:
        self.server.shutdown()
        self.server.server_close()


def test_https_with_the_devices_own_certificate(tmp_path, sites, service):
    key, cert = make_self_signed(tmp_path / "tls", SYSTEM.now(), "gate-01", hosts=("127.0.0.1",))
    site = start(sites, tmp_path / "site", service, web={"tls_cert": f'"{cert}"', "tls_key": f'"{key}"'})
    url = site.web.url
    assert url.startswith("https://127.0.0.1:")
    with pytest.raises(requests.exceptions.SSLError):
        requests.get(url + "/login", timeout=10)  # a phone is shown the device's own certificate, not a public one
    http = requests.Session()
    http.trust_env = False  # REQUESTS_CA_BUNDLE would win over the session's own trust
    http.verify = str(cert)
    form = http.get(url + "/login", timeout=10)
    token = form.text.split('name="token" value="')[1].split('"')[0]
    signed = http.post(
        url + "/login", data={"pin": PINS[ANNA], "token": token}, headers={"Origin": url}, allow_redirects=False
    )
    assert signed.status_code == 303, signed.text
    cookie = next(c for c in signed.raw.headers.getlist("Set-Cookie") if c.startswith("sitegate_session="))
    assert {"secure", "httponly", "samesite=strict"} <= {part.strip().lower() for part in cookie.split(";")}
    home = http.get(url + "/", timeout=10)
    assert home.status_code == 200 and f"Signed in: {ANNA}" in home.text
    assert home.headers["Content-Security-Policy"].startswith("default-src 'none'")


def test_today_shows_the_remarks_to_act_on(tmp_path, sites, driver):
    """A registration received after the service's reception delay draws remark 32, which needs someone's action."""
    late = SimulatorProcess("--delay", "1")
    try:
        site = start(sites, tmp_path / "site", late)
        late.fault("503", count=1)  # the first call fails; the retry comes after the 1 s reception delay
        site.badge("10000000")
        site.wait(lambda: site.json("remarks"), "remark 32 back from the service")
        sign_in(driver, site.web.url, PINS[ANNA])
        driver.get(f"{site.web.url}/today")
        listed = text(driver, "remarks")
        assert "32 Reception delay of registrations exceeded." in listed, listed
        assert "Check the working of your time-registration system." in listed
        assert "Worker0 Test" in text(driver, "registrations")
        assert not re.search(r" \*( |$)", listed, re.M) and not driver.find_elements(By.ID, "our-translation")
        screenshot(driver, "today-remark")
        driver.get(f"{site.web.url}/today?lang=fr")
        assert "32 Délai de réception des enregistrements dépassé." in text(driver, "remarks")
        narrow(driver)
        for language, action in (
            ("fr", "Vérifiez le fonctionnement de votre système d'enregistrement."),
            ("nl", "Ga de werking van uw registratiesysteem na."),
        ):
            driver.get(f"{site.web.url}/today?lang={language}")
            assert f"{action} *" in text(driver, "remarks")  # our translation, marked, and said so below
            assert text(driver, "our-translation") == f"* {remarks.OUR_TRANSLATION[language]}"
            read_like_a_foreman(driver, language)
    finally:
        late.stop()


def test_remark_14_on_our_own_resend_says_nothing_to_do_in_each_language(tmp_path, sites, driver):
    """The service registers the badge and the answer is lost (the connection reset): the daemon sends it again and
    the service flags remark 14. The page says it is our own duplicate, in the page's language."""
    lossy = SimulatorProcess()
    try:
        site = start(sites, tmp_path / "site", lossy)
        lossy.fault("answer_reset", count=1)
        site.badge("10000000")
        site.wait(lambda: site.json("remarks"), "remark 14 back from the service")
        sign_in(driver, site.web.url, PINS[ANNA])
        for language in ("en", "fr", "nl"):
            driver.get(f"{site.web.url}/today?lang={language}")
            remarks = text(driver, "remarks")
            assert OWN_RESEND[language] in remarks and "explain to the worker" not in remarks, remarks
        screenshot(driver, "today-own-resend")
    finally:
        lossy.stop()


# Issue 22: the page as a foreman reads it on a 360 px phone, in the page's language, in Brussels time.
NAMES = {  # names and codes that are no word of any language: the roster's, the site's, the foremen's, the gate's
    *"Worker0 Worker1 Worker2 Worker3 Test Bouw Peeters NV Clean Star BV Anna Janssens Marc Dubois gate exit".split(),
    *"CET CEST PDF CC FR NL EN".split(),
}
RAW_UTC = re.compile(r"\d{4}-\d\d-\d\dT\d\d:\d\d|\d\d:\d\d:\d\d(\.\d+)?Z")


def vocabulary(language: str) -> set[str]:
    """Every word of the page's tables in one language: its own words and the procedure's (guidance.py)."""
    texts = [word[language] for word in WORDS.values()]
    texts += [action[language] for action in words._ACTIONS.values()]
    for code in remarks.table():
        texts += [w.text for w in (remarks.remark_wording(code, language), remarks.action_wording(code, language)) if w]
    texts.append(remarks.OUR_TRANSLATION[language])
    for table in vars(guidance).values():
        if isinstance(table, dict):
            texts += [str(v[language]) for v in table.values() if isinstance(v, dict) and language in v]
            texts += [str(table[language])] if language in table else []
    return {token.lower() for text in texts for token in re.findall(r"[^\W\d_]+", text)}


def foreign_words(driver, language: str) -> list[str]:
    """The words of the page (text, labels, button values) found in no table of its language, names aside."""
    shown = driver.execute_script(
        """
        document.querySelectorAll('details').forEach(d => d.open = true);
        const labels = [...document.querySelectorAll('[aria-label],[title],[placeholder]')]
          .map(e => [e.getAttribute('aria-label'), e.getAttribute('title'), e.getAttribute('placeholder')].join(' '));
        return [document.title, document.body.innerText, ...labels].join(' ');
        """
    )
    allowed = vocabulary(language) | {t.lower() for name in NAMES for t in re.findall(r"[^\W\d_]+", name)}
    return sorted({t for t in re.findall(r"[^\W\d_]+", shown) if t.lower() not in allowed})


def read_like_a_foreman(driver, language: str) -> None:
    """At 360 px: nothing wider than the screen, every word in the page's language, no raw UTC time; axe-core
    finds nothing and the console has no error."""
    assert too_wide(driver) == [], driver.current_url
    assert foreign_words(driver, language) == [], driver.current_url
    shown = driver.find_element(By.TAG_NAME, "body").text
    assert not RAW_UTC.search(shown), RAW_UTC.search(shown)
    assert axe_violations(driver) == [], driver.current_url
    assert console_errors(driver) == [], driver.current_url


def test_the_page_says_the_gate_is_not_working_when_its_daemon_is_stopped(tmp_path, sites, service, driver):
    """`sitegate run` stopped (status CRITICAL): a red state in the page's language with what to do, never
    "keep badging"; a button that needs the daemon says so in words, not `[Errno 2]`."""
    site = start(sites, tmp_path / "site", service)
    site.badge("10000000")
    site.wait(lambda: site.json("queue")["delivered"] == 1, "the badge delivered")  # before it: "never connected"
    narrow(driver)
    sign_in(driver, site.web.url, PINS[ANNA], language="fr")
    assert "state ok" in driver.find_element(By.ID, "state").get_attribute("class")
    site.daemon.kill(signal.SIGTERM)
    assert site.sitegate("status").returncode == 2  # CRITICAL: the daemon is not running
    for language, headline, action, keep_badging in (
        ("fr", "LE PORTIQUE NE FONCTIONNE PAS", "Appelez maintenant le fournisseur du portique", "continuez à badger"),
        ("nl", "DE TOEGANGSPOORT WERKT NIET", "Bel nu de leverancier van de toegangspoort", "blijf badgen"),
        ("en", "THE GATE IS NOT WORKING", "Call the gate's provider (technician) now", "keep badging"),
    ):
        driver.get(f"{site.web.url}/?lang={language}")
        state = driver.find_element(By.ID, "state")
        assert "state down" in state.get_attribute("class")
        assert text(driver, "state-line").startswith(headline)
        steps = driver.find_elements(By.CSS_SELECTOR, "#steps li")
        assert steps[0].text.startswith(action) and len(steps) >= 3, [s.text for s in steps]
        assert keep_badging not in state.text.lower(), state.text
        assert driver.find_element(By.CSS_SELECTOR, '#steps a[href="tel:+3225115151"]').text == "02 511 51 51"
        save_narrow(driver, f"gate-down-{language}")
        read_like_a_foreman(driver, language)
    driver.get(f"{site.web.url}/?lang=fr")
    open_paper(driver)
    driver.find_element(By.ID, "reference").send_keys("CC-1")
    submit(driver, "record")
    assert "Errno" not in text(driver, "error") and "ne répond pas" in text(driver, "error")
    read_like_a_foreman(driver, "fr")


def test_an_outage_day_fits_a_360_px_phone_in_french_and_dutch(tmp_path, sites, service, reference, driver):
    """Every page of an outage day at 360 px, FR and NL: nothing wider than the screen, no English word, no UTC
    time; the language links are thumb-sized; the steps come first, then the reference box and the listing."""
    site = start(sites, tmp_path / "site", service, printer="missing")
    site.badge("10000000", "10000001", "10000002")
    time.sleep(1.1)  # remark 14: the same worker twice within one second would be a duplicate
    site.badge("10000002", reader="exit")
    site.wait(lambda: site.json("queue")["delivered"] == 4, "the morning delivered")
    narrow(driver)
    for language in ("fr", "nl"):
        driver.get(f"{site.web.url}/login?lang={language}")
        read_like_a_foreman(driver, language)
    sign_in(driver, site.web.url, PINS[ANNA], language="nl")
    assert "state ok" in driver.find_element(By.ID, "state").get_attribute("class")
    assert not driver.find_element(By.ID, "reference").is_displayed()  # green: the paper is not put forward
    assert not driver.find_element(By.ID, "download").is_displayed()
    save_narrow(driver, "working-nl")
    read_like_a_foreman(driver, "nl")

    site.env.update(trusting(tmp_path, reference.ca_file))
    site.web.stop()
    site.restart(base_url=closed_port_url("/b"), token_url=closed_port_url(), reference_url=reference.url)
    site.start_web()
    site.badge("10000001", reader="exit")
    site.wait_outage("open")
    for language in ("fr", "nl"):
        sign_in(driver, site.web.url, PINS[ANNA], language=language)
        assert "state outage" in driver.find_element(By.ID, "state").get_attribute("class")
        assert driver.find_element(By.ID, "state-word").text  # a word on the colour band, not only a tint
        assert len(driver.find_elements(By.CSS_SELECTOR, "#steps li")) >= 2
        assert driver.find_element(By.ID, "reference").is_displayed()
        for link in driver.find_elements(By.CSS_SELECTOR, "nav.lang a"):
            assert link.size["width"] >= 44 and link.size["height"] >= 44, (link.text, link.size)
        assert len(driver.find_elements(By.TAG_NAME, "h1")) == 1
        assert all(nav.get_attribute("aria-label") for nav in driver.find_elements(By.TAG_NAME, "nav"))
        save_narrow(driver, f"outage-{language}")
        read_like_a_foreman(driver, language)
        submit(driver, "print")  # the configured thermal printer's folder does not exist
        assert text(driver, "error")
        read_like_a_foreman(driver, language)
        for page in ("onsite", "today"):
            driver.get(f"{site.web.url}/{page}")
            read_like_a_foreman(driver, language)
        assert ("ENTRÉE" if language == "fr" else "IN") in text(driver, "registrations")
    assert requests.get(site.web.url + "/favicon.ico", timeout=10).status_code == 200


def test_without_a_printer_the_page_offers_the_pdf_only(tmp_path, sites, service, driver):
    site = start(sites, tmp_path / "site", service, printer=False)
    sign_in(driver, site.web.url, PINS[ANNA])
    assert driver.find_elements(By.ID, "print") == []
    open_paper(driver)
    driver.find_element(By.ID, "download").click()  # the PDF is then the action
    assert wait_for_file(tmp_path / "downloads", "*.pdf").read_bytes().startswith(b"%PDF")


def test_the_gate_counts_as_stopped_once_its_heartbeat_is_late_or_at_once_after_a_clean_stop(device, clock):
    """A daemon killed or stopped (SIGKILL, SIGSTOP, a power cut of its own) leaves a heartbeat that only ages: the
    page and `status` read it with one rule, `status.daemon_running` (late by more than the stall margin)."""
    beat = device.config.gate.heartbeat_s
    assert not daemon_running(device.db, beat, clock.wall)  # never started
    with immediate(device.db):
        delivery.note_heartbeat(device.db, format_utc(clock.wall), [])
    clock.advance(beat + STALL_MARGIN_S)
    assert daemon_running(device.db, beat, clock.wall)
    clock.advance(1)
    assert not daemon_running(device.db, beat, clock.wall)
    with immediate(device.db):
        delivery.note_heartbeat(device.db, format_utc(clock.wall), [])
        delivery.note_stopped(device.db, format_utc(clock.wall))
    assert not daemon_running(device.db, beat, clock.wall)


def test_a_suspected_failure_is_read_in_brussels_time(tmp_path, sites, driver):
    """Suspected ("failing since …"): the start in Brussels time with its zone, never the stored UTC string."""
    site = WebSite(tmp_path / "site", closed_port_url("/b"), closed_port_url(), grace_s=3600)
    site.roster(WORKERS)
    sites.append(site.start())
    site.start_web()
    since = site.wait_outage("suspected")["current"]["start_utc"]
    narrow(driver)
    sign_in(driver, site.web.url, PINS[ANNA], language="fr")
    assert "state suspected" in driver.find_element(By.ID, "state").get_attribute("class")
    assert show(since) in text(driver, "state-line"), text(driver, "state-line")
    save_narrow(driver, "suspected-fr")
    read_like_a_foreman(driver, "fr")


def test_one_employers_listing_from_the_page(tmp_path, sites, service, driver):
    """Employers who called separately each get their own listing, as `sitegate paper print --employer`."""
    site = start(sites, tmp_path / "site", service)
    site.roster([*WORKERS, "20000000,,10000000000000099,Cleaner,Anne,0202239951,,"])
    site.badge("10000000", "20000000")
    sign_in(driver, site.web.url, PINS[ANNA])
    open_paper(driver)
    Select(driver.find_element(By.ID, "listing-employer")).select_by_visible_text("Clean Star BV")
    driver.find_element(By.ID, "download").click()
    pdf = wait_for_file(tmp_path / "downloads", "*.pdf")
    listing = "\n".join(page.extract_text() for page in PdfReader(io.BytesIO(pdf.read_bytes())).pages)
    assert "Cleaner" in listing and "Worker0" not in listing, listing
    driver.get(site.web.url)
    open_paper(driver)
    Select(driver.find_element(By.ID, "listing-employer")).select_by_visible_text("Bouw Peeters NV")
    submit(driver, "print")
    printed = site.printer_file.read_bytes()
    assert b"Worker0" in printed and b"Cleaner" not in printed
    assert [r["employer"] for r in signed_records(site)[Kind.PAPER_LISTING]] == ["0202239951", "0403170701"]


def measured(driver, url: str, name: str) -> dict:
    """One page as the tools nobody here wrote see it: axe-core finds nothing, no console error, and Lighthouse
    (mobile) scores accessibility and best practices 100 having connected to nothing but loopback."""
    assert axe_violations(driver) == [], url
    assert console_errors(driver) == [], url
    found = lighthouse(driver, url, name)
    assert found["final"] == url, found["final"]  # the page itself, not the sign-in page
    assert found["scores"]["accessibility"] == 100 and found["scores"]["best-practices"] == 100, (name, found)
    assert found["requests"] and all(r.startswith(url.split("/", 3)[0] + "//127.0.0.1:") for r in found["requests"])
    assert found["connects"] and set(found["connects"]) <= {"127.0.0.1", "::1"}, found["connects"]
    return found


def test_every_state_of_the_page_measured_by_axe_core_and_lighthouse(tmp_path, sites, service, driver):
    """Working, an outage of the service (orange), a fault on our side (red) and the gate stopped, each in French,
    Dutch and English, and the sign-in, on-site and today pages: 0 axe-core violations, no console error,
    Lighthouse accessibility 100 and best practices 100 (its JSON reports in .screenshots/lighthouse/)."""
    site = start(sites, tmp_path / "site", service)
    driver.get(f"{site.web.url}/login?lang=fr")
    measured(driver, driver.current_url, "login-fr")
    site.badge("10000000")
    site.wait(lambda: site.json("queue")["delivered"] == 1, "the badge delivered")
    sign_in(driver, site.web.url, PINS[ANNA])

    def every_language(level: str) -> None:
        for language in ("fr", "nl", "en"):
            url = f"{site.web.url}/?lang={language}"
            driver.get(url)
            assert f"state {level}" in driver.find_element(By.ID, "state").get_attribute("class")
            measured(driver, url, f"{level}-{language}")

    every_language("ok")
    for page in ("onsite", "today"):
        driver.get(f"{site.web.url}/{page}?lang=en")
        measured(driver, driver.current_url, page)
    try:
        service.fault("503")
        site.badge("10000001")
        site.wait(lambda: site.outage()["state"] == "open", "an outage of the service")
        every_language("outage")
        service.fault("revoked_token")  # our credentials refused: our side, no exemption
        site.wait(lambda: (site.outage().get("current") or {}).get("cause") == "our_side", "a fault on our side")
        every_language("fault")
    finally:
        service.fault(None)
    site.daemon.kill(signal.SIGTERM)
    every_language("down")
