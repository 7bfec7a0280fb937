"""``pneumodesk datasets add-confirmed`` and ``pneumodesk calibrate --confirmed``: the confirmed readings registered
as a dataset and the prediction model recalibrated on them, offered as a candidate, from the command line."""

from __future__ import annotations

import hashlib
import io

from pneumodesk.cli import main
from pneumodesk.node import NodeService
from pneumodesk.node.readings import Reading
from tests.builders import chest_like, write_png
from tests.node_builders import CLINICIAN, OWNER, seed_node, sign_in


def run(monkeypatch, capsys, home, *argv: str, user=OWNER) -> tuple[int, str, str]:
    monkeypatch.setattr("sys.stdin", io.StringIO(user[2] + "\n"))
    status = main(["--home", str(home), *argv, "--user", user[0], "--password-stdin"])
    out = capsys.readouterr()
    return status, out.out, out.err


def test_confirmed_cases_are_registered_and_recalibrated_from_the_command_line(tmp_path, monkeypatch, capsys):
    home = tmp_path / "home"
    seed_node(home)
    node = NodeService.open(home)
    clinician = sign_in(home, CLINICIAN[0], CLINICIAN[2])
    (tmp_path / "ward").mkdir()
    for index in range(12):
        path = write_png(tmp_path / "ward" / f"scan_{index:02d}.png", chest_like(64, 64, seed=index))
        node.readings.record(clinician, hashlib.sha256(path.read_bytes()).hexdigest(), path,
                             Reading.PNEUMONIA if index % 2 else Reading.NORMAL)
    node.close()

    early = run(monkeypatch, capsys, home, "calibrate", "--confirmed")
    added = run(monkeypatch, capsys, home, "datasets", "add-confirmed")
    calibrated = run(monkeypatch, capsys, home, "calibrate", "--confirmed")

    assert early[0] == 1 and "no confirmed cases dataset" in early[2]
    assert added[0] == 0 and "readings: 6 normal, 6 pneumonia" in added[1]
    assert calibrated[0] == 0, calibrated[2]
    assert "Recalibrated on 12 confirmed case(s)" in calibrated[1] and "threshold" in calibrated[1]
    assert "Offered as candidate model 2" in calibrated[1]
    accepted = run(monkeypatch, capsys, home, "models", "accept", "2")
    assert accepted[0] == 0 and "the prediction model is now model 2" in accepted[1]


def test_models_performance_reports_this_months_confirmed_cases(tmp_path, monkeypatch, capsys):
    home = tmp_path / "home"
    seed_node(home)
    nothing = run(monkeypatch, capsys, home, "models", "performance")
    denied = run(monkeypatch, capsys, home, "models", "performance", user=CLINICIAN)
    assert nothing[0] == 0 and "no confirmed cases yet" in nothing[1]
    assert denied[0] == 1
