"""The site bus's topic names, in one place: `sitegate/<site>/<device>/<what>`.

A gate publishes only under its own device level (the broker's ACL enforces it), so a topic says who sent a
message. No worker identifier ever appears in a topic: NISS and Limosa numbers stay in the signed payloads.
"""

from __future__ import annotations

from dataclasses import dataclass

ROOT = "sitegate"
RECORDS = "records"  # signed records: the gate's own, or a peer's relayed in answer to a catch-up request
CATCHUP = "catchup"  # "send me these devices' records from these seqs"
HEALTH = "health"  # retained: what `sitegate status --json` says; the last will says offline
CHECKPOINT = "checkpoint"  # retained: the gate's latest signed checkpoint, a witness of its log kept off the device
WITNESS = "witness"  # a peer's latest checkpoint as this gate holds it, sent back to that peer when it asks to catch up
FLEET_HEALTH = f"{ROOT}/+/+/{HEALTH}"


def topic(site: str, device: str, what: str) -> str:
    return f"{ROOT}/{site}/{device}/{what}"


def site_filter(site: str) -> str:
    """Every message of one site (a gate reads its peers' records, catch-up requests and health)."""
    return f"{ROOT}/{site}/+/+"


@dataclass(frozen=True)
class Topic:
    site: str
    device: str
    what: str


def parse(name: str) -> Topic | None:
    parts = name.split("/")
    if len(parts) != 4 or parts[0] != ROOT:
        return None
    return Topic(*parts[1:])
