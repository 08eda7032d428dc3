"""A Debian Bookworm guest under qemu (TCG), driven from the host over ssh on 127.0.0.1, as a technician would.

The guest's only network is qemu's user mode with restrict=on: it reaches nothing outside; ssh comes in through a
hostfwd bound to 127.0.0.1 and the guest reaches the host's service simulator through a guestfwd whose other end is
tests/vm/relay.py, connected to 127.0.0.1 only."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

HERE = Path(__file__).resolve().parent
SERVICE_ADDRESS = "10.0.2.100"  # the guest's view of the host's simulator (guestfwd)
SERVICE_PORT = 80
NTP_ADDRESS = "10.0.2.101"  # the guest's view of the host's NTP server (guestfwd, NTP carried over TCP)
NTP_PORT = 123
# The SD card's disk (check 8): an A1 card's floor (SD Association: at least 500 random 4 KiB writes a second) and a
# class 10 card's sequential floor (10 MB/s), as qemu throttling limits on the guest's third drive.
SD_WRITE_IOPS = 500
SD_WRITE_BPS = 10 * 1000 * 1000
# Per architecture: qemu's emulator, machine and CPU (TCG), and the kernel's console. x86_64: -cpu max (under TCG's
# default CPU a wheel's native code died with SIGILL); arm64: a Pi 4's core on qemu's generic board, with a
# virtio RNG (sshd's keys at boot: a cortex-a72 has no RNDR instruction).
MACHINES = {
    "x86_64": (["qemu-system-x86_64", "-cpu", "max"], "ttyS0"),
    "arm64": (["qemu-system-aarch64", "-M", "virt", "-cpu", "cortex-a72", "-device", "virtio-rng-pci"], "ttyAMA0"),
}


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


class GuestError(AssertionError):
    """The guest did not do what the check needed (boot, ssh, a command): the check fails with the guest's words."""


