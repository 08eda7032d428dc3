"""`sitegate config check` as a commissioning check: the example's values, the credentials, a token online."""

from __future__ import annotations

import json
import os
import socket
from datetime import timedelta

import pytest
from conftest import CONFIG_TEXT, run_sitegate
from simulator_process import SimulatorProcess

from sitegate import commissioning
from sitegate import config as configuration
from sitegate.clock import SYSTEM
from sitegate.config import SOAP_PATH
from sitegate.service.credentials import make_self_signed

# A commissioned site of its own: none of the example's values.
OWN_SITE = {
    '"1Y101DRUNWB5Z"': '"2B202ABCDEF7Q"',
    '"0403.170.701"': '"0202.239.951"',
    "latitude = 50.8466": "latitude = 51.0543",
    "longitude = 4.3528": "longitude = 3.7174",
    'street = "Rue de la Loi"': 'street = "Korenmarkt"',
}
LIFETIME = timedelta(days=3650)  # make_self_signed's certificates are valid from `now - 1 day` for this long


def write_config(tmp_path, *, own_site=True, client_id="gate-client", key=None, cert=None, service_extra=""):
    text = CONFIG_TEXT
    if own_site:
        for old, new in OWN_SITE.items():
            assert old in text, old
            text = text.replace(old, new)
    if key is None and cert is None:
        key, cert = make_self_signed(tmp_path / "credentials", SYSTEM.now(), "company")
    text += f'\n[service]\nclient_id = "{client_id}"\n{service_extra}'
    text += "".join(f'{name} = "{path}"\n' for name, path in (("key_file", key), ("cert_file", cert)) if path)
    path = tmp_path / "sitegate.toml"
    path.write_text(text)
    return path


def check(path, *extra):
    result = run_sitegate("config", "check", "--json", *extra, config=path)
    return result.returncode, {p["path"]: p for p in json.loads(result.stdout)["problems"]}


def test_a_commissioned_configuration_passes(tmp_path):
    code, problems = check(write_config(tmp_path))
    assert (code, problems) == (0, {})


def test_the_examples_site_values_are_refused_but_load_accepts_them(tmp_path):
    """The daemon, the demo and the tests load the example's values; only commissioning refuses them."""
    path = write_config(tmp_path, own_site=False)
    assert configuration.load(path).site.works_declaration == "1Y101DRUNWB5Z"
    code, problems = check(path)
    assert code == 2
    for key in (
        "site.works_declaration",
        "site.employers",
        "site.place_of_work.coordinates",
        "site.place_of_work.address",
    ):
        assert problems[key]["severity"] == "error" and "example" in problems[key]["message"], key
        assert problems[key]["fix"]


def test_the_installed_example_is_refused_on_every_count(tmp_path):
    """The issue's case: `sitegate config example` installed as is must not say "configuration OK"."""
    path = tmp_path / "example.toml"
    path.write_text(configuration.example_text())
    result = run_sitegate("config", "check", config=path)
    assert result.returncode == 2 and "configuration has errors" in result.stdout
    for key in ("site.works_declaration", "service.client_id", "service.key_file", "service.cert_file"):
        assert key in result.stdout, key


def test_empty_client_id(tmp_path):
    code, problems = check(write_config(tmp_path, client_id=" "))
    assert code == 2 and problems["service.client_id"]["message"] == "empty"


def test_missing_and_unreadable_credentials(tmp_path):
    key, cert = make_self_signed(tmp_path / "credentials", SYSTEM.now(), "company")
    code, problems = check(write_config(tmp_path, key=tmp_path / "nowhere.key", cert=cert))
    assert code == 2 and "does not exist" in problems["service.key_file"]["message"]
    garbage = tmp_path / "garbage.crt"
    garbage.write_text("not a certificate")
    code, problems = check(write_config(tmp_path, key=key, cert=garbage))
    assert code == 2 and "not a usable PEM file" in problems["service.cert_file"]["message"]
    code, problems = check(write_config(tmp_path, key=tmp_path, cert=cert))  # a folder: cannot be read as a file
    assert code == 2 and "service.key_file" in problems


@pytest.mark.skipif(
    os.geteuid() == 0, reason="root reads a mode-0 file: tests/test_install.py checks it as the daemon's user"
)
def test_unreadable_by_this_user(tmp_path):
    key, cert = make_self_signed(tmp_path / "credentials", SYSTEM.now(), "company")
    key.chmod(0)
    code, problems = check(write_config(tmp_path, key=key, cert=cert))
    assert code == 2 and "cannot be read" in problems["service.key_file"]["message"]


def test_a_certificate_of_another_key(tmp_path):
    key, _ = make_self_signed(tmp_path / "one", SYSTEM.now(), "company")
    _, other_cert = make_self_signed(tmp_path / "two", SYSTEM.now(), "company")
    code, problems = check(write_config(tmp_path, key=key, cert=other_cert))
    assert code == 2 and "is not the certificate of the key" in problems["service.cert_file"]["message"]


