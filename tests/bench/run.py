"""`make bench`: each figure beside a reference measured in the same run, printed and written to
.bench/results.json as [{name, value, unit, reference_value, ratio}].

Benchmarks live here and nowhere else: tests never assert on timings.
"""

from __future__ import annotations

import json
import os
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from bench_drain import bench_drain  # noqa: E402
from bench_gate import bench_gate  # noqa: E402
from bench_listing import bench_listing  # noqa: E402
from bench_log import bench_log  # noqa: E402
from bench_mirror import bench_mirror  # noqa: E402
from bench_reader import bench_reader  # noqa: E402
from bench_site import bench_site  # noqa: E402
from bench_site_catchup import bench_site_catchup  # noqa: E402
from bench_stop import bench_stop  # noqa: E402
from bench_web import bench_web  # noqa: E402
from floor import raw_insert_floor  # noqa: E402

RESULTS = Path(".bench/results.json")


def result(name: str, value: float, unit: str, reference: float, target: str) -> dict:
    return {
        "name": name,
        "value": round(value, 3),
        "unit": unit,
        "reference_value": round(reference, 3),
        "ratio": round(value / reference, 3) if reference else None,
        "target": target,
    }


def main() -> int:
    RESULTS.parent.mkdir(exist_ok=True)
    results: list[dict] = []
    with tempfile.TemporaryDirectory(dir=".bench") as scratch:
        results += bench_log(Path(scratch), Path(".bench"), raw_insert_floor, result, settle=os.sync)
        results += bench_drain(Path(scratch), result)
        os.sync()  # the earlier benchmarks' dirty pages must not be written back during this one's fsyncs
        results += bench_gate(Path(scratch).resolve(), result)
        os.sync()
        results += bench_web(Path(scratch).resolve(), result)
        results += bench_listing(result)
        results += bench_reader(result)
        results += bench_stop(Path(scratch), result)
        os.sync()
        results += bench_site(Path(scratch).resolve(), result)
        results += bench_site_catchup(Path(scratch).resolve(), result)
        results += bench_mirror(Path(scratch).resolve(), result)
    RESULTS.write_text(json.dumps(results, indent=2) + "\n")
    width = max(len(r["name"]) for r in results)
    print(f"{'name'.ljust(width)}  {'value':>12}  {'reference':>12}  {'ratio':>7}  target")
    for r in results:
        print(
            f"{r['name'].ljust(width)}  {r['value']:>9} {r['unit']:<2}  {r['reference_value']:>9} {r['unit']:<2}"
            f"  {r['ratio']:>7}  {r['target']}"
        )
    print(f"written to {RESULTS}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
