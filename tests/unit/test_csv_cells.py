"""CSV formula injection: every CSV the app writes (audit and egress exports, ``predict --csv``) passes each cell
through ``csv_cells.defuse_cell``, so a spreadsheet never runs one as a formula — whatever a file name, a target or
an endpoint says (the worklist export is tested in ``tests/gui/test_verdicts_and_export.py``)."""

from __future__ import annotations

import csv
from pathlib import Path

import pytest

from pneumodesk.cli import main
from pneumodesk.csv_cells import defuse_cell
from pneumodesk.node import NodeService
from pneumodesk.node.audit import write_audit_csv
from tests.builders import chest_like, write_png
from tests.node_builders import OWNER, seed_node, sign_in

#: Cells a spreadsheet would run or treat as the start of a formula (OWASP "CSV Injection").
HOSTILE = ('=HYPERLINK("https:evil.example","click")', "+cmd|' /C calc'!A0", "-2+3", "@SUM(1+1)", "\t=1", "\r=1",
           "  =1+1", "\n=1")
HARMLESS = ("ward 3", "O'Brien", "1+1", "a=b", "", "https://coordinator.example/rounds")


def read_rows(path: Path) -> list[dict[str, str]]:
    with path.open(newline="", encoding="utf-8") as handle:
        return list(csv.DictReader(handle))


@pytest.mark.parametrize("cell", HOSTILE)
def test_a_cell_a_spreadsheet_would_run_gets_a_leading_quote(cell):
    assert defuse_cell(cell) == "'" + cell


@pytest.mark.parametrize("cell", (*HARMLESS, 3, -2, 0.5, None))
def test_other_cells_and_numbers_are_left_alone(cell):
    assert defuse_cell(cell) == cell


@pytest.fixture
def node(tmp_path):
    seed_node(tmp_path / "home")
    service = NodeService.open(tmp_path / "home")
    yield service
    service.close()


def test_the_audit_export_defuses_every_hostile_cell(tmp_path, node):
    for cell in HOSTILE:
        node.audit.append(cell, "dataset_registered", target=cell)

    rows = read_rows(write_audit_csv(node.audit.read(action="dataset_registered"), tmp_path / "audit.csv"))

    assert sorted(row["target"] for row in rows) == sorted("'" + cell for cell in HOSTILE)
    assert sorted(row["user"] for row in rows) == sorted("'" + cell for cell in HOSTILE)


def test_the_egress_export_defuses_every_hostile_cell(tmp_path, node):
    for cell in HOSTILE:
        node.egress.record("GET", cell, 10, 20, 200, cell)

    owner = sign_in(tmp_path / "home", OWNER[0], OWNER[2])
    rows = read_rows(node.egress.export_csv(owner, tmp_path / "egress.csv"))

    assert [row["endpoint"] for row in rows] == ["'" + cell for cell in HOSTILE]
    assert [row["purpose"] for row in rows] == ["'" + cell for cell in HOSTILE]


def test_predict_csv_defuses_file_names(tmp_path, tiny_bundle_dir, monkeypatch):
    folder = tmp_path / "worklist"
    folder.mkdir()
    names = [cell.replace("/", "_") + ".png" for cell in HOSTILE]
    for seed, name in enumerate(names):
        write_png(folder / name, chest_like(64, 64, seed=seed))
    monkeypatch.chdir(folder)
    out = tmp_path / "results.csv"

    assert main(["predict", ".", "--model", str(tiny_bundle_dir), "--csv", str(out)]) == 0  # rows name the bare files

    assert sorted(row["path"] for row in read_rows(out)) == sorted("'" + name for name in names)
