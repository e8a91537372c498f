"""Imports go only downwards: the layout in the README is the one the code has.

Each part of the package may import itself and the parts listed for it, nothing
else of the project; a function-level import counts as much as a top-level one.
The most specific prefix decides (`vision.edge.rules` before `vision.edge`).
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent

_EDGE_BASE = {"vision.core", "vision.edge.config"}
# `vision/__init__.py` (the version) and `vision/__main__.py`, matched exactly.
TOP: dict[str, set[str]] = {"vision": set(), "vision.__main__": {"vision.cli"}}
ALLOWED: dict[str, set[str]] = {
    # the core both sides import: nothing else of the project
    "vision.core": set(),
    # the edge, in the order a frame goes through it
    "vision.edge": {"vision.core"},  # the package itself, and a new module until it has its place
    "vision.edge.config": {"vision.core"},
    "vision.edge.streams": {"vision.core"},
    "vision.edge.detection": _EDGE_BASE,
    "vision.edge.tracking": _EDGE_BASE,
    "vision.edge.zones": _EDGE_BASE,
    "vision.edge.rules": _EDGE_BASE | {"vision.edge.zones"},
    "vision.edge.verify": _EDGE_BASE | {"vision.edge.detection", "vision.edge.rules"},
    "vision.edge.plates": _EDGE_BASE | {"vision.edge.detection"},
    "vision.edge.delivery": {"vision.core"},
    "vision.edge.casework": _EDGE_BASE | {"vision.edge.rules", "vision.edge.plates", "vision.edge.delivery"},
    "vision.edge.config_check": _EDGE_BASE | {"vision.edge.detection"},
    "vision.edge.daemon": {"vision.core", "vision.edge"},
    # the dispatch center: the core only, never the edge
    "vision.dispatch": {"vision.core"},
    "vision.dispatch.api": {"vision.core", "vision.dispatch"},
    # training: data sets need only the core; training also uses the edge's detectors and classifier
    "vision.training.data": {"vision.core"},
    "vision.training": {"vision.core", "vision.edge"},
    # scenarios and the demo put everything together
    "vision.scenarios": {"vision.core", "vision.edge", "vision.dispatch", "vision.training"},
    "vision.cli": {"vision"},
}
# Modules a part must not import although its prefix allows them.
FORBIDDEN: dict[str, set[str]] = {
    # routes go through the service facade, never the ORM
    "vision.dispatch.api": {"vision.dispatch.models", "vision.dispatch.db", "sqlalchemy"},
}


def _module_name(path: Path, root: Path) -> str:
    parts = list(path.relative_to(root).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def _imports(path: Path, module: str) -> list[tuple[int, str]]:
    found = []
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            found += [(node.lineno, a.name) for a in node.names]
        elif isinstance(node, ast.ImportFrom):
            if node.level:  # relative: resolve against this module's package
                package = module.split(".") if path.name == "__init__.py" else module.split(".")[:-1]
                package = package[: len(package) - node.level + 1]
                base = ".".join(package + ([node.module] if node.module else []))
            else:
                base = node.module or ""
            found.append((node.lineno, base))
            # `from vision import edge` imports vision.edge
            found += [(node.lineno, f"{base}.{a.name}") for a in node.names if base == "vision"]
    return found


def _within(name: str, prefix: str) -> bool:
    return name == prefix or name.startswith(prefix + ".")


def _rule_for(module: str, table: dict[str, set[str]]) -> str | None:
    matches = [p for p in table if _within(module, p)]
    return max(matches, key=len) if matches else None


def upward_imports(root: Path) -> list[str]:
    """Every import of the package under `root` that its part may not make, as 'file:line: a -> b'."""
    bad = []
    for path in sorted((root / "vision").rglob("*.py")):
        module = _module_name(path, root)
        part = module if module in TOP else _rule_for(module, ALLOWED)
        if part is None:
            bad.append(f"{path.relative_to(root)}: module in no part of the layout")
            continue
        allowed = TOP[part] if module in TOP else ALLOWED[part]
        forbidden = FORBIDDEN.get(_rule_for(module, FORBIDDEN) or "", set())
        for line, name in _imports(path, module):
            where = f"{path.relative_to(root)}:{line}: {module} -> {name}"
            if any(_within(name, f) for f in forbidden):
                bad.append(where)
            elif _within(name, "vision") and name != "vision":
                own = part != "vision" and _within(name, part)
                if not (own or any(_within(name, a) for a in allowed)):
                    bad.append(where)
    return bad


def test_imports_only_go_downwards():
    assert upward_imports(REPO) == []


def _copy_package(tmp_path: Path) -> Path:
    import shutil

    shutil.copytree(
        REPO / "vision", tmp_path / "vision", ignore=shutil.ignore_patterns("__pycache__", "static", "templates")
    )
    return tmp_path


@pytest.mark.parametrize(
    ("module", "planted"),
    [
        ("vision/core/cases.py", "from vision.edge.config import Site\n"),
        ("vision/edge/delivery/outbox.py", "def f():\n    from vision.edge.casework import evidence\n"),
        ("vision/edge/rules/base.py", "import vision.edge.daemon\n"),
        ("vision/dispatch/service.py", "from vision.edge.config import Site\n"),
        ("vision/dispatch/api/cases.py", "from vision.dispatch.models import Case\n"),
        ("vision/edge/streams/reader.py", "from vision import scenarios\n"),
    ],
)
def test_a_planted_upward_import_is_found(tmp_path, module, planted):
    root = _copy_package(tmp_path)
    assert upward_imports(root) == []
    path = root / module
    path.write_text(path.read_text(encoding="utf-8") + "\n" + planted, encoding="utf-8")
    found = upward_imports(root)
    assert len(found) == 1 and found[0].startswith(module), found


def test_a_module_outside_the_layout_is_found(tmp_path):
    root = _copy_package(tmp_path)
    (root / "vision" / "helpers.py").write_text("X = 1\n")
    assert upward_imports(root) == ["vision/helpers.py: module in no part of the layout"]
