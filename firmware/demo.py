"""`sitegate demo`: a newcomer's first look, on any Linux machine, with no reader, printer or network."""

from __future__ import annotations

import tempfile
from importlib import resources
from pathlib import Path

from sitegate import config as configuration
from sitegate.device import Device
from sitegate.output import pairs, table
from sitegate.queue import delivery
from sitegate.queue import verify as verifier
from sitegate.registration import Registration, append_registration
from sitegate.roster import parse_csv
from sitegate.timefmt import show

DEMO_CONFIG = """
[device]
id = "demo-gate"
data_dir = "data"

[site]
works_declaration = "1Y101DRUNWB5Z"
employers = ["0403.170.701"]

[site.place_of_work.coordinates]
latitude = 50.8466
longitude = 4.3528

[site.place_of_work.address]
post_code = "1000"
municipality = "Bruxelles"
street = "Rue de la Loi"
house_number = "16"

[[reader]]
name = "gate"
source = "fifo"
fifo_path = "badges.fifo"

[service]
base_url = "http://127.0.0.1:8765/REST/presenceRegistration/v1"
token_url = "http://127.0.0.1:8765/REST/oauth/v5/token"
"""


def write_demo_config(directory: Path, text: str = DEMO_CONFIG) -> Path:
    path = directory / "sitegate.toml"
    path.write_text(text, encoding="utf-8")
    return path


def run_demo(directory: Path | None = None) -> int:
    directory = Path(directory or tempfile.mkdtemp(prefix="sitegate-demo-"))
    directory.mkdir(parents=True, exist_ok=True)
    config_file = write_demo_config(directory)
    device = Device.open(configuration.load(config_file))
    roster_text = resources.files("sitegate").joinpath("data/demo_roster.csv").read_text(encoding="utf-8")
    device.roster.replace(parse_csv(roster_text).workers)
    print(f"demo site in {directory} (config {config_file})\n")
    rows = []
    for worker in device.roster.all():
        record = append_registration(
            device.log,
            Registration(
                worker.worker,
                worker.employer,
                "IN",
                device.config.site.works_declaration,
                worker.badge_uid,
                "gate",
            ),
        )
        rows.append([record.seq, show(record.wall_utc), worker.badge_uid, worker.last_name, worker.worker.masked, "IN"])
    print(table(rows, ["seq", "time (Brussels)", "badge", "worker", "number", "dir"]))
    report = verifier.verify(device.log.records(), device.key.public_key_hex)
    export = directory / "export.jsonl"
    verifier.write_export(export, device.log.records(), device.key.public_key_hex, device.config.device_id)
    header, records = verifier.read_export(export)
    exported = verifier.verify(records, header["public_key"])
    summary = delivery.summary(device.db, device.log.clock.capture().wall_utc)
    print()
    print(
        pairs(
            [
                ("log verified", f"{report.records} records, last hash {report.last_hash[:16]}…"),
                ("export verified", f"{exported.records} records in {export}"),
                ("device key", report.public_key_fingerprint),
                ("queue", f"{summary.pending} pending, {summary.delivered} delivered"),
            ]
        )
    )
    print(f"\nnext: SITEGATE_CONFIG={config_file} sitegate queue | verify | roster list")
    return 0
