"""``pneumodesk datasets add-confirmed`` and ``pneumodesk calibrate --confirmed``: the confirmed readings registered
as a dataset and the prediction model recalibrated on them, offered as a candidate, from the command line."""

from __future__ import annotations

import hashlib
import io

from pneumodesk.cli import main
from pneumodesk.node import NodeService
from pneumodesk.node.readings import Reading
from pneumodesk.training.recalibration import MIN_CASES_PER_CLASS
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

    def read(indices: range) -> None:
        for index in indices:
            path = write_png(tmp_path / "ward" / f"scan_{index:02d}.png", chest_like(64, 64, seed=index))
            node.readings.record(clinician, hashlib.sha256(path.read_bytes()).hexdigest(), path,
                                 Reading.PNEUMONIA if index % 2 else Reading.NORMAL)

    read(range(12))
    early = run(monkeypatch, capsys, home, "calibrate", "--confirmed")
    added = run(monkeypatch, capsys, home, "datasets", "add-confirmed")
    too_few = run(monkeypatch, capsys, home, "calibrate", "--confirmed")
    read(range(12, 2 * MIN_CASES_PER_CLASS))
    run(monkeypatch, capsys, home, "datasets", "add-confirmed", "Confirmed cases (all)")
    node.close()
    calibrated = run(monkeypatch, capsys, home, "calibrate", "--confirmed")

    assert early[0] == 1 and "no confirmed cases dataset" in early[2]
    assert added[0] == 0 and "readings: 6 normal, 6 pneumonia" in added[1]
    assert too_few[0] == 1 and not too_few[1]
    assert ("Recalibration needs at least 20 confirmed normal and 20 confirmed pneumonia cases; this workstation "
            "has 6 and 6. Thresholds fitted on fewer would follow chance.") in too_few[2]
    assert calibrated[0] == 0, calibrated[2]
    assert f"Recalibrated on {2 * MIN_CASES_PER_CLASS} confirmed case(s)" in calibrated[1]
    assert "threshold" in calibrated[1] and "Offered as candidate model 2" in calibrated[1]
    accepted = run(monkeypatch, capsys, home, "models", "accept", "2")
    assert accepted[0] == 0 and "the prediction model is now model 2" in accepted[1]


def test_models_performance_reports_this_months_confirmed_cases(tmp_path, monkeypatch, capsys):
    home = tmp_path / "home"
    seed_node(home)
    nothing = run(monkeypatch, capsys, home, "models", "performance")
    denied = run(monkeypatch, capsys, home, "models", "performance", user=CLINICIAN)
    assert nothing[0] == 0 and "no confirmed cases yet" in nothing[1]
    assert denied[0] == 1
