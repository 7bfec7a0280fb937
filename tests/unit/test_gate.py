"""The gate itself: `make test` runs every check CI relies on, and no module is exempt from mypy."""

from __future__ import annotations

import subprocess
import tomllib
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]


def _mypy_overrides() -> list[dict[str, Any]]:
    config = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))
    overrides: list[dict[str, Any]] = config["tool"]["mypy"].get("overrides", [])
    return overrides


def test_no_project_module_is_exempt_from_mypy():
    exempt = [override["module"] for override in _mypy_overrides() if override.get("ignore_errors")]
    assert exempt == [], "modules exempt from mypy (the list only shrinks; it reached zero): " + repr(exempt)


def test_only_untyped_third_party_libraries_may_skip_type_information():
    skipped = [module for override in _mypy_overrides() if override.get("ignore_missing_imports")
               for module in override["module"]]
    assert skipped and not [module for module in skipped if module.startswith("pneumodesk")]


def test_make_test_runs_ruff_the_import_contracts_mypy_and_pytest_in_that_order():
    dry_run = subprocess.run(["make", "-n", "test"], cwd=ROOT, capture_output=True, text=True, check=True).stdout
    tools = ["ruff check", "lint-imports", "mypy", "-m pytest"]
    positions = [dry_run.find(tool) for tool in tools]
    assert -1 not in positions, dry_run
    assert positions == sorted(positions)
