"""The SOAP channel end to end: the forwarder, the signed envelope, the simulator's SOAP endpoint over loopback HTTP.

The simulator runs in the test's process (sharing its clock, so "today" is the gate's today) as a real HTTP server;
it refuses any envelope whose signature does not verify with the trusted test certificate or whose body does not
satisfy the published XSD, so every delivery below also proves the request was valid and signed.
"""

from __future__ import annotations

import dataclasses
import socket
import subprocess
import sys
from contextlib import contextmanager
from pathlib import Path
from types import SimpleNamespace

import pytest
from conftest import CONFIG_TEXT, registration
from lxml import etree

from sitegate import config as configuration
from sitegate.clock import SYSTEM
from sitegate.clock.timefmt import format_utc
from sitegate.device import Device
from sitegate.domain.registration import append_registration
from sitegate.paper_fallback import guidance, outage
from sitegate.paper_fallback.guidance import OutageState
from sitegate.paper_fallback.outage import OutageJournal
from sitegate.paper_fallback.probes import Prober
from sitegate.queue import delivery
from sitegate.queue.database import immediate
from sitegate.queue.failures import Cause, Symptom
from sitegate.queue.forwarder import Forwarder, ForwardReport
from sitegate.service import presence_soap_v1 as contract
from sitegate.service.channels import Failover, channel_for
from sitegate.service.client import DeliveryFailure
from sitegate.service.credentials import make_self_signed
from sitegate.service.remarks import needing_action
from sitegate.service.soap_client import SoapClient
from sitegate.service.wssecurity import X509Signature
from sitegate.simulator import SimulatedService, SimulatorServer
from sitegate.simulator.soap import Refused
from sitegate.web import views


def service_section(server: SimulatorServer, credentials, channel="soap", fallback="", batch_size=200) -> str:
    key, cert = credentials
    return (
        "\n[service]\n"
        f'channel = "{channel}"\n'
        f'fallback = "{fallback}"\n'
        f'soap_url = "{server.url}{contract.PATH}"\n'
        f'base_url = "{server.base_url}"\n'
        f'token_url = "{server.token_url}"\n'
        'client_id = "sitegate-test-client"\n'
        f'key_file = "{key}"\n'
        f'cert_file = "{cert}"\n'
        f"batch_size = {batch_size}\n"
        "connect_timeout_s = 2.0\n"
        "read_timeout_s = 2.0\n"  # 0.5 s failed under a loaded CI: the in-process simulator shares the GIL
    )


@contextmanager
def soap_site(tmp_path, clock, credentials, **service_options):
    """A gate on the SOAP channel (or as named) and the simulator, trusting the gate's certificate."""
    service = SimulatedService(clock=clock)
    service.presences.trust(credentials[1])
    server = SimulatorServer(service).start()
    path = tmp_path / "sitegate.toml"
    path.write_text(CONFIG_TEXT + service_section(server, credentials, **service_options))
    device = Device.open(configuration.load(path), clock)
    try:
        yield device, service
    finally:
        server.shutdown()
        server.server_close()
        device.close()


def forwarder(device, clock, failures: list | None = None) -> Forwarder:
    on_failure = failures.append if failures is not None else lambda failure: None
    return Forwarder(device.ledger, device.config, channel_for(device.config, clock), clock=clock,
                     on_failure=on_failure)  # fmt: skip


def badge(device, clock, index: int, direction: str = "IN", minutes: float = 1) -> None:
    append_registration(device.log, registration(index, direction))
    clock.advance(minutes * 60)


def states(device) -> list[tuple[int, str, str | None]]:
    return device.ledger.execute("SELECT seq, state, validity FROM delivery ORDER BY seq").fetchall()


# --- a morning ----------------------------------------------------------------------------------------------


