"""One name for one thing (issue 21 §5): no two classes of the product share a name (there were three `Verdict`,
two `State`, two `Registration`), and the states every screen shows are enums defined once."""

from __future__ import annotations

import ast
from collections import defaultdict
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
PRODUCT = ("firmware", "reader", "queue", "paper_fallback")


def classes_by_name(paths: list[Path]) -> dict[str, list[str]]:
    found = defaultdict(list)
    for path in paths:
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            if isinstance(node, ast.ClassDef):
                found[node.name].append(f"{path.parent.name}/{path.name}:{node.lineno}")
    return found


def test_the_finder_sees_a_shared_name(tmp_path):
    (tmp_path / "a.py").write_text("class Verdict:\n    pass\n")
    (tmp_path / "b.py").write_text("def f():\n    class Verdict:\n        pass\n")
    assert len(classes_by_name([tmp_path / "a.py", tmp_path / "b.py"])["Verdict"]) == 2


def test_no_two_classes_share_a_name():
    paths = sorted(p for folder in PRODUCT for p in (REPO / folder).rglob("*.py"))
    shared = {name: where for name, where in classes_by_name(paths).items() if len(where) > 1}
    assert shared == {}, "rename one: a name that says what it is"
