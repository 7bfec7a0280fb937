"""``pneumodesk-coordinator`` in-process: the console script delegates to the coordinator CLI; errors are sentences."""

from __future__ import annotations

import io
import json
import sys

import pytest

from pneumodesk.cli import coordinator_main

PASSWORD = "a long enough password"


@pytest.fixture
def folder(tmp_path, tiny_bundle_dir, monkeypatch):
    monkeypatch.setattr("sys.stdin", io.StringIO(PASSWORD + "\n"))
    assert coordinator_main(["init", str(tmp_path / "c"), "--password-stdin", "--model", str(tiny_bundle_dir)]) == 0
    return tmp_path / "c"


def test_init_then_operator_commands(folder, capsys, tmp_path):
    capsys.readouterr()
    assert coordinator_main(["enrol-code", str(folder)]) == 0
    assert len(json.loads(capsys.readouterr().out)["code"]) >= 20
    assert coordinator_main(["models", "list", str(folder)]) == 0
    models = json.loads(capsys.readouterr().out)
    assert [(m["version"], m["architecture"]) for m in models] == [(1, "pneumonet-tiny")]
    plan = tmp_path / "plan.json"
    plan.write_text(json.dumps({"name": "p", "architecture": "pneumonet-tiny", "input_size": 32,
                                "base_model_sha256": models[0]["sha256"], "learning_rate": 0.1, "rounds": 1,
                                "min_nodes": 1, "secure_aggregation": False}))
    assert coordinator_main(["plans", "publish", str(folder), str(plan)]) == 0
    assert len(json.loads(capsys.readouterr().out)["plan_sha256"]) == 64
    assert coordinator_main(["rounds", "status", str(folder)]) == 0
    assert json.loads(capsys.readouterr().out)[0]["state"] == "open"
    assert coordinator_main(["models", "export", str(folder), "1", str(tmp_path / "out")]) == 0
    assert (tmp_path / "out" / "model.safetensors").exists()


def test_user_errors_are_one_sentence_and_exit_1(folder, capsys, tmp_path):
    capsys.readouterr()
    assert coordinator_main(["nodes", "approve", str(folder), "node-unknown"]) == 1
    assert "There is no node 'node-unknown'." in capsys.readouterr().err
    assert coordinator_main(["nodes", "list", str(tmp_path / "nowhere")]) == 1
    assert "run `pneumodesk-coordinator init` first" in capsys.readouterr().err
    bad = tmp_path / "bad.json"
    bad.write_text('{"name": "x"}')
    assert coordinator_main(["plans", "publish", str(folder), str(bad)]) == 1
    assert "The training plan is not valid" in capsys.readouterr().err


@pytest.mark.parametrize("server_library", ["uvicorn", "fastapi"])
def test_serve_without_the_coordinator_extra_says_how_to_install_it(server_library, monkeypatch, capsys, tmp_path):
    monkeypatch.setitem(sys.modules, server_library, None)  # what a workstation install without the extra sees

    code = coordinator_main(["serve", str(tmp_path / "nowhere")])

    assert code == 1
    error = capsys.readouterr().err
    assert "pip install 'pneumodesk[coordinator]'" in error and error.count("\n") == 1