def test_a_morning_of_badges_is_one_presence_per_worker_and_the_later_badges_stay_ours(tmp_path, clock, credentials):
    with soap_site(tmp_path, clock, credentials, batch_size=5) as (device, service):
        for index in range(4):  # four workers arrive
            badge(device, clock, index, "IN")
        for index in range(4):  # a break: out and back in
            badge(device, clock, index, "OUT")
            badge(device, clock, index, "IN")
        report = forwarder(device, clock).drain()
        assert (report.delivered, report.rejected, report.failures) == (12, 0, [])
        assert service.presences.summary() == {
            "calls": 1, "received": 4, "created": 4, "resent": 0, "refused_signatures": 0
        }  # fmt: skip
        rows = states(device)
        assert [state for _, state, _ in rows] == ["delivered"] * 12
        sent = {seq: validity for seq, _, validity in rows if not validity.startswith("NOT SENT")}
        assert set(sent) == {1, 2, 3, 4} and set(sent.values()) == {"VALIDATED"}
        # each later badge names the registration that stands for the worker's day (seq 5 is worker 0's OUT)
        assert dict((seq, validity) for seq, _, validity in rows)[5] == "NOT SENT: the day's presence is registration 1"
        references = [entry["reference"] for entry in service.presences.received]
        assert references == [f"gate-01:{seq}" for seq in (1, 2, 3, 4)]


def test_after_a_restart_the_days_first_registrations_are_read_back_from_the_log(tmp_path, clock, credentials):
    with soap_site(tmp_path, clock, credentials) as (device, service):
        badge(device, clock, 0, "IN")
        assert forwarder(device, clock).drain().delivered == 1
        badge(device, clock, 0, "OUT")
        badge(device, clock, 1, "IN")
        assert forwarder(device, clock).drain().delivered == 2  # a new client: nothing of the first in memory
        assert [entry["reference"] for entry in service.presences.received] == ["gate-01:1", "gate-01:3"]
        assert states(device)[1] == (2, "delivered", "NOT SENT: the day's presence is registration 1")


def test_the_next_day_is_a_new_presence_and_yesterdays_backlog_is_refused_by_the_service(tmp_path, clock, credentials):
    """RegistrationDate can only be today or tomorrow: a presence still queued from yesterday is refused (the
    foreman registers it through another channel, `sitegate remarks` lists it)."""
    with soap_site(tmp_path, clock, credentials) as (device, service):
        badge(device, clock, 0, "IN")
        clock.advance(24 * 3600)
        badge(device, clock, 0, "IN")
        report = forwarder(device, clock).drain()
        assert (report.delivered, report.rejected) == (1, 1)
        rows = device.ledger.execute("SELECT seq, state, last_error FROM delivery ORDER BY seq").fetchall()
        assert rows[0][:2] == (1, "rejected") and "neither today nor tomorrow" in rows[0][2]
        assert rows[1][:2] == (2, "delivered")
        [listed] = needing_action(device.db)  # what `sitegate remarks` shows the foreman
        assert listed.seq == 1 and listed.code is None and "PR-DATE: RegistrationDate 2026-11-22" in listed.text
        assert listed.action == "check the worker's data and register again through another channel"


