"""What the code sends a reader to is in the repository: a note naming a document the repository does not hold
leaves the reader with nothing (the design notes and the service's procedures live outside it)."""

from __future__ import annotations

import re

from conftest import REPO

CODE = ("firmware", "queue", "reader", "paper_fallback", "systemd", "tests")
DOCUMENT = re.compile(r"(?<![\w./-])([\w./-]+\.md)\b")


def test_every_document_the_code_names_is_in_the_repository():
    files = [path for folder in CODE for path in (REPO / folder).rglob("*") if path.is_file()]
    files += [REPO / "Makefile", REPO / "pyproject.toml"]
    named = {
        (path.relative_to(REPO).as_posix(), name)
        for path in files
        if path.suffix not in {".ttf", ".png", ".ico", ".pyc"}
        for name in DOCUMENT.findall(path.read_text(encoding="utf-8", errors="replace"))
    }
    missing = sorted((where, name) for where, name in named if not (REPO / name).exists())
    assert missing == []
