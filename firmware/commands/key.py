"""The device's signing key: show it, or replace a lost one with a signed record that continues the log."""

from __future__ import annotations

from sitegate import config as configuration
from sitegate.clock import SYSTEM
from sitegate.commands.device import open_device
from sitegate.commissioning import actor
from sitegate.key_replace import replace_key
from sitegate.output import WARNING, Report, pairs, progress, severity
from sitegate.queue import verify as verifier


def describe(args) -> Report:
    device = open_device(args, key_note=False)  # the key file's problem is part of the answer
    keys, problem = device.keys, device.key_problem()
    if keys is None:
        return Report({"public_key": None}, "no key yet: the daemon makes it at its first start")
    info = {
        "public_key": keys.current,
        "fingerprint": verifier.fingerprint(keys.current),
        "key_file": str(device.config.key_path),
        "key_file_problem": problem.problem if problem else None,
    }
    data = {**info, "key_changes": [change.as_dict() for change in keys.changes]}
    text = "\n".join([pairs(info.items()), *(change.text for change in keys.changes)])
    return Report(data, text, severity(problem), [f"fix: {problem.fix}"] if problem else [])


def replace(args) -> Report:
    config = configuration.load(args.config)
    with progress(None, "verifying") as bar:
        replaced = replace_key(config, SYSTEM, actor(), args.reason, bar.update)
    change = replaced.change
    lines = [
        f"new device key {verifier.fingerprint(change.new_public_key)} started: signed record {change.seq} continues "
        f"the log after record {change.last_verified_seq}, verified under the old key "
        f"{verifier.fingerprint(change.old_public_key)} (device.key was {replaced.found})",
        "next: start the daemon (`sudo systemctl start sitegate`); `sitegate verify` shows the new key as a warning "
        "naming you",
    ]
    if config.bus.enabled:
        lines.append(f"site bus: on every other gate, set this gate's key in [bus] peers to {change.new_public_key}")
    return Report({**change.as_dict(), "key_file_found": replaced.found}, "\n".join(lines), WARNING)