# --- faults -------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "fault, symptom, error_class, retry_after, fragment, answer_lost",
    [
        # the simulator resets the connection once it has read the call: for all we know the answer was lost
        ("refuse", Symptom.REFUSED, Cause.SERVICE, None, "refused the connection", True),
        ("500", Symptom.SERVICE_ERROR, Cause.SERVICE, None, "service failed (soapenv:Server", False),
        ("503", Symptom.SERVICE_ERROR, Cause.SERVICE, None, "service unavailable (503)", False),
        ("503_retry_after", Symptom.SERVICE_ERROR, Cause.SERVICE, 7.0, "(503)", False),
        ("429", Symptom.SERVICE_ERROR, Cause.SERVICE, 7.0, "(429)", False),
        ("html", Symptom.PROXY_PAGE, Cause.UNKNOWN, None, "HTML page", False),
        ("malformed", Symptom.OFF_CONTRACT, Cause.SERVICE, None, "not a SOAP envelope", True),
        ("timeout", Symptom.NO_ANSWER, Cause.SERVICE, None, "did not answer in time", True),
        ("revoked_token", Symptom.CREDENTIALS, Cause.OURS, None, "refuses our signature", False),
        ("answer_reset", Symptom.REFUSED, Cause.SERVICE, None, "SOAP call", True),
        ("answer_malformed", Symptom.OFF_CONTRACT, Cause.SERVICE, None, "not a SOAP envelope", True),
        ("answer_timeout", Symptom.NO_ANSWER, Cause.SERVICE, None, "did not answer in time", True),
    ],
)
def test_each_fault_keeps_everything_and_the_resend_is_never_a_second_presence(
    tmp_path, clock, credentials, fault, symptom, error_class, retry_after, fragment, answer_lost
):
    with soap_site(tmp_path, clock, credentials) as (device, service):
        for index in range(3):
            badge(device, clock, index)
        service.set_fault(fault, seconds=2.5 if "timeout" in fault else None)  # beyond read_timeout_s
        sender = forwarder(device, clock)
        with pytest.raises(DeliveryFailure) as caught:
            sender.deliver_batch(ForwardReport())
        failure = caught.value
        assert failure.symptom == symptom and failure.cause(None) == error_class and fragment in failure.problem
        assert (failure.retry_after, failure.answer_lost) == (retry_after, answer_lost)
        state = delivery.summary(device.db, clock.wall)
        assert (state.pending, state.delivered) == (3, 0)
        service.set_fault(None)
        assert sender.drain().delivered == 3
        summary = service.presences.summary()
        assert summary["created"] == 3  # the lost answers' presences were registered once, and recognised
        assert summary["resent"] == (3 if fault.startswith("answer_") else 0)


def test_a_slow_answer_within_the_timeout_is_delivered(tmp_path, clock, credentials):
    with soap_site(tmp_path, clock, credentials) as (device, service):
        badge(device, clock, 0)
        service.set_fault("slow", seconds=0.2)
        assert forwarder(device, clock).drain().delivered == 1


def test_a_partial_success_refuses_only_the_items_the_service_refused(tmp_path, clock, credentials):
    with soap_site(tmp_path, clock, credentials) as (device, service):
        for index in range(4):
            badge(device, clock, index)
        service.set_fault("partial", count=1)
        report = forwarder(device, clock).drain()
        assert (report.delivered, report.rejected) == (2, 2)
        rejected = device.ledger.execute("SELECT seq, last_error FROM delivery WHERE state = 'rejected'").fetchall()
        assert [seq for seq, _ in rejected] == [2, 4] and "SIM-PARTIAL: simulated" in rejected[0][1]


def test_a_whole_call_refused_as_malformed_isolates_the_guilty_item(tmp_path, clock, credentials):
    with soap_site(tmp_path, clock, credentials) as (device, service):
        for index in range(3):
            badge(device, clock, index)
        service.set_fault("reject_batch", count=1)
        report = forwarder(device, clock).drain()
        assert (report.calls, report.delivered, report.rejected) == (4, 3, 0)


# --- the signature ------------------------------------------------------------------------------------------


def test_a_signature_by_another_certificate_is_refused_and_nothing_is_registered(tmp_path, clock, credentials):
    with soap_site(tmp_path, clock, credentials) as (device, service):
        badge(device, clock, 0)
        service.presences.trust(make_self_signed(tmp_path / "other", SYSTEM.now(), "someone-else")[1])
        with pytest.raises(DeliveryFailure) as caught:
            forwarder(device, clock).deliver_batch(ForwardReport())
        assert caught.value.symptom == Symptom.CREDENTIALS and not caught.value.answer_lost
        assert "wsse:FailedCheck" in caught.value.problem
        assert service.presences.summary()["refused_signatures"] == 1
        assert service.presences.summary()["created"] == 0


