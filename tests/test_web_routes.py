"""The foreman's page's routes in process: sign-in, sessions, the rate limit, CSRF and the answers of every route,
through WebTest (a WSGI client: no server, no browser) against the real log and the daemon's real socket end
(`page_actions.ActionServer`) on a fake clock. What only a browser shows (layout, a cross-site form in a real
browser, downloads) stays in tests/test_web.py."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
import webtest
from conftest import CONFIG_TEXT, registration

from sitegate import config as configuration
from sitegate.device import Device
from sitegate.domain.registration import append_registration
from sitegate.page_actions import ActionServer
from sitegate.pins import hash_pin
from sitegate.queue.records import Kind
from sitegate.web.app import COOKIE, HEADERS, make_app

OWN = "http://gate.test"  # the Host the client sends: the page's own origin
FOREIGN = "http://attacker.test"
ANNA, PIN = "Anna Janssens", "246810"
WEB = f"""
[web]
enabled = true
max_failures = 3
lockout_s = 60

[[web.foreman]]
name = "{ANNA}"
pin_hash = "{hash_pin(PIN)}"
"""


@pytest.fixture
def web_config(tmp_path: Path) -> configuration.Config:
    path = tmp_path / "sitegate.toml"
    path.write_text(CONFIG_TEXT + WEB, encoding="utf-8")
    return configuration.load(path)


@pytest.fixture
def gate(web_config, clock):
    """The gate's log with one worker in, and the daemon's end of the page's socket."""
    device = Device.open(web_config, clock)
    append_registration(device.log, registration(0))
    server = ActionServer(web_config, clock)
    server.start()
    yield device
    server.stop()
    device.close()


@pytest.fixture
def page(web_config, clock) -> webtest.TestApp:
    return webtest.TestApp(make_app(web_config, clock), extra_environ={"HTTP_HOST": "gate.test"})


def sign_in(page: webtest.TestApp, pin: str = PIN, address: str = "192.0.2.10", **headers) -> webtest.TestResponse:
    form = page.get("/login")
    token = re.search(r'name="token" value="([^"]+)"', form.text).group(1)
    return page.post(
        "/login",
        {"pin": pin, "token": token, "lang": "en"},
        headers={"Origin": OWN, **headers},
        extra_environ={"REMOTE_ADDR": address},
        expect_errors=True,
    )


def csrf(answer: webtest.TestResponse) -> str:
    return re.search(r'name="csrf" value="([^"]+)"', answer.text).group(1)


def test_without_a_session_a_page_sends_to_sign_in_and_a_form_is_refused(page, gate):
    for path in ("/", "/onsite", "/today"):
        answer = page.get(path, status=303)
        assert answer.location.startswith(f"{OWN}/login"), path
        assert "Worker0" not in answer.text
    for path in ("/reference", "/listing.pdf", "/print", "/logout"):
        refused = page.post(path, {"reference": "X-1"}, headers={"Origin": OWN}, status=403)
        assert refused.content_type == "text/plain" and refused.text == "refused: sign in first\n", path
    assert list(gate.log.newest(Kind.OUTAGE_REFERENCE)) == []


def test_the_right_pin_opens_a_session_in_a_strict_http_only_cookie(page, gate):
    answer = sign_in(page)
    assert answer.status_int == 303 and answer.location == f"{OWN}/"
    cookie = next(h for n, h in answer.headerlist if n == "Set-Cookie" and h.startswith(f"{COOKIE}="))
    attributes = {part.strip().split("=")[0].lower(): part for part in cookie.split(";")[1:]}
    assert attributes["httponly"] and attributes["samesite"].lower().endswith("strict")
    assert "secure" not in attributes  # no TLS configured: a Secure cookie would never come back
    home = page.get("/")
    assert f"Signed in: {ANNA}" in home.text
    assert "Worker0 Test" in page.get("/onsite").text
    page.post("/logout", {"csrf": csrf(home)}, headers={"Origin": OWN}, status=303)
    assert page.get("/", status=303).location.startswith(f"{OWN}/login")