def test_expired_certificate_is_critical_and_soon_expiring_a_warning(tmp_path):
    now = SYSTEM.now()
    key, cert = make_self_signed(tmp_path / "old", now - LIFETIME - timedelta(days=2), "company")
    code, problems = check(write_config(tmp_path, key=key, cert=cert))
    assert code == 2 and "expired" in problems["service.cert_file"]["message"]
    key, cert = make_self_signed(tmp_path / "soon", now - LIFETIME + timedelta(days=10), "company")
    code, problems = check(write_config(tmp_path, key=key, cert=cert))
    assert code == 1 and problems["service.cert_file"]["severity"] == "warning"
    assert "expires on" in problems["service.cert_file"]["message"]


def test_expiry_findings_for_status_every_day_until_renewed(tmp_path):
    key, cert = make_self_signed(tmp_path / "c", SYSTEM.now(), "company")
    service = configuration.load(write_config(tmp_path, key=key, cert=cert)).service
    issued = SYSTEM.now()
    assert commissioning.certificate_health(service, issued) == []
    for days_left in (30, 12, 1):
        [finding] = commissioning.certificate_health(service, issued + LIFETIME - timedelta(days=days_left))
        assert finding.severity == "warning"
    [finding] = commissioning.certificate_health(service, issued + LIFETIME + timedelta(days=1))
    assert finding.severity == "critical" and "renew" in finding.text


def test_status_says_the_certificate_expires_soon(tmp_path):
    key, cert = make_self_signed(tmp_path / "soon", SYSTEM.now() - LIFETIME + timedelta(days=10), "company")
    result = run_sitegate("status", "--json", config=write_config(tmp_path, key=key, cert=cert))
    warnings = json.loads(result.stdout)["warnings"]
    assert result.returncode >= 1 and any("the company certificate expires on" in w for w in warnings), warnings


def test_online_obtains_a_token_from_the_service(tmp_path):
    service = SimulatorProcess()
    try:
        urls = f'base_url = "{service.base_url}"\ntoken_url = "{service.token_url}"\n'
        path = write_config(tmp_path, service_extra=urls + f'ca_file = "{service.ca_file}"\n' * bool(service.ca_file))
        result = run_sitegate("config", "check", "--online", config=path)
        assert result.returncode == 0 and "token obtained from" in result.stdout
    finally:
        service.stop()
    result = run_sitegate("config", "check", "--online", "--json", config=path)  # the service is gone now
    data = json.loads(result.stdout)
    assert result.returncode == 2 and data["online"] is False
    assert [p["path"] for p in data["problems"]] == ["service.token_url"]


def test_online_on_a_soap_only_gate_makes_a_signed_read_and_asks_no_rest_token(tmp_path):
    """A building contractor with only the SOAP channel activated has no REST client: the online check signs a read
    of the SOAP service, and never asks the (here unreachable) token address for a token it has no use for."""
    key, cert = make_self_signed(tmp_path / "credentials", SYSTEM.now(), "company")
    service = SimulatorProcess("--trust", str(cert))
    try:
        with socket.socket() as closed:
            closed.bind(("127.0.0.1", 0))
            nobody = f"http://127.0.0.1:{closed.getsockname()[1]}"
        urls = f'channel = "soap"\nsoap_url = "{service.url}{SOAP_PATH}"\ntoken_url = "{nobody}/token"\n'
        path = write_config(tmp_path, key=key, cert=cert, service_extra=urls)
        result = run_sitegate("config", "check", "--online", "--json", config=path)
        data = json.loads(result.stdout)
        assert result.returncode == 0 and data["online"] is True, result.stdout
        assert [(c["channel"], c["ok"]) for c in data["channels"]] == [("soap", True)]
        assert (
            "SOAP channel: signed call accepted by" in run_sitegate("config", "check", "--online", config=path).stdout
        )
        other_key, other_cert = make_self_signed(tmp_path / "unregistered", SYSTEM.now(), "company")
        path = write_config(tmp_path, key=other_key, cert=other_cert, service_extra=urls + 'fallback = "rest"\n')
        data = json.loads(run_sitegate("config", "check", "--online", "--json", config=path).stdout)
        assert {p["path"]: p["message"].split(":")[0] for p in data["problems"]} == {
            "service.soap_url": "SOAP channel",  # a certificate the service does not know
            "service.token_url": "REST channel",  # the fallback, asked too: nothing answers there
        }
    finally:
        service.stop()


def test_online_is_not_silently_skipped_when_there_are_errors(tmp_path):
    """Asked for, not done: the command says so, in text and in JSON, rather than let silence pass for a token."""
    path = write_config(tmp_path, client_id=" ")  # an error: no token is asked for
    result = run_sitegate("config", "check", "--online", config=path)
    assert result.returncode == 2 and "online check not run: fix the errors above first" in result.stdout
    data = json.loads(run_sitegate("config", "check", "--online", "--json", config=path).stdout)
    assert data["online"] is False and data["online_not_run"] == "fix the errors above first"
    plain = run_sitegate("config", "check", "--json", config=path)  # not asked for: nothing to say
    assert "online_not_run" not in json.loads(plain.stdout)
