"""``pneumodesk pacs``: connect, echo, query and predict to CSV, against the pynetdicom SCP and Orthanc."""

from __future__ import annotations

import csv
import io

import keyring
import pytest

from pneumodesk.cli import main
from tests.node_builders import CLINICIAN, OWNER, seed_node
from tests.unit.memory_keyring import MemoryKeyring

from .instances import PATIENT_ID
from .orthanc import PASSWORD, USER
from .qr_scp import SCP_AE


@pytest.fixture
def home(tmp_path):
    seed_node(tmp_path / "home")
    return tmp_path / "home"


@pytest.fixture
def memory_keyring():
    previous = keyring.get_keyring()
    keyring.set_keyring(MemoryKeyring())
    yield
    keyring.set_keyring(previous)


def run(monkeypatch, home, who, *arguments):
    monkeypatch.setattr("sys.stdin", io.StringIO(who[2] + "\n"))
    return main(["--home", str(home), "pacs", *arguments, "--user", who[0], "--password-stdin"])


def test_connect_echo_query_and_predict_over_dimse(monkeypatch, capsys, home, scp, tiny_bundle_dir, tmp_path):
    assert run(monkeypatch, home, OWNER, "connect", "scp", "--dimse", f"127.0.0.1:{scp.port}", "--ae", SCP_AE) == 0
    assert run(monkeypatch, home, OWNER, "echo", "scp") == 0
    assert "answered a DICOM echo" in capsys.readouterr().out
    assert run(monkeypatch, home, CLINICIAN, "echo", "scp") == 1  # echo is an administrator's check
    assert "does not allow" in capsys.readouterr().err

    assert run(monkeypatch, home, CLINICIAN, "query", "scp", "--patient-id", PATIENT_ID) == 0
    shown = capsys.readouterr().out
    assert "1 series found" in shown and PATIENT_ID in shown

    out = tmp_path / "triage.csv"
    assert run(monkeypatch, home, CLINICIAN, "predict", "scp", "--date", "2026-12-01", "--modality", "CR",
               "--modality", "SR", "--csv", str(out), "--model", str(tiny_bundle_dir)) == 0
    rows = list(csv.DictReader(out.open(encoding="utf-8")))
    predicted = [row for row in rows if row["probability"]]
    skipped = [row for row in rows if row["error"].startswith("skipped")]
    assert len(predicted) == 3 and len(skipped) == 2
    assert all(0.0 <= float(row["probability"]) <= 1.0 and row["instance_uid"] for row in predicted)
    assert PATIENT_ID not in out.read_text(encoding="utf-8")  # no patient attribute unless asked for
    assert "3 predicted" in capsys.readouterr().out


def test_predict_may_include_patient_ids_when_asked(monkeypatch, home, scp, tiny_bundle_dir, tmp_path):
    run(monkeypatch, home, OWNER, "connect", "scp", "--dimse", f"127.0.0.1:{scp.port}", "--ae", SCP_AE)
    out = tmp_path / "triage.csv"
    assert run(monkeypatch, home, CLINICIAN, "predict", "scp", "--csv", str(out), "--model", str(tiny_bundle_dir),
               "--include-patient-ids") == 0
    assert PATIENT_ID in out.read_text(encoding="utf-8")


def test_dicomweb_connection_with_a_secret_from_the_environment(monkeypatch, capsys, home, orthanc,
                                                                memory_keyring):
    monkeypatch.setenv("PACS_SECRET", PASSWORD)
    assert run(monkeypatch, home, OWNER, "connect", "web", "--dicomweb", orthanc.dicomweb_url, "--auth", "basic",
               "--pacs-user", USER, "--secret-env", "PACS_SECRET") == 0
    assert PASSWORD not in capsys.readouterr().out
    assert run(monkeypatch, home, CLINICIAN, "query", "web", "--json") == 0
    assert PATIENT_ID in capsys.readouterr().out


def test_an_unknown_connection_is_a_plain_error(monkeypatch, capsys, home):
    assert run(monkeypatch, home, CLINICIAN, "query", "nowhere") == 1
    assert "no PACS connection named 'nowhere'" in capsys.readouterr().err


def test_predict_by_c_move_from_orthanc(monkeypatch, capsys, home, orthanc, tiny_bundle_dir, tmp_path):
    assert run(monkeypatch, home, OWNER, "connect", "move", "--dimse", f"127.0.0.1:{orthanc.dicom_port}", "--ae",
               "ORTHANC", "--move-port", str(orthanc.move_port)) == 0
    assert "C-MOVE to port" in capsys.readouterr().out
    out = tmp_path / "triage.csv"
    assert run(monkeypatch, home, CLINICIAN, "predict", "move", "--patient-id", PATIENT_ID, "--csv", str(out),
               "--model", str(tiny_bundle_dir)) == 0
    rows = list(csv.DictReader(out.open(encoding="utf-8")))
    assert sum(1 for row in rows if row["probability"]) == 3