def test_the_online_check_is_a_signed_read_the_service_accepts_or_refuses(tmp_path, clock, credentials):
    """`config check --online` on the SOAP channel: one signed getPresenceRegistration, nothing registered; a
    certificate the service does not trust, or a service that is down, is said with the fix."""
    with soap_site(tmp_path, clock, credentials) as (device, service):
        client = SoapClient(device.config.service, device.config.device_id, clock=clock)
        assert client.check_online().startswith("signed call accepted by http://127.0.0.1:")
        assert service.presences.summary()["created"] == 0 and service.presences.summary()["calls"] == 0
        service.set_fault("503", count=1)
        with pytest.raises(DeliveryFailure) as down:
            client.check_online()
        assert down.value.symptom == Symptom.SERVICE_ERROR
        service.presences.trust(make_self_signed(tmp_path / "other", SYSTEM.now(), "someone-else")[1])
        with pytest.raises(DeliveryFailure) as refused:
            client.check_online()
        assert refused.value.symptom == Symptom.CREDENTIALS and "certificate registered with ONSS" in refused.value.fix
        assert service.presences.summary()["refused_signatures"] == 1


def signed_envelope(credentials, clock) -> etree._Element:
    presence = contract.Presence(1, registration(0).payload(), "2026-11-22T07:00:00.000000Z")
    root = contract.envelope(contract.register_request([contract.request_item(presence, "gate-01", "1Y101DRUNWB5Z")]))
    X509Signature(*credentials).secure(root, clock.now())
    return etree.fromstring(etree.tostring(root))  # as received


def test_the_simulator_accepts_our_signature_and_refuses_it_once_the_body_or_the_time_changed(credentials, clock):
    presences = SimulatedService(clock=clock).presences
    presences.trust(credentials[1])
    presences.check_signature(signed_envelope(credentials, clock))  # accepted: no exception
    tampered = signed_envelope(credentials, clock)
    tampered.find(f".//{{{contract.TYPES}}}INSS").text = "17073003384"  # another worker, after signing
    with pytest.raises(Refused, match="does not verify"):
        presences.check_signature(tampered)
    item = signed_envelope(credentials, clock).find(f".//{{{contract.PROTOCOL}}}PresenceRegistrationRequest")
    unsigned = contract.envelope(contract.register_request([etree.fromstring(etree.tostring(item))]))
    with pytest.raises(Refused, match="no wsse:Security"):
        presences.check_signature(unsigned)
    replayed = signed_envelope(credentials, clock)
    clock.advance(6 * 60)  # the timestamp lives five minutes
    with pytest.raises(Refused, match="expired"):
        presences.check_signature(replayed)


def test_a_missing_key_is_our_credentials_not_the_service(tmp_path, clock, credentials):
    with soap_site(tmp_path, clock, credentials) as (device, service):
        badge(device, clock, 0)
        missing = dataclasses.replace(device.config.service, key_file=tmp_path / "nowhere.key")
        client = SoapClient(missing, device.config.device_id, clock=clock)
        sender = Forwarder(device.ledger, device.config, client, clock=clock)
        with pytest.raises(DeliveryFailure) as caught:
            sender.deliver_batch(ForwardReport())
        assert caught.value.symptom == Symptom.CREDENTIALS and "nowhere.key" in caught.value.problem
        assert service.presences.summary()["calls"] == 0


# --- failover -----------------------------------------------------------------------------------------------


def test_rest_down_with_503_fails_over_to_soap_and_no_outage_opens(tmp_path, clock, credentials):
    with soap_site(tmp_path, clock, credentials, channel="rest", fallback="soap") as (device, service):
        for index in range(3):
            badge(device, clock, index)
        failures: list = []
        sender = forwarder(device, clock, failures)
        assert isinstance(sender.client, Failover)
        # the simulator's endpoints share one fault switch: a count of one is taken by REST's call (its token call)
        service.set_fault("503", count=1)
        report = sender.drain()
        assert (report.delivered, report.failures, failures) == (3, [], [])
        assert service.presences.summary()["created"] == 3 and service.summary()["received"] == 0


