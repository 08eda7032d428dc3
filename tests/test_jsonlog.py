"""The journal's lines: personal numbers masked where they are, hashes, signatures and card UIDs kept whole."""

from __future__ import annotations

import io
import json
import logging
import re

import pytest
from conftest import REPO, VALID_NISS, run_sitegate
from fake_mfrc522 import Card
from gate_site import ROSTER_HEADER, DaemonProcess, wait_until, write_site

from sitegate import jsonlog
from sitegate.clock import ClockReading
from sitegate.domain.gate import Gate
from sitegate.domain.roster import read_csv
from sitegate.queue import checkpoints, database
from sitegate.queue.checkpoints import Checkpoint
from sitegate.queue.records import Kind

DIGITS_UID7 = "04123456789012"  # an unknown badge whose 7-byte UID is all digits
DIGITS_UID10 = "12345678901234567890"
BIS = "85272003380"  # a BIS number (month + 20)


@pytest.fixture
def journal():
    """The daemon's own log set-up (`jsonlog.setup`), written to a buffer: the lines as journald gets them."""
    root = logging.getLogger("sitegate")
    saved = root.handlers[:], root.level, root.propagate
    stream = io.StringIO()
    jsonlog.setup(stream=stream)
    yield lambda: [json.loads(line) for line in stream.getvalue().splitlines()]
    root.handlers[:], root.level, root.propagate = saved


def test_a_checkpoint_line_stays_checkable_whatever_digits_its_hash_holds(device, journal):
    long_run = re.compile(r"\d{10,}")
    for index in range(200):  # until the head's hash holds a run of 10 digits (about one hash in five)
        last = device.log.append(Kind.CLOCK, {"event": "test", "index": index})
        if long_run.search(last.hash):
            break
    assert long_run.search(last.hash), "no hash with 10 digits in a row in 200 records"
    head = database.head_path(device.config.database_path)
    for reason in checkpoints.Reason:  # several signatures: digits in a row are likely in some
        checkpoints.take(device.log, device.ledger, device.key, head, "2026-11-22T07:00:00.000000Z", reason)
    lines = [line for line in journal() if line["event"] == "checkpoint"]
    assert len(lines) == len(checkpoints.Reason)
    for line in lines:
        taken = Checkpoint.from_dict({k: line[k] for k in ("seq", "hash", "wall_utc", "reason", "signature")})
        assert taken.hash == last.hash and taken.signed_by(device.key.public_key_hex)
        assert line["key"] == device.key.fingerprint


def test_cards_in_field_keeps_every_uid_whole(chip, config, device, clock, journal):
    from sitegate.reader.mfrc522_source import Mfrc522Source

    device.roster.replace(read_csv(REPO / "firmware" / "data" / "demo_roster.csv").workers)
    gate = Gate(device.log, device.roster, device.config, lambda: ClockReading("synced", 0), lambda: 0)
    source = Mfrc522Source(config.readers[0], clock)
    source.clock = clock
    source.prepare()
    chip.present(Card(bytes.fromhex("04A1B2C3"), sak=0x08), Card(bytes.fromhex(DIGITS_UID10), sak=0x20))
    assert gate.badge(source.poll()).outcome == "registered"
    [seen] = [line for line in journal() if line["event"] == "cards_in_field"]
    assert sorted(seen["uids"]) == sorted(["04A1B2C3", DIGITS_UID10])
    [badge] = [line for line in journal() if line["event"] == "badge"]
    assert badge["uid"] == "04A1B2C3" and badge["worker"] == "*********28"


def test_free_text_masks_personal_numbers_only(journal):
    logger = logging.getLogger("sitegate.test")
    hash_with_a_niss = "ab" + VALID_NISS[0] + "cd" * 25 + "e"
    jsonlog.event(
        logger,
        "registration_rejected",
        logging.ERROR,
        reason=f"worker {VALID_NISS[0]} / 85.07.30-033.28 / BIS {BIS} unknown",
        body='{"limosaId": "12345678901234567", "employer": "0403170701"}',
        problem=f"record 12 has hash {hash_with_a_niss}; key 1234:5678:9012:3456:7890",
        worker={"kind": "ssin", "number": VALID_NISS[1]},
        niss=VALID_NISS[2],
    )
    [line] = journal()
    assert line["reason"] == "worker *********28 / *********28 / BIS *********80 unknown"
    assert line["body"] == '{"limosaId": "***************67", "employer": "0403170701"}'  # KBO numbers are public
    assert line["problem"] == f"record 12 has hash {hash_with_a_niss}; key 1234:5678:9012:3456:7890"
    assert line["worker"] == {"kind": "ssin", "number": "*********84"} and line["niss"] == "*********04"
    assert not [n for n in VALID_NISS[:3] if n in json.dumps({**line, "problem": ""})]


def test_the_daemon_logs_an_all_digit_uid_whole_and_no_niss(tmp_path):
    config = write_site(tmp_path, workers=0)
    (tmp_path / "roster.csv").write_text(ROSTER_HEADER + f"04A1B2C3,{VALID_NISS[0]},,Peeters,Jan,0403170701,,\n")
    run_sitegate("roster", "import", str(tmp_path / "roster.csv"), config=config, check=True)
    daemon = DaemonProcess(config)
    daemon.wait_ready()
    with open(tmp_path / "badges.fifo", "w") as pipe:
        pipe.write(f"04A1B2C3\n{DIGITS_UID7}\n")
    wait_until(lambda: len([e for e in daemon.lines if e.get("event") == "badge"]) >= 2, "2 badges", 10)
    daemon.kill(15)
    badges = {e["outcome"]: e for e in daemon.lines if e.get("event") == "badge"}
    assert badges["unknown_badge"]["uid"] == DIGITS_UID7
    assert badges["registered"]["worker"] == "*********28"
    assert not [e for e in daemon.lines if VALID_NISS[0] in json.dumps(e)]
    public_key = json.loads(run_sitegate("key", "show", "--json", config=config).stdout)["public_key"]
    taken = [e for e in daemon.lines if e.get("event") == "checkpoint"]
    assert taken[0]["reason"] == "start" and taken[-1]["reason"] == "stop"
    for line in taken:
        fields = {k: line[k] for k in ("seq", "hash", "wall_utc", "reason", "signature")}
        assert Checkpoint.from_dict(fields).signed_by(public_key)
