"""`sitegate run` with one MFRC522 reader on the fake chip (no card present), for the idle CPU benchmark."""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from fake_mfrc522 import FakeChip, install  # noqa: E402

install(FakeChip())

from sitegate.cli import main  # noqa: E402

sys.exit(main(["run"]))