def test_a_refused_connection_fails_over_from_soap_to_rest(tmp_path, clock, credentials):
    """Nothing listens at the SOAP address: the call never went out, so REST may take it."""
    with soap_site(tmp_path, clock, credentials, channel="soap", fallback="rest") as (device, service):
        badge(device, clock, 0)
        with socket.socket() as closed:
            closed.bind(("127.0.0.1", 0))
            nobody = f"http://127.0.0.1:{closed.getsockname()[1]}{contract.PATH}"
        config = dataclasses.replace(device.config, service=dataclasses.replace(device.config.service, soap_url=nobody))
        sender = Forwarder(device.ledger, config, channel_for(config, clock), clock=clock)
        assert sender.drain().delivered == 1
        assert service.summary()["created"] == 1 and service.presences.summary()["calls"] == 0


def test_both_channels_down_fail_with_both_in_the_evidence(tmp_path, clock, credentials):
    with soap_site(tmp_path, clock, credentials, channel="rest", fallback="soap") as (device, service):
        badge(device, clock, 0)
        service.set_fault("503")
        failures: list = []
        with pytest.raises(DeliveryFailure) as caught:
            forwarder(device, clock, failures).deliver_batch(ForwardReport())
        problem = caught.value.problem
        assert problem.startswith("both channels failed (rest: token request: service unavailable (503)")
        assert "; soap: SOAP call: service unavailable (503)" in problem
        assert caught.value.symptom == Symptom.SERVICE_ERROR and failures == [caught.value]


def open_outage(device, clock):
    """Two probe rounds on the gate's real probes (its simulator on loopback) with no grace: the outage opens."""
    journal = OutageJournal(device.log, grace_s=0)
    for _ in range(2):
        summary = delivery.summary(device.db, clock.now())
        journal.observe(Prober(device.config, clock.now).round(summary, []), summary, clock.now())
        clock.advance(1)
    return outage.current(device.log)


def test_the_foreman_is_told_the_gate_tried_the_other_channel_itself(tmp_path, clock, credentials):
    """Both channels down: the signed evidence names both channels, and the guidance (`sitegate outage`, the
    page) says the gate tried the other one itself, in the foreman's language."""
    with soap_site(tmp_path, clock, credentials, channel="rest", fallback="soap") as (device, service):
        badge(device, clock, 0)
        assert forwarder(device, clock).drain().delivered == 1  # the gate has worked: an outage, not never-connected
        badge(device, clock, 1)
        service.set_fault("503")
        with pytest.raises(DeliveryFailure):
            forwarder(device, clock).deliver_batch(ForwardReport())
        ongoing = open_outage(device, clock)
        assert ongoing.state == OutageState.OPEN and ongoing.other_channel_tried == "soap"
        assert "The gate already tried the other channel (SOAP) itself: it does not work either." in (
            ongoing.what_to_do("en")
        )
        assert "Le portique a d\u00e9j\u00e0 essay\u00e9 lui-m\u00eame l'autre canal (SOAP)" in ongoing.what_to_do("fr")
        with immediate(device.db):
            delivery.note_heartbeat(device.db, format_utc(clock.now()), [])
        page = views.state(device.db, device.config, clock.now(), "nl")
        assert page.level == "outage"
        assert any("heeft zelf al het andere kanaal (SOAP) geprobeerd" in step.action for step in page.steps)


def test_a_fault_of_ours_on_both_channels_tells_what_is_left_to_try():
    """Not exempt (our credentials refused by both, say): the step "another channel" says the gate tried its other
    one, and what is left for the foreman (online, the app), before the contact centre."""
    headline, found = guidance.steps(Cause.OURS, "en", "soap")
    assert [step.action for step in found[:2]] == [
        "Call the gate's provider (technician) now.",
        "The gate already tried the other channel (SOAP) itself: it does not work either.",
    ]
    assert found[1].detail == "If you can, register the workers online or with the smartphone app."
    assert found[2].action.startswith("Call the contact centre") and "NO exemption" in headline
    assert [str(step) for step in guidance.steps(Cause.OURS, "en")[1]][1] == (
        "Register the workers through another channel. Online registration or the smartphone app."
    )


