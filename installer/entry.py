"""The frozen app's entry script: both executables (the console ``pneumodesk`` CLI and the windowed desktop app) run
it; with no command it opens the desktop window, as ``pneumodesk`` does in a development install."""

from pneumodesk.cli import main

raise SystemExit(main())
