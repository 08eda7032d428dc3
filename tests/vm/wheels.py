"""Check 9's wheels: which of sitegate's dependencies (and the `device` extra's) install on a Pi's architecture
from wheels alone, asked of the package index with `pip download --only-binary=:all: --platform …`, and which
would have to be built there (a compiler and Python's headers on the gate) or come from piwheels.

Usage: python tests/vm/wheels.py aarch64|armv7l [WHEELHOUSE]   (prints one JSON object; exit 1 when a dependency
other than the known source-only ones has no wheel). With WHEELHOUSE, the wheels are kept there, and what it already
holds (the pure-Python wheels and sources copied in by the Makefile) counts: the arm64 guest installs from it."""

from __future__ import annotations

import json
import subprocess
import sys
import tempfile
import tomllib
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent.parent
PLATFORMS = {
    # 64-bit Pi OS Bookworm: glibc 2.36
    "aarch64": ["manylinux2014_aarch64", "manylinux_2_28_aarch64", "manylinux_2_34_aarch64", "linux_aarch64"],
    # 32-bit Pi OS Bookworm (armhf): PyPI's manylinux armv7l wheels are rare; piwheels builds for it
    "armv7l": ["manylinux2014_armv7l", "manylinux_2_31_armv7l", "manylinux_2_34_armv7l", "linux_armv7l"],
}
# Source-only on PyPI for every architecture, known: C extensions the guest (and a Pi) builds with gcc and python3-dev
# (README), and a pure-Python source pip turns into a wheel without a compiler.
SOURCE_ONLY = {"spidev": "C extension", "evdev": "C extension", "sdnotify": "pure Python"}
NO_DEPS = "mfrc522>=0.0.7"  # installed with --no-deps (README: it would pull RPi.GPIO over rpi-lgpio)


def name(requirement: str) -> str:
    return requirement.split(">")[0].split("[")[0].lower()


def requirements() -> list[str]:
    project = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]
    return [*project["dependencies"], *project["optional-dependencies"]["device"], NO_DEPS]


def wheel_only(requirement: str, platforms: list[str], folder: Path, local: bool) -> tuple[bool, str]:
    """Whether `requirement` and everything it needs come as wheels for these platforms (CPython 3.11); local: the
    folder's own files count too."""
    command = [sys.executable, "-m", "pip", "download", "--quiet", "--only-binary=:all:", "--python-version", "3.11",
               "--implementation", "cp", "--dest", str(folder), requirement]  # fmt: skip
    if local:
        command[4:4] = ["--find-links", str(folder)]
    for platform in platforms:
        command[4:4] = ["--platform", platform]
    if requirement == NO_DEPS:
        command[4:4] = ["--no-deps"]
    result = subprocess.run(command, capture_output=True, text=True, timeout=600)
    said = [line for line in result.stderr.splitlines() if line.startswith("ERROR")]
    return result.returncode == 0, " ".join(said)[:300]


def main(arch: str, wheelhouse: str | None) -> int:
    with tempfile.TemporaryDirectory() as scratch:
        folder = Path(wheelhouse or scratch)
        wanted = [req for req in requirements() if not (wheelhouse and name(req) in SOURCE_ONLY)]
        outcome = {req: wheel_only(req, PLATFORMS[arch], folder, bool(wheelhouse)) for req in wanted}
        wheels = sorted(path.name for path in folder.glob("*.whl"))
    no_wheel = {req: said for req, (ok, said) in outcome.items() if not ok}
    unexpected = sorted(req for req in no_wheel if name(req) not in SOURCE_ONLY)
    known = {req: SOURCE_ONLY[name(req)] for req in no_wheel if name(req) in SOURCE_ONLY}
    print(json.dumps({"arch": arch, "source_only": known, "unexpected": {r: no_wheel[r] for r in unexpected},
                      "wheels": wheels}, indent=2))  # fmt: skip
    return 1 if arch == "aarch64" and unexpected else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1], sys.argv[2] if len(sys.argv) > 2 else None))
