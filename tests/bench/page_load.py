"""A phone loading the signed-in state page again and again (its own process, so it never competes with the
gate for the benchmark process's GIL). argv: URL PIN COUNT (0: until stdin closes). Prints the load times (ms)."""

from __future__ import annotations

import json
import sys
import threading
import time

import requests


def main() -> int:
    url, pin, count = sys.argv[1], sys.argv[2], int(sys.argv[3])
    http = requests.Session()
    http.trust_env = False
    form = http.get(f"{url}/login", timeout=10)
    token = form.text.split('name="token" value="')[1].split('"')[0]
    signed = http.post(f"{url}/login", data={"pin": pin, "token": token}, headers={"Origin": url}, timeout=10)
    assert "state-line" in signed.text, signed.text[:500]
    done = threading.Event()
    if not count:
        threading.Thread(target=lambda: (sys.stdin.read(), done.set()), daemon=True).start()
    samples: list[float] = []
    while not done.is_set() and (not count or len(samples) < count):
        start = time.perf_counter_ns()
        page = http.get(f"{url}/", timeout=10)
        samples.append((time.perf_counter_ns() - start) / 1e6)
        assert page.status_code == 200 and "state-line" in page.text, page.status_code
    print(json.dumps(samples), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
