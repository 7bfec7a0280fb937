"""Reusable widgets the pages are built from: the image viewer, the worklist model, editors and panels, fields."""
