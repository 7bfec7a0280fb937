"""Print the runtime requirements from pyproject.toml, one a line, without torch (the build installs a CPU wheel).

The workstation bundle is built from exactly these: no extras (no dev tools, no coordinator server).
"""

from __future__ import annotations

import re
import sys
import tomllib
from pathlib import Path


def runtime_requirements(pyproject: Path) -> list[str]:
    dependencies = tomllib.loads(pyproject.read_text(encoding="utf-8"))["project"]["dependencies"]
    return [line for line in dependencies if not re.match(r"torch\b", line)]


if __name__ == "__main__":
    root = Path(sys.argv[1]) if len(sys.argv) > 1 else Path(__file__).resolve().parents[1]
    print("\n".join(runtime_requirements(root / "pyproject.toml")))
