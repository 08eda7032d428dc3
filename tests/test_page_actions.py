"""The page's requests to the daemon over its local socket: signed by the daemon, naming the foreman; refused
clearly when the daemon is away or the request is not one it knows."""

from __future__ import annotations

import socket

import pytest

from sitegate.errors import SitegateError
from sitegate.page_actions import ActionServer, GateUnavailable, ask, socket_path
from sitegate.queue.records import Kind


@pytest.fixture
def actions(config, clock, device):
    server = ActionServer(config, clock)
    server.start()
    yield server
    server.stop()


def test_a_reference_is_signed_by_the_daemon_and_names_the_foreman(config, device, actions):
    answer = ask(config, {"action": "reference", "reference": "CC-7", "employer": "0403.170.701", "by": "Jan"})
    record = device.log.get(answer["seq"])
    assert record.kind == Kind.OUTAGE_REFERENCE
    assert record.data == {"reference": "CC-7", "employer": "0403170701", "by": "Jan", "at_utc": record.data["at_utc"]}
    assert oct(socket_path(config).stat().st_mode & 0o777) == "0o600"


def test_what_the_daemon_refuses_comes_back_with_its_fix(config, device, actions):
    with pytest.raises(SitegateError) as refused:
        ask(config, {"action": "reference", "reference": "CC-8", "employer": "123", "by": "Jan"})
    assert "employer" in refused.value.problem and refused.value.fix
    with pytest.raises(SitegateError, match="unknown action 'roster'"):
        ask(config, {"action": "roster", "by": "Jan"})
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as raw:
        raw.connect(str(socket_path(config)))
        raw.sendall(b"not json\n")
        assert b"does not understand" in raw.makefile("rb").readline()
    assert device.log.count_kind(Kind.OUTAGE_REFERENCE) == 0


def test_without_the_daemon_the_page_is_told_so(config, device):
    with pytest.raises(GateUnavailable) as away:
        ask(config, {"action": "print", "by": "Jan"})
    assert "does not answer" in away.value.problem and "technician" in away.value.fix


@pytest.mark.parametrize("reference", ["CC-1\x1b@", "CC-1\x1dVA\x03", "CC\u202e1-", "x" * 65, "  "])
def test_a_reference_a_paper_cannot_show_as_typed_is_refused_by_the_daemon_too(config, device, actions, reference):
    with pytest.raises(SitegateError, match="printable characters"):
        ask(config, {"action": "reference", "reference": reference, "by": "Jan"})
    assert device.log.count_kind(Kind.OUTAGE_REFERENCE) == 0


def test_a_client_that_says_nothing_is_cut_and_the_page_still_served(config, clock, device):
    server = ActionServer(config, clock, request_timeout_s=0.5)
    server.start()
    try:
        with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as silent:
            silent.connect(str(socket_path(config)))
            silent.settimeout(10)
            assert silent.recv(1) == b""  # closed by the daemon, not after our 10 s
            answer = ask(config, {"action": "reference", "reference": "CC-9", "by": "Jan"})
    finally:
        server.stop()
    assert device.log.get(answer["seq"]).data["reference"] == "CC-9"
