"""Catch-up after the broker was away, on a site of N real `sitegate run` daemons and Debian's mosquitto started
from the shipped configuration (TLS, the ACL with one block per gate).

The broker is killed (SIGKILL), every gate registers BADGES_PER_GATE workers meanwhile (each record missed by
every peer), the broker comes back. A listener with a gate's read rights counts every record message published
from then on; the site has recovered when every gate's mirror holds every peer's records (every headcount right,
checked with `sitegate site --json` at the end). Figures: record messages published per missed record (1.0: each
record once, seen by all), and the seconds from the broker back to the last gate's headcount right.
"""

from __future__ import annotations

import json
import signal
import sqlite3
import string
import sys
import time
from collections import Counter
from datetime import datetime
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from simulator_process import SimulatorProcess  # noqa: E402
from site_bus import badge, client, make_site, roster_rows, simulator_service  # noqa: E402

from sitegate.clock import SYSTEM
from sitegate.site import topics  # noqa: E402
from sitegate.site.broker import SITE, LocalBroker  # noqa: E402
from sitegate.site.bus import HOLD_AFTER_CONNECT_NS  # noqa: E402

BADGES_PER_GATE = 20
QUIET_S = 12.0  # after recovery, messages still counted until none came for this long (a late answer counts)
FIRST_UID = 0x50000000


def devices(count: int) -> tuple[str, ...]:
    return tuple(f"gate-{letter}" for letter in string.ascii_lowercase[:count])


def own_seq(gate) -> int:
    with sqlite3.connect(gate.directory / "data" / "sitegate.db") as db:
        return db.execute("SELECT coalesce(max(seq), 0) FROM records").fetchone()[0]


def mirrored(gate, peer: str) -> int:
    """The first seq of `peer` not yet in `gate`'s mirror, minus one."""
    try:
        with sqlite3.connect(gate.directory / "data" / "sitegate-site.db", timeout=1) as db:
            row = db.execute("SELECT next_seq FROM peers WHERE device = ?", [peer]).fetchone()
    except sqlite3.OperationalError:
        return 0
    return row[0] - 1 if row else 0


def converged(gates: dict) -> bool:
    heads = {device: own_seq(gate) for device, gate in gates.items()}
    return all(mirrored(gate, peer) >= heads[peer] for gate in gates.values() for peer in gates if peer != gate.device)


def wait(condition, what: str, at_most_s: float) -> float:
    start = time.monotonic()
    while not condition():
        if time.monotonic() - start > at_most_s:
            raise RuntimeError(f"{what}: not within {at_most_s} s")
        time.sleep(0.05)
    return time.monotonic() - start


def catchup(directory: Path, count: int) -> tuple[float, float, int]:
    """(record messages per missed record, seconds from the broker back to every headcount right, missed)."""
    names = devices(count)
    broker = LocalBroker(directory / "broker", SYSTEM, (*names, "fleet")).start()
    simulator = SimulatorProcess()
    service = simulator_service(simulator, directory)
    gates = make_site(directory, broker, service, names, health_every_s=30.0)  # as shipped: idle gates
    roster = roster_rows(FIRST_UID, 5 * 10**16, "Catchup", BADGES_PER_GATE * count)
    try:
        for gate in gates.values():
            gate.roster(roster)
            gate.start()
        wait(lambda: converged(gates), "the site settles before the outage", 120)
        broker.kill()
        heads = {device: own_seq(gate) for device, gate in gates.items()}
        for index, gate in enumerate(gates.values()):
            gate.badge(*[badge(FIRST_UID, index * BADGES_PER_GATE + i) for i in range(BADGES_PER_GATE)])
        time.sleep(5)  # the gates' reconnect delay grows to its ceiling, as in a real outage
        broker.start()
        back = time.monotonic()
        seen: list[float] = []
        sent: Counter[tuple[str, int]] = Counter()  # (origin, seq) -> times published
        senders: dict[tuple[str, int], list[str]] = {}
        listener = client(broker, names[0], "bench-listener")

        def take(connection, userdata, message) -> None:
            seen.append(time.monotonic())
            body = json.loads(message.payload)
            sent[(body["origin"], body["record"]["seq"])] += 1
            senders.setdefault((body["origin"], body["record"]["seq"]), []).append(topics.parse(message.topic).device)

        listener.on_message = take
        listener.subscribe(topics.topic(SITE, "+", topics.RECORDS), qos=1)
        back = time.monotonic()
        wait(lambda: converged(gates), "every gate mirrors every peer", 300)
        recovery_s = time.monotonic() - back
        while not seen or time.monotonic() - max(seen) < QUIET_S:
            time.sleep(0.2)
        listener.loop_stop()
        listener.disconnect()
        # every record made while the broker was away, the badges' and any other (an outage record, a checkpoint)
        missed = sum(own_seq(gate) - heads[device] for device, gate in gates.items())
        connected = {d: datetime.fromisoformat(g.events("bus_connected")[-1]["ts"]) for d, g in gates.items()}
        first = min(connected.values())
        spread = ", ".join(f"{d} +{(t - first).total_seconds():.1f}" for d, t in sorted(connected.items()))
        print(f"{count} gates back on the bus: {spread}", file=sys.stderr)
        for gate in gates.values():  # why a record went out twice: a hold over with a peer still away
            late = gate.events("bus_hold_over")[-1:]
            if late and late[-1]["unheard"]:
                print(
                    f"{count} gates, {gate.device}: backlog sent before {late[-1]['unheard']} was back", file=sys.stderr
                )
        for gate in gates.values():
            present = gate.json("site")["present"]
            if len(present) != BADGES_PER_GATE * count:
                raise RuntimeError(f"{gate.device}: {len(present)} on site, not {BADGES_PER_GATE * count}")
        twice = sorted((key, senders[key]) for key, times in sent.items() if times > 1)
        print(f"{count} gates: {len(seen)} messages, {missed} records made, sent again: {twice[:3]}", file=sys.stderr)
        return len(seen) / missed, recovery_s, missed
    finally:
        for gate in gates.values():
            gate.stop(signal.SIGTERM)
        broker.stop()
        simulator.stop()


def bench_site_catchup(scratch: Path, result, sizes: tuple[int, ...] = (3, 6, 12)) -> list[dict]:
    figures = []
    for count in sizes:
        per_missed, recovery_s, _ = catchup(scratch / f"catchup-{count}", count)
        figures.append(
            result(
                f"site_catchup_msgs_per_missed_n{count}",
                per_missed,
                "x",
                1.5,
                "<= 1.5 at any N (reference: the target; 1.0 is each record once)",
            )
        )
        figures.append(
            result(
                f"site_recovery_s_n{count}",
                recovery_s,
                "s",
                HOLD_AFTER_CONNECT_NS / 1e9,
                "reference: the longest a gate holds its backlog after a reconnect",
            )
        )
    return figures


if __name__ == "__main__":
    import tempfile

    sizes = tuple(int(arg) for arg in sys.argv[1:]) or (3, 6, 12)
    with tempfile.TemporaryDirectory() as directory:
        print(json.dumps(bench_site_catchup(Path(directory), lambda *a: a, sizes), indent=1))
