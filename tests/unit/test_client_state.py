"""The participation engine's persisted state (crash-safe JSON) and the client's layering."""

from __future__ import annotations

import os
import stat
import subprocess
import sys

from pneumodesk.client.state import ParticipationState, RoundRecord, StateStore

SHA = "ab" * 32


def test_state_round_trips_and_files_are_private(tmp_path):
    store = StateStore(tmp_path, SHA)
    assert store.load() == ParticipationState(SHA)
    state = ParticipationState(SHA, {7: RoundRecord(7, 2, "trained", 3, 120, "cd" * 32)}, [3])

    store.save(state)
    store.save_update(7, b"update bytes")

    assert StateStore(tmp_path, SHA).load() == state
    assert store.load_update(7) == b"update bytes"
    for path in (store.path, store.update_path(7)):
        assert stat.S_IMODE(os.stat(path).st_mode) == 0o600
    store.drop_update(7)
    assert store.load_update(7) is None
    assert not list(store.folder.rglob("*.tmp"))


def test_a_damaged_state_file_starts_afresh(tmp_path):
    store = StateStore(tmp_path, SHA)
    store.folder.mkdir(parents=True)
    store.path.write_text("{not json")
    assert store.load() == ParticipationState(SHA)


def test_the_client_imports_no_qt_gui_or_coordinator_and_no_torch_until_it_trains():
    code = (
        "import sys, pneumodesk.client, pneumodesk.client.participation, pneumodesk.client.local_federation\n"
        "bad = [m for m in sys.modules if m.startswith(('PySide6', 'pneumodesk.gui', 'pneumodesk.coordinator',"
        " 'torch', 'opacus'))]\n"
        "print(bad)"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120, check=True)
    assert result.stdout.strip() == "[]"