def test_a_lost_answer_is_never_told_as_the_other_channel_tried(tmp_path, clock, credentials):
    """The first channel's answer was lost: the other one was not tried (it might register the badge twice), and
    nothing tells the foreman it was."""
    with soap_site(tmp_path, clock, credentials, channel="rest", fallback="soap") as (device, service):
        badge(device, clock, 0)
        assert forwarder(device, clock).drain().delivered == 1
        badge(device, clock, 1)
        service.set_fault("answer_reset")
        with pytest.raises(DeliveryFailure) as caught:
            forwarder(device, clock).deliver_batch(ForwardReport())
        assert caught.value.answer_lost and caught.value.channels == ("rest",)
        ongoing = open_outage(device, clock)
        assert ongoing.other_channel_tried is None
        assert "tried the other channel" not in ongoing.what_to_do("en")


def test_a_batch_the_fallback_lost_goes_to_the_fallback_only(tmp_path, clock, credentials, caplog):
    """REST refused (nothing sent), SOAP took the batch and lost its answer: the resend goes to SOAP alone, never
    through REST first (were REST back, the presences would be registered through both)."""
    with soap_site(tmp_path, clock, credentials, channel="rest", fallback="soap") as (device, service):
        badge(device, clock, 0)
        with socket.socket() as closed:
            closed.bind(("127.0.0.1", 0))
            nobody = f"http://127.0.0.1:{closed.getsockname()[1]}"
        rest = dataclasses.replace(device.config.service, base_url=nobody + "/REST", token_url=nobody + "/token")
        config = dataclasses.replace(device.config, service=rest)
        sender = Forwarder(device.ledger, config, channel_for(config, clock), clock=clock)
        service.set_fault("answer_reset", count=1)
        with pytest.raises(DeliveryFailure) as caught:
            sender.deliver_batch(ForwardReport())
        assert caught.value.answer_lost
        caplog.clear()
        assert sender.drain().delivered == 1
        assert [r for r in caplog.records if r.getMessage() == "failover"] == []  # REST was not tried first
        assert service.presences.summary()["created"] == 1


def test_a_batch_the_fallback_lost_stays_with_it_after_a_restart(tmp_path, clock, credentials):
    """REST refused, SOAP took the batch and lost its answer; the gate restarts (a new forwarder and channels, the
    ledger reopened) and REST is back: the resend still goes to SOAP alone (before, the pin lived in memory and the
    first channel was tried again: the presence registered through both)."""
    with soap_site(tmp_path, clock, credentials, channel="rest", fallback="soap") as (device, service):
        badge(device, clock, 0)
        with socket.socket() as closed:
            closed.bind(("127.0.0.1", 0))
            nobody = f"http://127.0.0.1:{closed.getsockname()[1]}"
        config = device.config
        refused = dataclasses.replace(config.service, base_url=nobody + "/REST", token_url=nobody + "/token")
        down = dataclasses.replace(config, service=refused)  # REST refuses the connection: it did not get there
        service.set_fault("answer_reset", count=1)
        with pytest.raises(DeliveryFailure) as caught:
            Forwarder(device.ledger, down, channel_for(down, clock), clock=clock).deliver_batch(ForwardReport())
        assert caught.value.answer_lost and caught.value.channels == ("rest", "soap")
        device.close()
        device = Device.open(config, clock)  # the restart, REST back
        try:
            assert forwarder(device, clock).drain().delivered == 1
            assert service.summary()["received"] == 0  # REST never took it
            assert service.presences.summary()["created"] == 1 and service.presences.summary()["resent"] == 1
        finally:
            device.close()


class PowerCut(BaseException):
    """The process stops here: nothing after it runs (no except clause of ours catches it)."""