class Guest:
    """One qemu process booting the cached kernel and the run's disk; `kill()` is a power cut (SIGKILL to qemu)."""

    def __init__(
        self,
        image_dir: Path,
        disks: tuple[Path, Path, Path],
        ports: tuple[int, int],
        console: Path,
        clock_behind_s: int = 0,
        arch: str = "x86_64",
    ) -> None:
        """disks: the guest's own, the project's (read-only), the SD card's (throttled); ports: the host's simulator
        and NTP server on 127.0.0.1; clock_behind_s: the guest's clock starts that far behind (a Pi without RTC);
        arch: a key of MACHINES."""
        self.key = image_dir / "id_ed25519"
        self.ssh_port = free_port()
        disk, project_disk, sd_disk = disks
        simulator_port, ntp_port = ports
        relay = f"{sys.executable} {HERE / 'relay.py'} {simulator_port}"
        ntp_relay = f"{sys.executable} {HERE / 'udp_over_tcp.py'} host {ntp_port}"
        started = datetime.now(UTC) - timedelta(seconds=clock_behind_s)
        machine, console_device = MACHINES[arch]
        command = [
            *machine,
            "-accel", "tcg", "-m", "1024", "-smp", "2",
            "-display", "none", "-monitor", "none",
            "-serial", f"file:{console}",
            "-kernel", str(image_dir / "vmlinuz"), "-initrd", str(image_dir / "initrd.img"),
            "-append", f"console={console_device} root=/dev/vda rw",
            # writethrough: a write the guest has flushed (fsync) is in the host's file when qemu is killed.
            "-drive", f"file={disk},format=raw,if=virtio,cache=writethrough",
            "-drive", f"file={project_disk},format=raw,if=virtio,readonly=on",
            "-drive", f"file={sd_disk},format=raw,if=virtio,cache=writethrough,"
            f"throttling.iops-write={SD_WRITE_IOPS},throttling.bps-write={SD_WRITE_BPS}",
            "-rtc", f"base={started:%Y-%m-%dT%H:%M:%S}",
            "-nic",
            f"user,model=virtio-net-pci,restrict=on,hostfwd=tcp:127.0.0.1:{self.ssh_port}-:22,"
            f"guestfwd=tcp:{SERVICE_ADDRESS}:{SERVICE_PORT}-cmd:{relay},"
            f"guestfwd=tcp:{NTP_ADDRESS}:{NTP_PORT}-cmd:{ntp_relay}",
        ]  # fmt: skip
        self.console = console
        self.control_dir = console.parent
        self.process = subprocess.Popen(
            command, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, start_new_session=True
        )

    def ssh_command(self, user: str = "root") -> list[str]:
        return [
            "ssh", "-q", "-i", str(self.key), "-p", str(self.ssh_port),
            "-o", "StrictHostKeyChecking=no", "-o", "UserKnownHostsFile=/dev/null", "-o", "BatchMode=yes",
            "-o", "ConnectTimeout=10", "-o", "ServerAliveInterval=5", "-o", "ServerAliveCountMax=6",
            # One login per user and boot, shared by every command (a login costs seconds under emulation).
            "-o", "ControlMaster=auto", "-o", f"ControlPath={self.control_dir}/%r-%p",
            f"{user}@127.0.0.1",
        ]  # fmt: skip

    def run(
        self, script: str, user: str = "root", timeout: float = 300, check: bool = True
    ) -> subprocess.CompletedProcess:
        """A shell script run in the guest as `user` (a login over ssh); check=True fails on a non-zero exit."""
        result = subprocess.run(
            [*self.ssh_command(user), script], capture_output=True, text=True, timeout=timeout, stdin=subprocess.DEVNULL
        )
        if check and result.returncode != 0:
            said = result.stdout[-1500:] + result.stderr[-1500:]
            raise GuestError(f"{script[:200]!r} as {user} exited {result.returncode}: {said}")
        return result

    def stream(self, script: str, user: str = "root") -> subprocess.Popen:
        """A long-running guest command whose output the host reads line by line (journalctl -f)."""
        return subprocess.Popen(
            [*self.ssh_command(user), script], stdout=subprocess.PIPE, stderr=subprocess.DEVNULL,
            stdin=subprocess.DEVNULL, text=True, start_new_session=True,
        )  # fmt: skip

    def wait_ssh(self, timeout: float = 300) -> float:
        """Seconds until a login answers (boot, systemd, sshd)."""
        started = time.monotonic()
        while time.monotonic() - started < timeout:
            if self.process.poll() is not None:
                raise GuestError(f"qemu exited {self.process.returncode}: {self.process.stderr.read()[-1500:]}")
            try:
                if self.run("true", timeout=30, check=False).returncode == 0:
                    for user in ("root", "tech"):
                        self.login(user)
                    return time.monotonic() - started
            except (subprocess.TimeoutExpired, subprocess.CalledProcessError):
                pass  # sshd not answering yet, or too slowly for one login (a loaded machine): again
            time.sleep(2)
        raise GuestError(f"no ssh login within {timeout} s; console: {self.console_tail()}")

    def login(self, user: str) -> None:
        """A fresh shared login for `user` (in the background, -f, until qemu goes), replacing the previous one."""
        control = self.control_dir / f"{user}-{self.ssh_port}"
        if control.exists():
            subprocess.run([*self.ssh_command(user)[:-1], "-O", "exit", f"{user}@127.0.0.1"], capture_output=True)
            control.unlink(missing_ok=True)
        command = self.ssh_command(user)
        command[1:1] = ["-M", "-N", "-f"]
        subprocess.run(command, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, timeout=60, check=True)

    def boot_id(self) -> str:
        """The guest's boot id, by a login of its own (not the shared one, which a reboot leaves hanging); "" when
        no login answers yet."""
        command = ["ControlPath=none" if arg.startswith("ControlPath=") else arg for arg in self.ssh_command()]
        try:
            result = subprocess.run(
                [*command, "cat /proc/sys/kernel/random/boot_id"], capture_output=True, text=True, timeout=60
            )
        except subprocess.TimeoutExpired:
            return ""
        return result.stdout if result.returncode == 0 else ""

    def forget_logins(self) -> None:
        """After a reboot: the shared logins died with the guest's sshd."""
        for control in self.control_dir.glob(f"*-{self.ssh_port}"):
            control.unlink(missing_ok=True)

    def put(self, path: str, text: str, owner: str, mode: str) -> None:
        """A file written in the guest by root, with its owner (user:group) and mode."""
        subprocess.run(
            [*self.ssh_command(), f"cat > {path} && chown {owner} {path} && chmod {mode} {path}"],
            input=text, capture_output=True, text=True, timeout=120, check=True,
        )  # fmt: skip

    def console_tail(self) -> str:
        try:
            return self.console.read_text(errors="replace")[-1500:]
        except OSError:
            return "(no console output)"

    def kill(self) -> None:
        """The power goes: SIGKILL to qemu (and the relays it started)."""
        if self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGKILL)
        self.process.wait(30)

    def wait_exit(self, timeout: float) -> None:
        self.process.wait(timeout)
