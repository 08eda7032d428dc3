"""Issue 11: the page's configuration ([web], foremen's PIN hashes) and `sitegate web pin-hash`, without a browser."""

from __future__ import annotations

import io
import json
import os
import sys
import tomllib
from pathlib import Path

import pytest
from conftest import CONFIG_TEXT, installed_sitegate, run_sitegate
from cryptography import x509

from sitegate import config as configuration
from sitegate import pins
from sitegate.errors import ConfigError
from sitegate.web.auth import same_origin


def problems(text: str) -> list[str]:
    with pytest.raises(ConfigError) as error:
        configuration.parse(tomllib.loads(CONFIG_TEXT + text))
    return [f"{p.path}: {p.message}" for p in error.value.problems]


def test_the_page_is_off_unless_configured_and_the_example_says_how():
    assert configuration.parse(tomllib.loads(CONFIG_TEXT)).web.enabled is False
    example = configuration.example_text()
    assert "[web]\n" in example and "[[web.foreman]]" in example and "enabled = false" in example
    parsed = configuration.parse(tomllib.loads(example))
    assert parsed.web.enabled is False and parsed.web.listen == "192.0.2.20"  # an example address, never 0.0.0.0
    # The example's hash belongs to no known PIN: nobody can sign in with a copied example.
    assert not any(pins.verify(pin, parsed.web.foremen[0].pin_hash) for pin in ("000000", "123456", "1234"))


def test_an_enabled_page_needs_foremen_valid_hashes_and_a_whole_certificate():
    assert problems("\n[web]\nenabled = true\n") == ["web.foreman: the page is enabled but no foreman can sign in"]
    assert problems('\n[web]\ntls_cert = "cert.pem"\n') == ["web: tls_cert and tls_key go together"]
    everywhere = configuration.parse(tomllib.loads(CONFIG_TEXT + '\n[web]\nlisten = "0.0.0.0"\n'))
    assert [p.path for p in everywhere.warnings] == ["web.listen"]
    found = problems('\n[[web.foreman]]\nname = "Jan"\npin_hash = "123456"\n')
    assert found == ["web.foreman[0].pin_hash: not a PIN hash written by `sitegate web pin-hash`"]


def test_pins_are_hashed_with_scrypt_and_checked_in_constant_time():
    stored = pins.hash_pin("246810")
    assert stored.startswith("scrypt$16384$8$1$") and "246810" not in stored
    assert pins.verify("246810", stored) and not pins.verify("246811", stored)
    assert pins.hash_pin("246810") != stored  # salted
    with pytest.raises(pins.PinError):
        pins.hash_pin("1234")


def test_pin_hash_command_prints_a_line_for_the_configuration(monkeypatch, config_file):
    monkeypatch.setattr("sys.stdin", io.StringIO("97531864\n"))
    result = run_sitegate("web", "pin-hash", "--json", config=config_file)
    assert result.returncode == 0, result.stderr
    assert pins.verify("97531864", json.loads(result.stdout)["pin_hash"])
    monkeypatch.setattr("sys.stdin", io.StringIO("12\n"))
    refused = run_sitegate("web", "pin-hash", config=config_file)
    assert refused.returncode == 2 and "at least 6 digits" in refused.stderr


def test_serve_exits_at_once_when_the_page_is_off(config_file):
    result = installed_sitegate("web", "serve", env={**os.environ, "SITEGATE_CONFIG": str(config_file)})
    assert result.returncode == 0, result.stderr
    assert [json.loads(line)["event"] for line in result.stdout.splitlines()] == ["web_off"]


def test_a_form_post_must_come_from_the_page_itself():
    own = "http://192.0.2.20:8080"
    assert same_origin(own, None, own) and same_origin(None, own + "/login", own)
    assert not same_origin("http://192.0.2.20:8081", None, own)
    assert not same_origin(None, "http://192.0.2.20:8080.evil.example/", own)
    assert not same_origin(None, None, own)


def test_make_cert_writes_the_devices_own_certificate_for_the_page(tmp_path, config_file):
    result = run_sitegate("web", "make-cert", "--host", "192.0.2.20", "--dir", str(tmp_path / "tls"), "--json",
                          config=config_file)  # fmt: skip
    assert result.returncode == 0, result.stderr
    made = json.loads(result.stdout)
    certificate = x509.load_pem_x509_certificate(Path(made["tls_cert"]).read_bytes())
    names = certificate.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert [str(ip) for ip in names.get_values_for_type(x509.IPAddress)] == ["192.0.2.20"]
    assert oct(Path(made["tls_key"]).stat().st_mode & 0o777) == "0o600"
    lines = f'\n[web]\ntls_cert = "{made["tls_cert"]}"\ntls_key = "{made["tls_key"]}"\n'
    assert configuration.parse(tomllib.loads(CONFIG_TEXT + lines)).web.tls_cert == Path(made["tls_cert"])


def answer_at_a_terminal(command: list[str], answers: list[tuple[str, str]]) -> str:
    """Run a command on a real terminal (util-linux `script` gives it one) and type each answer once its prompt
    is shown, as a person would; what the terminal showed."""
    import shlex
    import subprocess

    shown = b""
    process = subprocess.Popen(
        ["script", "-qec", shlex.join(command), "/dev/null"], stdin=subprocess.PIPE, stdout=subprocess.PIPE
    )
    try:
        for prompt, answer in answers:
            while prompt.encode() not in shown:
                chunk = os.read(process.stdout.fileno(), 1024)
                assert chunk, f"no prompt {prompt!r}; the terminal showed {shown!r}"
                shown += chunk
            shown = shown.split(prompt.encode(), 1)[1]
            process.stdin.write(answer.encode() + b"\n")
            process.stdin.flush()
        rest, _ = process.communicate(timeout=60)
    finally:
        if process.poll() is None:
            process.kill()
    return (shown + rest).decode(errors="replace")


def test_pin_hash_at_a_terminal_asks_twice_and_refuses_two_different_pins(config_file):
    command = [str(Path(sys.executable).parent / "sitegate"), "--config", str(config_file), "web", "pin-hash"]
    differ = answer_at_a_terminal(command, [("PIN (6 digits or more): ", "123456"), ("again: ", "654321")])
    assert "the two PINs typed differ" in differ and "pin_hash" not in differ
    same = answer_at_a_terminal(command, [("PIN (6 digits or more): ", "97531864"), ("again: ", "97531864")])
    assert 'pin_hash = "' in same
