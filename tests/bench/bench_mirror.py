"""The mirror's size on an SD card: a peer with WORKERS workers (IN in the morning, OUT in the evening) for DAYS
days, mirrored by one gate that prunes as the bus does (beyond the 48 h the decisions read) and by one that never
prunes (what main did before issue 23). Figures: rows and bytes kept, beside the never-pruned mirror's."""

from __future__ import annotations

import sys
from datetime import UTC, datetime
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from conftest import CONFIG_TEXT, registration  # noqa: E402

from sitegate import config as configuration  # noqa: E402
from sitegate.clock import ManualClock  # noqa: E402
from sitegate.device import Device  # noqa: E402
from sitegate.domain.registration import append_registration  # noqa: E402
from sitegate.site.bus import MIRROR_KEEP  # noqa: E402
from sitegate.site.mirror import Mirror  # noqa: E402
from sitegate.site.mirror import connect as connect_mirror  # noqa: E402

WORKERS = 150
DAYS = 7


def mirror_sizes(directory: Path) -> tuple[tuple[int, int], tuple[int, int]]:
    """((rows, bytes) kept with pruning, (rows, bytes) without), after DAYS days of WORKERS workers."""
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / "sitegate.toml"
    path.write_text(CONFIG_TEXT.replace('id = "gate-01"', 'id = "gate-b"').replace('"data"', f'"{directory}/b"'))
    clock = ManualClock(datetime(2026, 11, 2, 6, 0, tzinfo=UTC))
    peer = Device.open(configuration.load(path), clock)
    peers = {"gate-b": peer.key.public_key_hex}
    pruned = Mirror(connect_mirror(directory / "pruned.db"), "gate-01", peers)
    kept_all = Mirror(connect_mirror(directory / "kept.db"), "gate-01", peers)
    try:
        for _ in range(DAYS):
            for direction, hours in (("IN", 0), ("OUT", 9)):
                clock.advance(hours * 3600)
                for index in range(WORKERS):
                    clock.advance(1)
                    record = append_registration(peer.log, registration(index, direction))
                    pruned.accept("gate-b", record, clock.now())
                    kept_all.accept("gate-b", record, clock.now())
            clock.advance(15 * 3600 - 2 * WORKERS)
            pruned.prune(clock.now() - MIRROR_KEEP)
        pruned.db.execute("VACUUM")
        kept_all.db.execute("VACUUM")
        return pruned.size(), kept_all.size()
    finally:
        pruned.db.close()
        kept_all.db.close()
        peer.close()


def bench_mirror(scratch: Path, result) -> list[dict]:
    (rows, size), (all_rows, all_size) = mirror_sizes(scratch / "mirror")
    days = f"{WORKERS} workers, {DAYS} days"
    return [
        result("site_mirror_rows_kept", rows, "rows", all_rows, f"{days}; reference: never pruned"),
        result("site_mirror_bytes_kept", size / 1024, "KiB", all_size / 1024, f"{days}; reference: never pruned"),
    ]


if __name__ == "__main__":
    import json
    import tempfile

    with tempfile.TemporaryDirectory() as directory:
        print(json.dumps(bench_mirror(Path(directory), lambda *a: a), indent=1))
