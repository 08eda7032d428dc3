"""Check 8, run in the guest on the SD card's throttled drive: `append_durable` of `make bench` (a signed, chained
registration appended durably, against one raw row committed with the same pragmas: one fsync), both warmed to the
steady state and timed in turn. Prints one JSON line: the two medians in µs.

Usage (in the guest, from tests/bench): /opt/sitegate/venv/bin/python ../vm/sd_append.py FOLDER"""

from __future__ import annotations

import json
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "bench"))

from bench_log import appender, interleaved_medians  # noqa: E402
from floor import raw_insert_floor, warm  # noqa: E402

from sitegate.queue.signing import DeviceKey  # noqa: E402

SAMPLES = 300


def main(folder: Path) -> None:
    key = DeviceKey.load_or_create(folder / "bench.key")
    operations = {"raw": raw_insert_floor(folder), "append": appender(folder / "log.db", key)}
    warm(operations["append"])
    medians = interleaved_medians(operations, SAMPLES)
    raw, append = round(medians["raw"], 1), round(medians["append"], 1)
    print(json.dumps({"raw_us": raw, "append_us": append, "samples": SAMPLES}))


if __name__ == "__main__":
    main(Path(sys.argv[1]))