def test_wrong_pins_lock_the_address_out_until_the_lockout_has_passed(page, gate, clock):
    assert "Wrong PIN." in sign_in(page, "000000").text
    assert sign_in(page, "000000").status_int == 401
    sign_in(page, "000000")  # max_failures = 3
    throttled = sign_in(page, X_Forwarded_For="192.0.2.99")  # the right PIN, another address claimed in a header
    assert throttled.status_int == 429 and int(throttled.headers["Retry-After"]) == 61
    assert COOKIE not in page.cookies
    assert sign_in(page, address="192.0.2.11").status_int == 303  # another phone is not locked out
    clock.advance(61)
    assert sign_in(page).status_int == 303


def test_a_sign_in_from_another_origin_or_without_the_forms_token_is_refused(page, gate):
    assert sign_in(page, Origin=FOREIGN).status_int == 403
    form = page.get("/login")
    answer = page.post("/login", {"pin": PIN, "token": "guessed"}, headers={"Origin": OWN}, status=403)
    assert answer.text == "refused: this form did not come from the gate's page\n"
    assert form.status_int == 200 and COOKIE not in page.cookies


def test_a_form_needs_the_sessions_token_and_the_pages_origin(page, gate):
    token = csrf(page.get(sign_in(page).location))
    form = {"reference": "CC-7", "csrf": token}
    page.post("/reference", {"reference": "CC-7"}, headers={"Origin": OWN}, status=403)  # no token
    page.post("/reference", {**form, "csrf": "x" * len(token)}, headers={"Origin": OWN}, status=403)
    page.post("/reference", form, headers={"Origin": FOREIGN}, status=403)
    page.post("/reference", form, status=403)  # neither Origin nor Referer
    assert list(gate.log.newest(Kind.OUTAGE_REFERENCE)) == []
    done = page.post("/reference", form, headers={"Referer": f"{OWN}/"}, status=303)  # a Referer will do
    record = next(gate.log.newest(Kind.OUTAGE_REFERENCE))
    assert done.location == f"{OWN}/?done={record.seq}" and record.data["by"] == ANNA
    assert f"Reference CC-7 recorded (signed record {record.seq})." in page.get(done.location).text


def test_a_reference_the_gate_cannot_take_is_answered_on_the_page(page, gate):
    token = csrf(page.get(sign_in(page).location))
    for sent, said in [
        ({"reference": " "}, "Write the reference number"),
        ({"reference": "CC-1\x1dVA\x03"}, "letters, digits"),
        ({"reference": "CC-2", "employer": "123"}, "enterprise number"),
    ]:
        answer = page.post("/reference", {**sent, "csrf": token}, headers={"Origin": OWN}, status=400)
        assert said in answer.text, sent
    assert list(gate.log.newest(Kind.OUTAGE_REFERENCE)) == []


def test_the_listing_is_signed_by_the_daemon_and_sent_as_a_pdf(page, gate):
    token = csrf(page.get(sign_in(page).location))
    answer = page.post("/listing.pdf", {"csrf": token}, headers={"Origin": OWN}, status=200)
    assert answer.content_type == "application/pdf" and answer.body.startswith(b"%PDF")
    assert answer.headers["Content-Disposition"] == 'attachment; filename="listing-2026-11-22.pdf"'
    assert next(gate.log.newest(Kind.PAPER_LISTING)).data["by"] == ANNA


def test_without_the_daemon_the_page_says_so_and_signs_nothing(page, web_config, clock):
    device = Device.open(web_config, clock)  # the log, but no daemon listening on the page's socket
    try:
        token = csrf(page.get(sign_in(page).location))
        answer = page.post("/reference", {"reference": "CC-9", "csrf": token}, headers={"Origin": OWN}, status=503)
        assert "daemon does not answer" in answer.text
        assert list(device.log.newest(Kind.OUTAGE_REFERENCE)) == []
    finally:
        device.close()


def test_every_answer_carries_the_security_headers(page, gate):
    for answer in (page.get("/login"), page.get("/", status=303), page.post("/print", status=403)):
        assert {name: answer.headers[name] for name in HEADERS} == HEADERS


def test_the_language_asked_in_the_address_is_the_pages_and_the_session_keeps_it(page, gate):
    login = page.get("/login?lang=fr")
    assert '<html lang="fr">' in login.text and "Votre code PIN" in login.text
    assert f"Aangemeld: {ANNA}" in page.get(sign_in(page).location + "?lang=nl").text
    assert f"Aangemeld: {ANNA}" in page.get("/today").text
