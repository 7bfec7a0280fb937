"""Persistence helpers both the coordinator and the hospital node use (the lowest layer: imports no other package)."""
