"""`make test-vm`: the README's promises proven on a real Debian Bookworm with real systemd, in qemu (TCG).

Builds (once, cached in .vm/) the guest's disk from Debian packages, boots it, installs sitegate as the README says
(`sudo make install`, offline from the wheelhouse), and checks in this order: the install and a technician's
commands; the unit under its full hardening (READY, badges delivered to the simulator on the host, journald);
the watchdog after SIGSTOP and Restart=always after SIGKILL; power cuts (SIGKILL of qemu itself during a badge rush,
the disk at cache=writethrough); a reboot. Writes .vm/results.json and exits 1 when any check failed.

Usage: python tests/vm/run.py [--arch x86_64] [--rounds N]
"""

from __future__ import annotations

import argparse
import json
import random
import shutil
import subprocess
import sys
import threading
import time
import traceback
from collections.abc import Callable
from pathlib import Path

from guest import Guest, GuestError

HERE = Path(__file__).resolve().parent
REPO = HERE.parent.parent
sys.path.insert(0, str(REPO / "tests"))

from simulator_process import SimulatorProcess, client_credentials, service_section  # noqa: E402
from waiting import wait_until  # noqa: E402

from sitegate.demo import DEMO_SITE, LOOPBACK_PROBES  # noqa: E402

VM_DIR = REPO / ".vm"
GUEST_SERVICE = "127.0.0.1:8080"  # the simulator as the gate sees it: a socket proxy in the guest to the guestfwd
STATE = "/var/lib/sitegate"
HEARTBEAT_S = 5  # short, so that a stall shows in `sitegate status` before the watchdog (30 s) ends it
WATCHDOG_S = 30  # the unit's WatchdogSec=
RUSH = 150  # badges per power-cut round
RUSH_PAUSE_S = 0.02


def uid(index: int) -> str:
    return f"{0x20000000 + index:08X}"


def roster(workers: int) -> str:
    header = "badge_uid,niss,limosa,last_name,first_name,employer,valid_from,valid_until\n"
    return header + "".join(f"{uid(i)},,{10**16 + i:017d},Worker{i},Vm,0403170701,,\n" for i in range(workers))


def site_config(simulator: SimulatorProcess) -> str:
    """The gate's configuration in the guest: a FIFO reader, the simulator behind the guest's loopback proxy."""
    host = simulator.base_url.split("/")[2]
    return (
        f'\n[device]\nid = "gate-vm"\ndata_dir = "{STATE}"\n'
        + DEMO_SITE
        + '\n[[reader]]\nname = "gate"\nsource = "fifo"\nfifo_path = "/run/sitegate/badges"\n'
        + LOOPBACK_PROBES
        + service_section(
            simulator.base_url.replace(host, GUEST_SERVICE),
            simulator.token_url.replace(host, GUEST_SERVICE),
            (Path("/etc/sitegate/client.key"), Path("/etc/sitegate/client.crt")),
            read_timeout_s=20.0,
        )
        + f"\n[clock]\ntrust_system_clock = true\n\n[gate]\nheartbeat_s = {HEARTBEAT_S}\n"
    )


SIMULATOR_PROXY = """
cat > /etc/systemd/system/simulator-proxy.socket <<'UNIT'
[Socket]
ListenStream=127.0.0.1:8080
[Install]
WantedBy=sockets.target
UNIT
cat > /etc/systemd/system/simulator-proxy.service <<'UNIT'
[Service]
ExecStart=/lib/systemd/systemd-socket-proxyd 10.0.2.100:80
UNIT
systemctl daemon-reload && systemctl enable --now simulator-proxy.socket
"""

# The drop-in the manual run used: no GPIO in a VM, so the LEDs are gpiozero's mock pins.
MOCK_PINS = """
mkdir -p /etc/systemd/system/sitegate.service.d
printf '[Service]\\nEnvironment=GPIOZERO_PIN_FACTORY=mock\\n' > /etc/systemd/system/sitegate.service.d/vm.conf
systemctl daemon-reload
"""


