"""Check 8, run in the guest on the SD card's throttled drive: `append_durable` of `make bench` (a signed, chained
registration appended durably, against one raw row committed with the same pragmas: one fsync), both warmed to the
steady state and timed in turn. Then, for each, what one call costs apart from waiting: the write requests it sends
to the drive (the drive's own counters) and the CPU time it takes (emulated: many times a Pi's). Prints one JSON line.

Usage (in the guest, from tests/bench): /opt/sitegate/venv/bin/python ../vm/sd_append.py FOLDER DEVICE"""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "bench"))

from bench_log import appender, interleaved_medians  # noqa: E402
from floor import raw_insert_floor, warm  # noqa: E402

from sitegate.queue.signing import DeviceKey  # noqa: E402

SAMPLES = 300
COUNTED = 1000  # more than the appends between two WAL checkpoints (~385), whose writes count too


def writes(device: str) -> int:
    """Write requests the drive completed (/sys/block/DEVICE/stat, the fifth field)."""
    return int(Path(f"/sys/block/{device}/stat").read_text().split()[4])


def per_call(operation, device: str) -> tuple[float, float]:
    """Write requests and CPU µs per call, over COUNTED calls."""
    before, cpu = writes(device), time.process_time_ns()
    for _ in range(COUNTED):
        operation()
    return (writes(device) - before) / COUNTED, (time.process_time_ns() - cpu) / 1000 / COUNTED


def main(folder: Path, device: str) -> None:
    key = DeviceKey.load_or_create(folder / "bench.key")
    operations = {"raw": raw_insert_floor(folder), "append": appender(folder / "log.db", key)}
    warm(operations["append"])
    medians = interleaved_medians(operations, SAMPLES)
    measured: dict = {"samples": SAMPLES}
    for name, operation in operations.items():
        requests, cpu_us = per_call(operation, device)
        measured |= {f"{name}_us": round(medians[name], 1), f"{name}_writes": requests, f"{name}_cpu_us": round(cpu_us)}
    print(json.dumps(measured))


if __name__ == "__main__":
    main(Path(sys.argv[1]), sys.argv[2])