class CutDuring:
    """A channel whose call is cut by a power failure once it has gone out."""

    def deliver(self, batch, config, db):
        raise PowerCut


def test_a_batch_in_flight_through_the_fallback_at_a_power_cut_is_resent_through_it(tmp_path, clock, credentials):
    """The power goes while the fallback's call is out: after the restart (in flight → pending, counted as a lost
    answer), the batch goes to the fallback only, though the first channel answers again."""
    with soap_site(tmp_path, clock, credentials, channel="rest", fallback="soap") as (device, service):
        badge(device, clock, 0)
        service.set_fault("503", count=1)  # REST: it did not get there
        first = channel_for(device.config, clock)
        cut = Failover(first.first, ("soap", CutDuring()))
        with pytest.raises(PowerCut):
            Forwarder(device.ledger, device.config, cut, clock=clock).deliver_batch(ForwardReport())
        config = device.config
        device.close()
        device = Device.open(config, clock)
        try:
            assert delivery.recover_in_flight(device.ledger) == 1  # what the daemon does at start
            assert forwarder(device, clock).drain().delivered == 1
            assert service.summary()["received"] == 0 and service.presences.summary()["created"] == 1
        finally:
            device.close()


def test_a_lost_answer_never_moves_to_the_other_channel(tmp_path, clock, credentials):
    """SOAP first: its answer is lost (the service may hold the presences), so they are not sent over REST; the
    resend goes to SOAP again and is recognised by its client reference."""
    with soap_site(tmp_path, clock, credentials, channel="soap", fallback="rest") as (device, service):
        badge(device, clock, 0)
        service.set_fault("answer_reset", count=1)
        sender = forwarder(device, clock)
        with pytest.raises(DeliveryFailure) as caught:
            sender.deliver_batch(ForwardReport())
        assert caught.value.answer_lost and "both channels" not in caught.value.problem
        assert service.summary()["received"] == 0  # REST never saw it
        service.set_fault("503", count=1)  # were it sent to REST now, REST would fail it; SOAP takes it
        assert sender.drain().delivered == 0  # the resend is kept on SOAP, whose call took the 503
        assert sender.drain().delivered == 1
        assert service.summary()["received"] == 0
        assert service.presences.summary() | {"calls": None} == {
            "calls": None, "received": 2, "created": 1, "resent": 1, "refused_signatures": 0
        }  # fmt: skip


def test_a_rest_gate_never_loads_the_soap_stack_and_a_soap_gate_does(tmp_path, config_file, credentials):
    """zeep, lxml and xmlsec take ~30 MB: loaded by every daemon, they took an idle REST gate to 68 MB against the
    60 MB target (`make bench`, peak_rss_mb). Asked in a fresh interpreter, as the daemon starts: its modules, the
    commands, the page, then the delivery channel and the online check built from the configuration."""
    nowhere = SimpleNamespace(url="http://127.0.0.1:9", base_url="http://127.0.0.1:9", token_url="http://127.0.0.1:9/t")
    soap_config = tmp_path / "soap.toml"
    soap_config.write_text(CONFIG_TEXT + service_section(nowhere, credentials))
    program = (
        "import sys\n"
        "import sitegate.cli, sitegate.commands.run, sitegate.daemon, sitegate.doctor, sitegate.web.app\n"
        "from sitegate import config\n"
        "from sitegate.clock import SYSTEM\n"
        "from sitegate.service.channels import channel_for\n"
        "channel_for(config.load(sys.argv[1]), SYSTEM)\n"
        "print(sorted(m for m in ('zeep', 'lxml', 'xmlsec') if m in sys.modules))\n"
    )

    def loaded(path: Path) -> str:
        run = subprocess.run([sys.executable, "-c", program, str(path)], capture_output=True, text=True, timeout=60)
        assert run.returncode == 0, run.stderr[-2000:]
        return run.stdout.strip()

    assert loaded(config_file) == "[]"
    assert loaded(soap_config) == "['lxml', 'xmlsec', 'zeep']"