class Checks:
    """Each check records what it measured in `results` and raises (AssertionError, GuestError) when it fails."""

    def __init__(self, arch: str, rounds: int, run_dir: Path, image_dir: Path) -> None:
        self.arch, self.rounds, self.run_dir, self.image_dir = arch, rounds, run_dir, image_dir
        self.results: dict = {
            "arch": arch,
            "systemd_ready": False,
            "watchdog_restart_s": None,
            "restart_after_kill": False,
            "power_cut_rounds": 0,
            "acknowledged": 0,
            "lost": 0,
            "verify_failed_rounds": 0,
            "redated_before_sync": None,  # check 5 (no RTC) is not done yet
            "reboot_ok": False,
            "journal_witness_ok": None,  # check 7 is not done yet
            "append_durable_sd_ratio": None,  # check 8 is not done yet
            "checks": {},
            "timings_s": {},
        }
        self.simulator = SimulatorProcess("--host", "127.0.0.1")
        self.guest: Guest | None = None
        self.boots = 0
        self.next_badge = 0

    # --- the guest's life
    def boot(self) -> float:
        self.boots += 1
        self.guest = Guest(
            self.image_dir,
            self.run_dir / "disk.img",
            self.run_dir / "project.img",
            int(self.simulator.url.rsplit(":", 1)[1].split("/")[0]),
            self.run_dir / f"console-{self.boots}.log",
        )
        return self.guest.wait_ssh()

    def close(self) -> None:
        if self.guest:
            self.guest.kill()
        self.simulator.stop()

    def tech(self, command: str, check: bool = False) -> subprocess.CompletedProcess:
        """`sitegate …` as the technician `tech` types it, from their home folder, over their own ssh login."""
        return self.guest.run(f"cd && sitegate {command}", user="tech", check=check)

    def wait(self, ready: Callable[[], object], what: str, timeout: float) -> object:
        return wait_until(ready, what, timeout, every_s=1)  # each look is an ssh command into the guest

    def service_state(self) -> tuple[str, int]:
        out = self.guest.run("systemctl show -p ActiveState -p SubState -p MainPID sitegate", check=False).stdout
        fields = dict(line.split("=", 1) for line in out.split())
        return f"{fields.get('ActiveState')}/{fields.get('SubState')}", int(fields.get("MainPID", 0))

    def wait_active(self, timeout: float = 240, not_pid: int = 0) -> int:
        """The daemon's process once the unit is active/running (READY sent), another than `not_pid`."""

        def active() -> int:
            state, pid = self.service_state()
            return pid if state == "active/running" and pid and pid != not_pid else 0

        return self.wait(active, f"sitegate active (not pid {not_pid})", timeout)

    def registered_seqs(self) -> set[int]:
        out = self.guest.run(
            f"sqlite3 -readonly {STATE}/sitegate.db \"SELECT seq FROM records WHERE kind = 'registration'\""
        ).stdout
        return {int(line) for line in out.split()}

    def pending(self) -> int:
        result = self.tech("queue --json")
        return json.loads(result.stdout)["pending"] if result.returncode == 0 else -1

    def badge(self, count: int, pause_s: float = RUSH_PAUSE_S, background: bool = False):
        """`count` new workers badge in through the FIFO reader (a root shell writing their UIDs)."""
        uids = [uid(self.next_badge + i) for i in range(count)]
        self.next_badge += count
        script = (
            f'python3 -c \'import sys,time\nwith open("/run/sitegate/badges", "w") as f:\n'
            f'    for u in sys.argv[1:]:\n        f.write(u + "\\n"); f.flush(); time.sleep({pause_s})\' '
            + " ".join(uids)
        )
        if background:
            return self.guest.stream(script)
        return self.guest.run(script, timeout=600)

    # --- 1. install as the README says
    def install(self) -> None:
        started = time.monotonic()
        self.guest.run(
            "(grep -q sitegate-vm /etc/hosts || echo '127.0.1.1 sitegate-vm' >> /etc/hosts) && "  # sudo asks
            "mkdir -p /mnt/project && mount -o ro /dev/vdb /mnt/project && cp -a /mnt/project/sitegate /root/ "
            "&& cp -a /mnt/project/wheelhouse /root/ && umount /mnt/project"
        )
        # A kept disk: the configuration make install writes (an MFRC522 reader) again, the unit stopped.
        self.guest.run(
            "systemctl stop sitegate; rm -rf /etc/sitegate/sitegate.toml /etc/systemd/system/sitegate.service.d",
            check=False,
        )
        # Offline: the guest has no network; /etc/pip.conf (in the image) says no-index, find-links /root/wheelhouse.
        result = self.guest.run("cd /root/sitegate && sudo make install", timeout=1800, check=False)
        self.results["timings_s"]["install"] = round(time.monotonic() - started, 1)
        (self.run_dir / "install.log").write_text(result.stdout + result.stderr)
        assert result.returncode == 0, f"sudo make install failed: {result.stdout[-1500:]}{result.stderr[-1500:]}"
        self.guest.run("usermod -aG sitegate-admin tech")
        self.guest.login("tech")  # a new login, so the group counts (README: "then log in again")
        status = self.tech("status")
        assert status.returncode in (0, 1, 2) and "daemon" in status.stdout, status.stdout + status.stderr
        assert "Traceback" not in status.stdout + status.stderr, status.stderr
        check = self.tech("config check")
        assert check.returncode in (0, 1, 2) and "Traceback" not in check.stdout + check.stderr, check.stderr
        doctor = self.tech("doctor")
        said = doctor.stdout + doctor.stderr
        (self.run_dir / "doctor.txt").write_text(said)
        assert "Traceback" not in said and "reader gate" in said, said[-1500:]
        [reader_step] = [line for line in said.splitlines() if line.startswith("reader gate")]
        assert "cable" not in reader_step, reader_step  # a VM is not a Pi: not the SPI cable's fault
        # lgpio's notify pipe: never in the technician's home (or the cwd), never blamed on the SPI cable.
        assert ".lgd-nfy" not in said, said[-1500:]
        litter = self.guest.run("ls -a /home/tech / | grep -c '^.lgd-nfy' || true").stdout.strip()
        assert litter == "0", f"lgpio left {litter} .lgd-nfy files in the technician's home or /"

    def unit_with_the_reader_of_a_pi(self) -> None:
        """The installed configuration (an MFRC522 reader): in a VM the unit gets as far as "not a Raspberry Pi",
        never to a `.lgd-nfy` error (the unit's working directory was /, which its user cannot write)."""
        self.guest.run("systemctl start sitegate || true; sleep 20; systemctl stop sitegate", timeout=120)
        journal = self.guest.run("journalctl -b -u sitegate -o cat --no-pager").stdout
        (self.run_dir / "journal-mfrc522.txt").write_text(journal)
        assert ".lgd-nfy" not in journal, [line for line in journal.splitlines() if "lgd-nfy" in line][:3]
        # lgpio imported, then "not a Pi": from gpiozero's LEDs, or from rpi-lgpio under the reader
        assert "unable to locate Pi revision" in journal or "only be run on a Raspberry Pi" in journal, journal[-1500:]

    # --- 2. the unit does its job under its full hardening
    def unit_runs(self, workers: int) -> None:
        self.guest.put("/etc/sitegate/sitegate.toml", site_config(self.simulator), "root:sitegate", "0640")
        key, cert = client_credentials(self.run_dir)
        self.guest.put("/etc/sitegate/client.key", key.read_text(), "root:sitegate", "0640")
        self.guest.put("/etc/sitegate/client.crt", cert.read_text(), "root:sitegate", "0640")
        self.guest.put("/tmp/roster.csv", roster(workers), "root:root", "0644")
        self.guest.run(SIMULATOR_PROXY + MOCK_PINS)
        imported = self.tech("roster import /tmp/roster.csv")
        assert imported.returncode == 0, imported.stdout + imported.stderr
        started = time.monotonic()
        self.guest.run("systemctl start sitegate", timeout=300)  # Type=notify: returns once READY=1 came
        self.wait_active(60)
        self.results["timings_s"]["start_to_ready"] = round(time.monotonic() - started, 1)
        self.results["systemd_ready"] = True
        before = self.simulator.summary()["received"]
        self.badge(20)
        self.wait(lambda: self.pending() == 0, "the queue drained to the simulator", 180)
        delivered = self.simulator.summary()["received"] - before
        assert delivered >= 20, f"the simulator received {delivered} of 20 registrations"
        lines = self.guest.run("journalctl -b -u sitegate -o cat --no-pager").stdout.splitlines()
        badges = [json.loads(line) for line in lines if line.startswith("{") and '"badge"' in line]
        assert sum(1 for b in badges if b.get("outcome") == "registered") >= 20, lines[-10:]
        status = self.tech("status --json")
        assert json.loads(status.stdout)["daemon_running"], status.stdout

    # --- 3. watchdog and Restart=always
    def watchdog(self) -> None:
        _, pid = self.service_state()
        stopped_at = float(self.guest.run(f"date +%s.%N && kill -STOP {pid}").stdout.split()[0])
        time.sleep(3 * HEARTBEAT_S)
        stalled = self.tech("status --json")
        self.results["status_during_stall"] = json.loads(stalled.stdout).get("daemon_state")
        new_pid = self.wait_active(WATCHDOG_S * 4, not_pid=pid)
        timestamps = self.guest.run(
            f"journalctl -u sitegate -o json --no-pager --since @{int(stopped_at)} | python3 -c '"
            'import json,sys\nfor l in sys.stdin:\n e=json.loads(l); m=e.get("MESSAGE","")\n'
            ' if isinstance(m,str) and ("Watchdog timeout" in m or m.startswith("Started")):'
            ' print(int(e["__REALTIME_TIMESTAMP"])/1e6, m)\''
        ).stdout.splitlines()
        fired = [float(t.split()[0]) for t in timestamps if "Watchdog timeout" in t]
        ready = [float(t.split()[0]) for t in timestamps if "Started" in t]
        assert fired, f"no watchdog timeout in the journal after SIGSTOP: {timestamps}"
        restart = max(ready) - stopped_at if ready else None
        self.results["watchdog_fired_s"] = round(fired[0] - stopped_at, 1)
        self.results["watchdog_restart_s"] = round(restart, 1) if restart else None
        assert fired[0] - stopped_at <= WATCHDOG_S + 5, f"watchdog fired {fired[0] - stopped_at:.1f} s after SIGSTOP"
        assert restart is not None, f"no new start after the watchdog: {timestamps}"
        self.guest.run(f"kill -KILL {new_pid}")
        self.wait_active(120, not_pid=new_pid)
        self.results["restart_after_kill"] = True
        assert self.results["status_during_stall"] == "stalled", stalled.stdout

    # --- 4. power cuts
    def power_cuts(self, rng: random.Random) -> None:
        acknowledged: set[int] = set()
        for round_number in range(self.rounds):
            self.wait_active(300)
            journal = self.guest.stream("journalctl -u sitegate -o cat -f -n 0")
            acks: list[int] = []
            reader = threading.Thread(target=read_acks, args=(journal, acks), daemon=True)
            reader.start()
            time.sleep(2)  # journalctl is following before the first badge
            rush = self.badge(RUSH, background=True)
            target = rng.randint(5, RUSH // 2)
            self.wait(lambda acks=acks, target=target: len(acks) >= target, f"{target} acknowledgements", 300)
            time.sleep(rng.uniform(0, 1.5))
            self.guest.kill()  # the power goes
            seen = set(acks)
            for process in (journal, rush):
                process.kill()
                process.wait(10)
            acknowledged |= seen
            self.boot()
            self.wait_active(300)
            stored = self.registered_seqs()
            lost = sorted(seen - stored)
            verify = self.tech("verify")
            self.results["power_cut_rounds"] = round_number + 1
            self.results["acknowledged"] = len(acknowledged)
            self.results["lost"] += len(lost)
            if verify.returncode != 0:
                self.results["verify_failed_rounds"] += 1
                (self.run_dir / f"verify-round-{round_number}.txt").write_text(verify.stdout + verify.stderr)
            self.wait(lambda: self.pending() == 0, "the queue drained after the power cut", 300)
            print(f"  power cut {round_number + 1}/{self.rounds}: {len(seen)} acknowledged, {len(lost)} lost, "
                  f"verify {'ok' if verify.returncode == 0 else 'FAILED'}", flush=True)  # fmt: skip
        summary = self.simulator.summary()
        self.results["service_resent"] = summary["resent"]
        assert self.results["lost"] == 0, f"{self.results['lost']} acknowledged registrations lost"
        assert self.results["verify_failed_rounds"] == 0, "sitegate verify failed after a power cut"
        assert summary["resent"] <= self.rounds * 200, summary  # at most the batch in flight per cut

    # --- 6. reboot
    def reboot(self) -> None:
        self.guest.run("systemctl is-enabled sitegate")
        self.badge(10)
        _, pid = self.service_state()
        boot_id = self.guest.run("cat /proc/sys/kernel/random/boot_id").stdout
        started = time.monotonic()
        try:
            self.guest.run("systemctl reboot", check=False, timeout=60)
        except subprocess.TimeoutExpired:
            pass  # the login went with the guest's sshd
        self.guest.forget_logins()
        self.wait(lambda: self.guest.boot_id() not in ("", boot_id), "the guest came back from its reboot", 600)
        self.guest.wait_ssh()
        self.wait_active(300, not_pid=pid)
        self.results["timings_s"]["reboot_to_active"] = round(time.monotonic() - started, 1)
        self.wait(lambda: self.pending() == 0, "the queue drained after the reboot", 300)
        self.results["reboot_ok"] = True


def read_acks(journal: subprocess.Popen, acks: list[int]) -> None:
    """The acknowledgements the host saw: each "registered" JSON line journald passed on before the power went."""
    for line in journal.stdout:
        if line.startswith("{") and '"badge"' in line:
            try:
                entry = json.loads(line)
            except ValueError:
                continue
            if entry.get("event") == "badge" and entry.get("outcome") == "registered":
                acks.append(entry["seq"])


def ensure_image(arch: str) -> Path:
    """The cached image, rebuilt when the build script changed (its text is the cache's key)."""
    image_dir = VM_DIR / arch
    key = (HERE / "build_image.sh").read_bytes()
    stamp = image_dir / "built-with.sh"
    if not (image_dir / "base.img").exists() or not stamp.exists() or stamp.read_bytes() != key:
        started = time.monotonic()
        subprocess.run([str(HERE / "build_image.sh"), arch, str(image_dir)], check=True)
        stamp.write_bytes(key)
        print(f"image built in {time.monotonic() - started:.0f} s", flush=True)
    return image_dir


def project_disk(run_dir: Path) -> Path:
    """The project as the repository has it (tracked and new files, no .venv) and the wheelhouses, on a disk."""
    staging = run_dir / "project"
    shutil.rmtree(staging, ignore_errors=True)
    files = subprocess.run(
        ["git", "ls-files", "-co", "--exclude-standard"], cwd=REPO, capture_output=True, text=True, check=True
    ).stdout.split()
    for name in files:
        source = REPO / name
        if source.is_file():
            target = staging / "sitegate" / name
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(source, target)
    wheels = staging / "wheelhouse"
    wheels.mkdir(parents=True)
    for folder in (REPO / ".wheelhouse", VM_DIR / "device-wheelhouse"):
        for wheel in folder.iterdir():
            if wheel.suffix in (".whl", ".gz"):
                shutil.copy2(wheel, wheels / wheel.name)
    disk = run_dir / "project.img"
    subprocess.run(["mkfs.ext4", "-q", "-F", "-d", str(staging), str(disk), "256M"], check=True)
    shutil.rmtree(staging)
    return disk


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--arch", default="x86_64", choices=["x86_64"])
    parser.add_argument("--rounds", type=int, default=20)
    parser.add_argument(
        "--keep-disk",
        action="store_true",
        help="reuse the last run's guest disk: `make install` then upgrades an installed gate (a quicker check of a "
        "change; the fresh install is the default)",
    )
    args = parser.parse_args()
    began = time.monotonic()
    image_dir = ensure_image(args.arch)
    run_dir = VM_DIR / args.arch / "run"
    kept = args.keep_disk and (run_dir / "disk.img").exists()
    if not kept:
        shutil.rmtree(run_dir, ignore_errors=True)
        run_dir.mkdir(parents=True)
        subprocess.run(["cp", "--sparse=always", str(image_dir / "base.img"), str(run_dir / "disk.img")], check=True)
    project_disk(run_dir)
    checks = Checks(args.arch, args.rounds, run_dir, image_dir)
    checks.results["fresh_install"] = not kept
    rng = random.Random(19)
    failed = []
    try:
        checks.results["timings_s"]["first_boot_to_ssh"] = round(checks.boot(), 1)
        steps = [
            ("install", checks.install),
            ("unit_with_mfrc522", checks.unit_with_the_reader_of_a_pi),
            ("unit_runs", lambda: checks.unit_runs(RUSH * args.rounds + 100)),
            ("watchdog", checks.watchdog),
            ("power_cuts", lambda: checks.power_cuts(rng)),
            ("reboot", checks.reboot),
        ]
        for name, step in steps:
            started = time.monotonic()
            print(f"{name} …", flush=True)
            try:
                step()
                checks.results["checks"][name] = "pass"
            except (AssertionError, GuestError, subprocess.TimeoutExpired) as error:
                failed.append(name)
                checks.results["checks"][name] = f"FAIL: {error}"[:2000]
                traceback.print_exc()
                if name in ("install", "unit_runs"):
                    break  # the next checks need these
            checks.results["timings_s"][name] = round(time.monotonic() - started, 1)
            print(f"{name}: {checks.results['checks'][name][:300]} ({checks.results['timings_s'][name]} s)", flush=True)
    finally:
        checks.close()
        checks.results["timings_s"]["total"] = round(time.monotonic() - began, 1)
        (VM_DIR / "results.json").write_text(json.dumps(checks.results, indent=2) + "\n")
    print(json.dumps({k: v for k, v in checks.results.items() if k != "checks"}, indent=2))
    if failed:
        print(f"FAILED: {', '.join(failed)}", file=sys.stderr)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
