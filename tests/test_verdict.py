"""Issue 8, case by case: the outage verdict a foreman can stake a fine on, driving the real daemon on loopback.

Every network fault is made on this machine: a refused port, a TLS server with a certificate from another CA,
a reference host whose certificate the gate does not trust (an intercepting network). The independent reference
host is a second simulator serving HTTPS; the daemon trusts its CA through SSL_CERT_FILE, as a Pi trusts the
public CAs.
"""

from __future__ import annotations

import io
import json
import re
import time

import pytest
from network_namespace import NetworkNamespace, needs_root
from pypdf import PdfReader
from simulator_process import SimulatorProcess
from verdict_site import Site, closed_port_url, silent_gateway, trusting
from web_site import EXEMPT_WORDS, WebSite, signed_in, signed_in_page

from sitegate.clock import SYSTEM
from sitegate.clock.timefmt import show
from sitegate.service.credentials import make_self_signed
from sitegate.service.remarks import info

pytestmark = pytest.mark.slow
RAW_UTC = re.compile(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?Z")  # a stored time, never one a person reads


@pytest.fixture(scope="module")
def secure_service():
    server = SimulatorProcess("--tls")
    yield server
    server.stop()


@pytest.fixture
def sites():
    started: list[Site] = []
    yield started
    for site in started:
        site.stop()


def start(sites, *args, **kwargs) -> Site:
    site = Site(*args, **kwargs)
    site.roster([f"{0x10000000 + i:08X},,{10**16 + i:017d},Worker{i},Test,0403170701,," for i in range(3)])
    sites.append(site.start())
    return site


def unreachable(sites, directory, reference, **options) -> Site:
    """A gate whose service refuses every connection while the independent reference host works."""
    env = trusting(directory, reference.ca_file)
    return start(
        sites, directory, closed_port_url("/b"), closed_port_url(), reference_url=reference.url, env=env, **options
    )


def connected(sites, directory, service, **then) -> Site:
    """A gate that has delivered before (so a failure is an outage, not "never connected"), then reconfigured."""
    site = start(sites, directory, service.base_url, service.token_url)
    site.badge("10000002")
    site.wait(lambda: site.json("queue")["delivered"] == 1, "a first delivery")
    return site.restart(**then)


def test_1_a_certificate_our_settings_cannot_verify_is_our_side_not_exempt(
    tmp_path, sites, service, secure_service, reference
):
    """Case 1: service.ca_file wrong or missing while the internet works: our side, never "exempt"."""
    other_ca = make_self_signed(tmp_path / "other-ca", SYSTEM.now(), "other")[1]
    for name, ca_file in (("wrong", other_ca), ("missing", tmp_path / "missing-ca.pem")):
        site = connected(
            sites,
            tmp_path / name,
            service,
            base_url=secure_service.base_url,
            token_url=secure_service.token_url,
            ca_file=ca_file,
            reference_url=reference.url,
        )
        site.env.update(trusting(tmp_path, reference.ca_file))
        site.restart()
        site.badge("10000000")
        shown = site.wait_outage("open")["current"]
        assert shown["cause"] == "our_side" and shown["exempt"] is False, shown
        assert "NO exemption" in shown["what_to_do"] and "EXEMPT" not in shown["what_to_do"]
        assert site.sitegate("outage").returncode == 2
        status = site.json("status")
        assert status["queue"]["last_error_class"] == "our_side"  # the forwarder and the journal agree
        site.stop()


def test_1_an_intercepting_network_is_infrastructure(tmp_path, sites, service, secure_service, reference):
    """Case 1, the other side: the reference's certificate fails as well, so the network intercepts TLS."""
    other_ca = make_self_signed(tmp_path / "other-ca", SYSTEM.now(), "other")[1]
    site = connected(sites, tmp_path / "site", service)
    site.env.update(trusting(tmp_path, other_ca))  # the gate trusts neither certificate it is shown
    site.restart(
        base_url=secure_service.base_url,
        token_url=secure_service.token_url,
        ca_file=other_ca,
        reference_url=reference.url,
    )
    site.badge("10000000")
    shown = site.wait_outage("open")["current"]
    assert shown["cause"] == "third_party_infrastructure" and shown["exempt"] is True
    assert "EXEMPT" in shown["what_to_do"]


@pytest.mark.parametrize(
    "service_up, fault, reference_up, expected",
    [
        (False, None, True, "service_unavailable"),  # the service host refuses, other sites load: the service
        (False, None, False, "third_party_infrastructure"),  # nothing loads: the internet is down
        (True, "html", True, "service_unavailable"),  # an HTML page from the service while others load
        (True, "html", False, "third_party_infrastructure"),  # a captive portal answers for everything
        (True, "503", True, "service_unavailable"),
    ],
)
def test_2_which_hop_failed_decides_and_both_classifications_agree(
    tmp_path, sites, service, reference, service_up, fault, reference_up, expected
):
    """Case 2 and case 15: internet down and service down told apart; every piece of evidence has its time."""
    base, token = (service.base_url, service.token_url) if service_up else (closed_port_url("/b"), closed_port_url())
    site = connected(sites, tmp_path, service)
    site.env.update(trusting(tmp_path, reference.ca_file))
    service.fault(fault)
    try:
        site.restart(base_url=base, token_url=token, reference_url=reference.url if reference_up else closed_port_url())
        site.badge("10000000")
        current = site.wait_outage("open")["current"]
        assert current["cause"] == expected
        probes = [probe for piece in current["evidence"] for probe in piece.get("probes", [])]
        by_name = {probe["name"]: probe for probe in probes}
        assert by_name["reference"]["ok"] is reference_up
        if not service_up:
            assert by_name["service_connect"]["symptom"] == "connection_refused"
        assert all("at_utc" in piece for piece in current["evidence"]) and all("at_utc" in p for p in probes)
        site.wait(lambda: site.json("status")["queue"]["last_error_class"] == expected, "the forwarder agrees")
    finally:
        service.fault(None)


def test_3_an_unsynced_clock_is_a_warning_never_an_outage(tmp_path, sites, service):
    """Case 3: every registration delivered, the clock unsynced (no time source): no outage, a clock warning.
    Delivered once they have waited `clock.first_sync_wait_s` for a sync that never comes: 2 s here rather than the
    default's 2 min (tests/test_clock_hold.py proves the wait on a fake clock)."""
    site = start(sites, tmp_path, service.base_url, service.token_url, trusted_clock=False, first_sync_wait_s=2)
    site.badge("10000000", "10000001")
    site.wait(lambda: site.json("queue")["delivered"] == 2, "both delivered")
    site.wait(lambda: len([e for e in site.daemon.lines if e.get("event") == "delivered"]) >= 1, "delivered")
    time.sleep(3)  # three probe rounds
    shown = site.outage()
    assert shown["state"] == "ok" and shown["episodes"] == [], shown
    status = site.sitegate("status", "--json")
    assert status.returncode == 1  # a warning, not critical
    data = json.loads(status.stdout)
    assert data["outage"] is None and any("clock" in line for line in data["warnings"])


def test_4_5_the_outage_is_suspected_at_once_and_starts_at_the_first_failure(tmp_path, sites, reference):
    """Cases 4 and 5: visible during the grace period (warning), and its start is the earliest failed attempt."""
    # grace 300 s, and only the forwarder's failure triggers a probe round here
    site = unreachable(sites, tmp_path, reference, grace_s=300, probe_interval_s=60)
    site.badge("10000000")
    shown = site.wait_outage("suspected", timeout=15)
    current = shown["current"]
    first_failure = site.json("queue")["first_failure_utc"]
    first_probe = min(p["at_utc"] for p in current["evidence"][0]["probes"] if not p["ok"])
    assert current["start_utc"] == first_failure <= first_probe
    assert current["exempt"] is False and current["evidence"][0]["event"] == "suspected"
    status = site.sitegate("status", "--json")
    assert status.returncode == 1 and "registration failing since" in status.stdout
    assert f"failing since {show(current['start_utc'])}" in status.stdout  # Brussels time, as people read it
    assert f"failing since {show(current['start_utc'])}" in site.sitegate("outage").stdout
    assert shown["outages"] == []  # not an outage yet


def test_6_a_never_connected_device_signs_every_failure_from_the_first(tmp_path, sites, reference):
    """Case 6: no exemption for a site that never connected, but signed evidence from day one."""
    site = unreachable(sites, tmp_path, reference, summary_every_s=1)
    site.badge("10000000")
    shown = site.wait(
        lambda: (found := site.outage())["current"] and found["current"]["state"] == "never_connected" and found,
        "a signed never-connected episode",
    )
    assert shown["state"] == "never_connected" and shown["never_connected"] is True and shown["outages"] == []
    assert "NO exemption" in shown["current"]["what_to_do"]
    site.wait(lambda: any(p["event"] == "evidence" for p in site.outage()["current"]["evidence"]), "periodic evidence")
    events = [piece["event"] for piece in site.outage()["current"]["evidence"]]
    assert events[:2] == ["suspected", "never_connected"]
    assert site.sitegate("verify").returncode == 0


def test_13_guidance_in_the_site_language_and_on_request(tmp_path, sites, reference):
    """Case 13: the foreman's words in French, Dutch and English; the shell commands for the technician only."""
    site = unreachable(sites, tmp_path, reference, language="nl")
    site.badge("10000000")
    current = site.wait(lambda: site.outage()["current"], "a signed episode")
    site.wait(lambda: site.outage()["current"]["state"] == "never_connected", "past the grace period")
    assert current["state"] in ("suspected", "never_connected")
    assert "GEEN vrijstelling" in site.outage()["current"]["what_to_do"]
    french = site.sitegate("outage", "--lang", "fr")
    assert "AUCUNE dispense" in french.stdout and "Technician: `sitegate outage --json`" in french.stdout


# Issue 22: the verdict's last wrong cases.
def test_issue22_1_a_refused_token_decides_whatever_the_gateway_says(tmp_path, sites, service):
    """A 401 from the service while the gateway ignores our probe and no reference host is set: the service
    answered, so the way to it works; its answer (our credentials) decides. Never "exempt"."""
    with silent_gateway() as gateway:
        site = connected(sites, tmp_path, service, gateway=gateway, probe_timeout_s=1)
        service.fault("revoked_token")
        try:
            site.badge("10000000")
            current = site.wait_outage("open")["current"]
            assert current["cause"] == "our_side" and current["exempt"] is False, current
            probes = {p["name"]: p for piece in current["evidence"] for p in piece.get("probes", [])}
            assert probes["gateway"]["ok"] is False and probes["service_answer"]["symptom"] == "credentials"
            site.wait(lambda: site.json("status")["queue"]["last_error_class"] == "our_side", "the queue agrees")
        finally:
            service.fault(None)


def test_issue22_2_a_name_the_resolver_does_not_know_is_our_configuration(tmp_path, sites):
    """NXDOMAIN for the service's name while the resolver answers, no reference host (the demo's reference_url =
    ""): our configuration, never "exempt", in `outage`, `status` (with the fix) and on the page. The daemon and
    the simulator run in a network namespace of the test's own, whose DNS server knows the service's right name
    only: the daemon's lookups go through the system resolver as on a gate, and never leave loopback."""
    needs_root()
    with NetworkNamespace({"service.sitegate.test": "127.0.0.1"}) as namespace:
        # Listening on the name (the namespace's DNS gives 127.0.0.1), with a certificate for it.
        simulator = SimulatorProcess("--tls", "--host", "service.sitegate.test", prefix=namespace.prefix)
        site = None
        try:
            named = {
                host: {key: getattr(simulator, key).replace("127.0.0.1", host) for key in ("base_url", "token_url")}
                for host in ("service.sitegate.test", "servcie.sitegate.test")  # the right name, and a typo
            }
            site = WebSite(tmp_path, **named["service.sitegate.test"], ca_file=simulator.ca_file)
            site.prefix = namespace.prefix
            site.roster([f"{0x10000000 + i:08X},,{10**16 + i:017d},Worker{i},Test,0403170701,," for i in range(3)])
            sites.append(site.start())
            site.badge("10000002")
            site.wait(lambda: site.json("queue")["delivered"] == 1, "a first delivery: the resolver answers")
            site.restart(**named["servcie.sitegate.test"])
            site.badge("10000000")
            current = site.wait_outage("open")["current"]
            assert current["cause"] == "our_side" and current["exempt"] is False, current
            probes = {p["name"]: p for piece in current["evidence"] for p in piece.get("probes", [])}
            assert probes["dns"]["symptom"] == "name_unknown" and "reference" not in probes
            assert "NO exemption" in current["what_to_do"] and "EXEMPT" not in current["what_to_do"]
            outage = site.sitegate("outage")
            assert outage.returncode == 2 and "FAULT ON OUR SIDE" in outage.stdout and "EXEMPT" not in outage.stdout
            assert "failed call(s) since" in outage.stdout and not RAW_UTC.search(outage.stdout)  # Brussels time
            site.wait(lambda: site.json("status")["queue"]["last_error_class"] == "our_side", "the queue agrees")
            status = site.sitegate("status")
            assert "our_side" in status.stdout and "servcie.sitegate.test does not exist" in status.stdout
            assert "check the host names in service.base_url and service.token_url" in status.stdout
            assert "internet link" not in status.stdout
            for language in ("fr", "nl", "en"):
                page = signed_in_page(site.config, language)
                assert 'class="state fault"' in page and not EXEMPT_WORDS.search(page), (language, page)
        finally:
            if site is not None:
                site.stop()
            simulator.stop()


def test_issue22_3_the_service_s_own_error_page_is_the_service(tmp_path, sites, service, secure_service):
    """An HTML error page over the service's own verified certificate, no reference host: the service itself is
    unavailable (exempt), never "internet, phone network or power"."""
    site = connected(sites, tmp_path, service)
    site.restart(base_url=secure_service.base_url, token_url=secure_service.token_url, ca_file=secure_service.ca_file)
    site.badge("10000000")
    site.wait(lambda: site.json("queue")["delivered"] == 2, "delivered over TLS")
    secure_service.fault("html")
    try:
        site.badge("10000001")
        current = site.wait_outage("open")["current"]
        assert current["cause"] == "service_unavailable" and current["exempt"] is True, current
    finally:
        secure_service.fault(None)


def test_issue22_4_5_the_outage_closes_when_the_service_is_back_and_the_queue_agrees(tmp_path, sites, service):
    """A 503 held long enough for the forwarder's backoff to grow past 30 s: once the service answers again the
    probes end the backoff, the outage closes within a few probe rounds (not at the backoff's end), and the
    queue's last error keeps the class it was judged with."""
    site = connected(sites, tmp_path, service)
    service.fault("503")
    try:
        site.badge("10000000")
        current = site.wait_outage("open")["current"]
        assert current["cause"] == "service_unavailable"
        site.wait(lambda: site.json("status")["queue"]["last_error_class"] == "service_unavailable", "one answer")
        time.sleep(35)  # attempts at about 0, 1.5, 4, 8.5, 17 and 33.5 s: the next one would come after 65 s
    finally:
        service.fault(None)
    back = time.monotonic()
    site.wait(lambda: site.outage()["state"] == "ok", "the outage closed", timeout=60)
    assert time.monotonic() - back < 15, "the outage stayed open until the backoff ended"
    assert site.json("queue")["delivered"] == 2
    status = site.json("status")
    assert status["outage"] is None and status["queue"]["last_error_class"] == "service_unavailable"


def test_issue22_9_a_flapping_service_is_said_with_the_share_of_failed_sends(tmp_path, sites, service):
    """A service that fails every other call answers often enough that no outage opens (registration works,
    late): `sitegate status` says so, with the share of failed sends, instead of nothing."""
    site = connected(sites, tmp_path, service, grace_s=300)
    site.roster([f"{0x10000000 + i:08X},,{10**16 + i:017d},Worker{i},Test,0403170701,," for i in range(8)])
    for delivered, uid in enumerate(["10000003", "10000004", "10000005", "10000006", "10000007"], start=2):
        service.fault("503", count=1)  # this registration's first call fails, the retry goes through
        site.badge(uid)
        site.wait(lambda n=delivered: site.json("queue")["delivered"] == n, f"{delivered} delivered")
    site.wait(lambda: site.outage()["state"] == "ok", "no outage: every failure was followed by a success")
    status = site.sitegate("status", "--json")
    warnings = json.loads(status.stdout)["warnings"]
    [said] = [line for line in warnings if "delivery is unreliable" in line]
    assert "5 of 10 sends failed in the last hour (50%)" in said and "no exemption" in said
    assert status.returncode == 1


# Issue 22, cases 6 to 8 through the real daemon process and the simulator.
def listing_text(site: Site, out) -> tuple[int, str]:
    """`sitegate paper print --format pdf --out FILE` as a technician runs it, and the PDF's text."""
    printed = site.sitegate("paper", "print", "--format", "pdf", "--out", str(out), "--lang", "en")
    assert printed.returncode in (0, 1), printed.stdout + printed.stderr
    return printed.returncode, "\n".join(page.extract_text() for page in PdfReader(out).pages)


def test_issue22_6_the_registration_whose_failed_send_opened_the_outage_is_explained_by_it(tmp_path, sites):
    """A service whose reception delay is 2 s answers 503 from the first send of a registration: that failed send
    opens the outage, whose start is the failure, a moment after the registration was captured. When the service is
    back the registration draws remark 32; `sitegate remarks` explains it by the outage, never by the clock."""
    late = SimulatorProcess("--delay", "2")
    try:
        site = connected(sites, tmp_path, late)
        late.fault("503")
        site.badge("10000000")
        badged = time.monotonic()
        opened = site.wait_outage("open")["current"]
        time.sleep(max(0.0, 3 - (time.monotonic() - badged)))  # past the 2 s reception delay: remark 32 is due
        late.fault(None)
        listed = site.wait(lambda: [i for i in site.json("remarks") if i["code"] == 32], "remark 32 back")
        [item] = listed
        assert item["registered_utc"] < opened["start_utc"]  # captured before the outage began: the case
        assert f"captured during outage {opened['seq']} (service_unavailable" in item["cause"]
        assert "not the clock" in item["cause"], item
        shown = site.sitegate("remarks").stdout
        assert "not the clock" in shown and info(32).cause not in shown
    finally:
        late.stop()


def test_issue22_7_a_name_no_font_can_draw_still_gives_a_pdf_with_a_box_to_write_it(tmp_path, sites, service):
    """An Ethiopic name on the roster: the listing the command prints and the one the page downloads through the
    daemon are PDFs with that worker's box to fill in by hand, and say so; never rc 2 and no file."""
    site = WebSite(tmp_path, service.base_url, service.token_url)
    site.roster(
        [
            "10000000,,10000000000000000,ኃይሌ,ገብረሥላሴ,0403170701,,",  # Haile Gebrselassie, in Ge'ez script
            "10000001,,10000000000000001,Peeters,Jan,0403170701,,",
        ]
    )
    sites.append(site.start())
    site.badge("10000000", "10000001")
    site.wait(lambda: site.json("queue")["delivered"] == 2, "both delivered")
    code, text = listing_text(site, tmp_path / "listing.pdf")
    assert code == 1 and "write it by hand" in text and "10000000000000000" in text and "Peeters" in text
    said = site.sitegate("paper", "print", "--format", "pdf", "--out", str(tmp_path / "again.pdf"))
    assert "10000000000000000" in said.stdout + said.stderr and "by hand" in said.stdout + said.stderr
    page = signed_in(site.config, "en")
    csrf = re.search(r'name="csrf" value="([^"]+)"', page.get("/").text).group(1)
    download = page.post("/listing.pdf", {"csrf": csrf}, headers={"Origin": "http://gate.test"})
    assert download.content_type == "application/pdf"
    pages = PdfReader(io.BytesIO(download.body)).pages
    assert "write it by hand" in pages[0].extract_text() and "10000000000000000" in pages[0].extract_text()


def test_issue22_8_two_references_of_two_outages_are_each_printed_with_the_rows_they_cover(tmp_path, sites, service):
    """Two outages of the service, a reference recorded in each (`sitegate outage reference`, the daemon running):
    the day's listing prints both, each with its outage's times and the rows (#) of the workers it covers."""
    site = connected(sites, tmp_path, service)  # Worker2 delivered before any outage: covered by neither
    seen = []
    try:
        for uid, reference in (("10000000", "REF-1"), ("10000001", "REF-2")):
            service.fault("503")
            site.badge(uid)
            current = site.wait(
                lambda: (c := site.outage()["current"]) and c["state"] == "open" and c["seq"] not in seen and c,
                f"the outage {reference} is for",
            )
            seen.append(current["seq"])
            assert site.sitegate("outage", "reference", reference).returncode == 0
            service.fault(None)
            site.wait(lambda: site.outage()["state"] == "ok", "the outage closed")
    finally:
        service.fault(None)
    _, text = listing_text(site, tmp_path / "listing.pdf")
    rows = [line.split()[:4] for line in text.splitlines() if re.match(r"\d+ \d{17} ", line)]
    assert rows == [[str(n + 1), f"{10**16 + n:017d}", "Limosa", f"Worker{n}"] for n in range(3)], text
    flat = " ".join(text.split())
    for reference, row in (("REF-1", 1), ("REF-2", 2)):  # Worker0's row for the first, Worker1's for the second
        assert re.search(rf"{reference} \(\d\d:\d\d-\d\d:\d\d\): {row}(;|\s)", flat), (reference, flat)
