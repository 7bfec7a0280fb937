"""What import-linter cannot see: which heavy libraries a command actually loads at run time (pyproject holds the
import contracts)."""

from __future__ import annotations

import subprocess
import sys


def test_the_cli_parser_does_not_load_the_node_stack_until_an_accounts_command_runs():
    code = ("import sys, pneumodesk.cli as c; c._parser(); "
            "print(sorted(m for m in sys.modules if m.split('.')[0] in {'sqlalchemy', 'alembic', 'argon2'}))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"


def test_training_loads_no_database_library():
    code = ("import sys, pneumodesk.training as t, pneumodesk.imaging.patient_groups as p; "
            "assert t.patient_group is p.patient_group; "
            "print(sorted(m for m in sys.modules if m.split('.')[0] in {'sqlalchemy', 'alembic', 'argon2'}))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"
