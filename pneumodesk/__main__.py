"""``python -m pneumodesk`` is the same as the ``pneumodesk`` command."""

from pneumodesk.cli import main

raise SystemExit(main())
