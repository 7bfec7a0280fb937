"""The federation coordinator: HTTPS API, persistence, round orchestration, aggregation and its operator CLI.

Imports only ``pneumodesk.federation`` and ``pneumodesk.model`` from the project (never gui, node or client).
"""

from .config import CoordinatorConfig, CoordinatorPaths
from .errors import CoordinatorError

__all__ = ["CoordinatorConfig", "CoordinatorError", "CoordinatorPaths"]
