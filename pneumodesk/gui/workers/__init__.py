"""Everything slow, off the GUI thread: QThread workers, their start-up helper and the GUI-side loaders."""
