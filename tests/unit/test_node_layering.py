"""``pneumodesk.node`` stays below the GUI: it imports no Qt, no gui, client, coordinator or training module."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import pneumodesk.node

FORBIDDEN = ("PySide6", "shiboken6", "pneumodesk.gui", "pneumodesk.client", "pneumodesk.coordinator",
             "pneumodesk.training")


def test_node_modules_import_nothing_from_the_layers_above():
    root = Path(pneumodesk.node.__file__).parent
    offenders = []
    for path in root.rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            names = [a.name for a in node.names] if isinstance(node, ast.Import) else []
            if isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
                names = [node.module]
            offenders += [f"{path.name}: {n}" for n in names if n.startswith(FORBIDDEN)]
    assert offenders == []


def test_the_cli_parser_does_not_load_the_node_stack_until_an_accounts_command_runs():
    code = ("import sys, pneumodesk.cli as c; c._parser(); "
            "print(sorted(m for m in sys.modules if m.split('.')[0] in {'sqlalchemy', 'alembic', 'argon2'}))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"


def test_training_imports_nothing_from_the_node_store():
    root = Path(pneumodesk.node.__file__).parents[1] / "training"
    offenders = [f"{path.name}: {line.strip()}" for path in root.rglob("*.py")
                 for line in path.read_text(encoding="utf-8").splitlines()
                 if line.lstrip().startswith(("from pneumodesk.node", "import pneumodesk.node"))]
    assert offenders == []
    code = ("import sys, pneumodesk.training as t, pneumodesk.imaging.patient_groups as p; "
            "assert t.patient_group is p.patient_group; "
            "print(sorted(m for m in sys.modules if m.split('.')[0] in {'sqlalchemy', 'alembic', 'argon2'}))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"
