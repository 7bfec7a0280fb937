"""The import direction of DESIGN.md: coordinator → federation, model only; federation → model at most; no Qt."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[2] / "pneumodesk"
ALLOWED = {
    "coordinator": {"pneumodesk", "pneumodesk.coordinator", "pneumodesk.federation", "pneumodesk.model"},
    "federation": {"pneumodesk.federation"},
}


def _imports(path: Path) -> set[str]:
    names = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            names.add(node.module)
    return names


@pytest.mark.parametrize("package", sorted(ALLOWED))
def test_packages_import_only_what_the_design_allows(package):
    offending = []
    for path in (PACKAGE / package).rglob("*.py"):
        for name in _imports(path):
            if name.startswith("PySide6") or name.startswith("Qt"):
                offending.append(f"{path.name}: {name}")
            if name.startswith("pneumodesk") and not any(
                name == allowed or name.startswith(allowed + ".") for allowed in ALLOWED[package]
                if allowed != "pneumodesk"
            ) and name != "pneumodesk":
                offending.append(f"{path.name}: {name}")
    assert offending == []
