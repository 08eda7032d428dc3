"""The installed package's import graph has no circle: every module can be read, and replaced, from the bottom up.

Every import counts, also one inside a function or under TYPE_CHECKING: a lazy import hides a circle from Python,
not from the reader.
"""

from __future__ import annotations

import ast
from pathlib import Path

import sitegate

ROOT = Path(sitegate.__file__).parent


def _module_name(path: Path, root: Path) -> str:
    parts = path.relative_to(root.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def import_graph(root: Path = ROOT) -> dict[str, set[str]]:
    """Each module of the package and the package's modules it imports."""
    modules = {_module_name(path, root): path for path in root.rglob("*.py")}
    graph: dict[str, set[str]] = {}
    for name, path in modules.items():
        package = name if path.name == "__init__.py" else name.rpartition(".")[0]
        targets = set()
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            if isinstance(node, ast.Import):
                targets.update(alias.name for alias in node.names)
            elif isinstance(node, ast.ImportFrom):
                base = node.module or ""
                if node.level:  # relative: from the module's package, one level up per extra dot
                    anchor = package.rsplit(".", node.level - 1)[0] if node.level > 1 else package
                    base = f"{anchor}.{base}" if base else anchor
                for alias in node.names:  # `from package import module` imports the module
                    targets.add(f"{base}.{alias.name}" if f"{base}.{alias.name}" in modules else base)
        graph[name] = {target for target in targets if target in modules and target != name}
    return graph


def circles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Each group of modules that import one another, round or through others (Tarjan's strongly connected parts)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    found: list[list[str]] = []

    def visit(module: str) -> None:
        index[module] = low[module] = len(index)
        stack.append(module)
        for target in sorted(graph[module]):
            if target not in index:
                visit(target)
                low[module] = min(low[module], low[target])
            elif target in stack:
                low[module] = min(low[module], index[target])
        if low[module] == index[module]:
            group = []
            while not group or group[-1] != module:
                group.append(stack.pop())
            if len(group) > 1:
                found.append(sorted(group))

    for module in sorted(graph):
        if module not in index:
            visit(module)
    return found


def test_the_installed_package_has_no_import_circle():
    graph = import_graph()
    assert "sitegate.service.presence_rest_v1" in graph["sitegate.queue.forwarder"]  # the graph sees the imports
    assert circles(graph) == []


def sample_package(tmp_path: Path, modules: dict[str, str]) -> Path:
    """A package `sitegate` of the given modules (path: source), each folder with its `__init__.py`."""
    package = tmp_path / "sitegate"
    for path, source in {"__init__.py": "", **modules}.items():
        (package / path).parent.mkdir(parents=True, exist_ok=True)
        init = (package / path).parent / "__init__.py"
        if not init.exists():
            init.write_text("")
        (package / path).write_text(source)
    return package


def test_a_circle_is_found_through_a_lazy_import(tmp_path):
    package = sample_package(
        tmp_path,
        {"config.py": "def check():\n    from sitegate.web import pins\n", "web/pins.py": "from .. import config\n",
         "status.py": "from sitegate import config\n"},
    )  # fmt: skip
    assert circles(import_graph(package)) == [["sitegate.config", "sitegate.web.pins"]]


# The floors of the house, lowest first, declared once: a module may import from its own floor and the ones below,
# never from above. A module's floor is that of the longest name here it is or lies under; every module has one.
LAYERS: list[tuple[str, set[str]]] = [
    (
        "ground: configuration, errors, logging, the clock itself, identifiers",
        {
            "sitegate",
            "sitegate.config",
            "sitegate.settings",
            "sitegate.value_checks",
            "sitegate.pins",
            "sitegate.errors",
            "sitegate.jsonlog",
            "sitegate.ownership",
            "sitegate.outfile",
            "sitegate.servers",
            "sitegate.startfailure",
            "sitegate.clock",
            "sitegate.clock.timefmt",
            "sitegate.clock.timesource",
            "sitegate.domain.identifiers",
        },
    ),  # fmt: skip
    ("the queue, the service, the reader", {"sitegate.queue", "sitegate.service", "sitegate.reader"}),
    ("the gate's domain, the clock watch, the device", {"sitegate.domain", "sitegate.clock.watch", "sitegate.device"}),
    (
        "what serves people and peers: paper, site, page, status, health, metrics, the simulator",
        {
            "sitegate.paper_fallback",
            "sitegate.site",
            "sitegate.web",
            "sitegate.page_actions",
            "sitegate.status",
            "sitegate.health",
            "sitegate.metrics",
            "sitegate.commissioning",
            "sitegate.output",
            "sitegate.simulator",
        },
    ),  # fmt: skip
    (
        "the daemon and the commands",
        {
            "sitegate.daemon",
            "sitegate.supervisor",
            "sitegate.cli",
            "sitegate.commands",
            "sitegate.demo",
            "sitegate.doctor",
            "sitegate.key_replace",
        },
    ),  # fmt: skip
]


def floor(module: str, layers: list[tuple[str, set[str]]] = LAYERS) -> int | None:
    """The floor of `module`: that of the longest declared name it is or lies under (None: not declared)."""
    best: tuple[int, int] | None = None  # (length of the name, floor)
    for number, (_, names) in enumerate(layers):
        for name in names:
            if (module == name or module.startswith(name + ".")) and (best is None or len(name) > best[0]):
                best = (len(name), number)
    return None if best is None else best[1]


def upward_imports(graph: dict[str, set[str]], layers: list[tuple[str, set[str]]] = LAYERS) -> list[str]:
    return sorted(
        f"{module} (floor {floor(module, layers)}) imports {target} (floor {floor(target, layers)})"
        for module, targets in graph.items()
        for target in targets
        if floor(target, layers) > floor(module, layers)
    )


def test_every_module_has_a_floor():
    assert [module for module in import_graph() if floor(module) is None] == []


def test_no_module_imports_from_a_floor_above_its_own():
    graph = import_graph()
    assert floor("sitegate.clock.watch") > floor("sitegate.clock") and floor("sitegate.demo.site") == len(LAYERS) - 1
    assert upward_imports(graph) == []


def test_an_upward_import_is_found(tmp_path):
    package = sample_package(
        tmp_path,
        {"demo.py": "from sitegate.site import bus\n", "site/bus.py": "def run():\n    from sitegate import demo\n"},
    )
    layers = [("ground", {"sitegate"}), ("site", {"sitegate.site"}), ("top", {"sitegate.demo"})]
    assert upward_imports(import_graph(package), layers) == [
        "sitegate.site.bus (floor 1) imports sitegate.demo (floor 2)"
    ]
