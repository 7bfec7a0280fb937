"""The main window's pages, one per sidebar entry; each takes the signed-in session through ``SessionPage``."""
