"""`sitegate export`: the signed records and the public key as JSON lines, checkable anywhere."""

from __future__ import annotations

from pathlib import Path

from sitegate.commands.device import open_device
from sitegate.errors import SitegateError
from sitegate.outfile import replacing
from sitegate.output import Report, progress
from sitegate.queue import checkpoints, database
from sitegate.queue import verify as verifier


def export(args) -> Report:
    device = open_device(args)
    keys = device.keys
    if keys is None:
        raise SitegateError("no record to export yet", "start the daemon first (`sudo systemctl start sitegate`)")
    held = checkpoints.witnesses(device.db, database.head_path(device.config.database_path))
    destination = replacing(Path(args.out), device.config.data_dir, text=True)
    with progress(device.log.count(), "exporting") as bar, destination as out:
        count = verifier.write_export(
            out,
            device.log.records(),
            keys.first,  # the chain's first key: the verifier follows every key change from there
            device.config.device_id,
            bar.update,
            [w.as_dict() for w in held if not w.problem],
        )
    text = f"exported {count} records to {args.out}; check it anywhere with `sitegate verify --export {args.out}`"
    return Report({"records": count, "file": args.out}, text)
