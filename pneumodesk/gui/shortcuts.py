"""Every command of the prediction workspace with its keyboard shortcut, declared once.

The main window builds its actions from this table and the help dialog lists it, so the two cannot drift apart.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Command:
    id: str
    text: str
    keys: tuple[str, ...]  # QKeySequence strings; the first is the one shown in menus
    group: str


COMMANDS: tuple[Command, ...] = (
    Command("open_files", "Open X-ray files…", ("Ctrl+O",), "Files"),
    Command("open_folder", "Open folder…", ("Ctrl+Shift+O",), "Files"),
    Command("cancel_batch", "Cancel the running batch", ("Esc",), "Files"),
    Command("export_pdf", "Export report of this image (PDF)…", ("Ctrl+P",), "Files"),
    Command("export_csv", "Export worklist (CSV)…", ("Ctrl+E",), "Files"),
    Command("export_worklist_pdf", "Export worklist report with thumbnails (PDF)…", ("Ctrl+Shift+P",), "Files"),
    Command("quit", "Quit", ("Ctrl+Q",), "Files"),
    Command("next_image", "Next image", ("J", "PgDown"), "Worklist"),
    Command("previous_image", "Previous image", ("K", "PgUp"), "Worklist"),
    Command("agree", "Agree with the model", ("A",), "Worklist"),
    Command("disagree", "Disagree with the model", ("D",), "Worklist"),
    Command("clear_verdict", "Clear my verdict", ("C",), "Worklist"),
    Command("reading_normal", "My reading: normal", ("N",), "Worklist"),
    Command("reading_pneumonia", "My reading: pneumonia", ("P",), "Worklist"),
    Command("reading_unsure", "My reading: unsure (never a label)", ("U",), "Worklist"),
    Command("filter_all", "Show all images", ("Alt+1",), "Worklist"),
    Command("filter_positives", "Show positives only", ("Alt+2",), "Worklist"),
    Command("filter_errors", "Show errors only", ("Alt+3",), "Worklist"),
    Command("toggle_overlay", "Show or hide the heat map", ("H",), "Viewer"),
    Command("zoom_in", "Zoom in", ("+", "="), "Viewer"),
    Command("zoom_out", "Zoom out", ("-",), "Viewer"),
    Command("fit", "Fit to view", ("F",), "Viewer"),
    Command("invert", "Invert grey levels", ("I",), "Viewer"),
    Command("rotate", "Rotate 90° clockwise", ("R",), "Viewer"),
    Command("flip_horizontal", "Flip left-right", ("X",), "Viewer"),
    Command("flip_vertical", "Flip top-bottom", ("Y",), "Viewer"),
    Command("reset_view", "Reset the view", ("0",), "Viewer"),
    Command("lock_screen", "Lock the screen", ("Ctrl+L",), "Account"),
    Command("change_password", "Change my password…", (), "Account"),
    Command("model_card", "Model card…", ("F2",), "Help"),
    Command("shortcuts", "Keyboard shortcuts…", ("F1",), "Help"),
)
