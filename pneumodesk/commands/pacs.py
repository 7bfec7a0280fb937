"""``pneumodesk pacs connect|connections|remove|echo|query|predict``: the hospital's PACS from the command line.

``connect``/``remove``/``echo`` need an administrator (manage_accounts); ``query`` and ``predict`` need predict.
Everyone signs in like the other node commands (``--user``, password prompt or ``--password-stdin``). A PACS
password or token comes from a hidden prompt or from the environment variable named by ``--secret-env``, never from
the command line, and goes to the OS keyring. ``predict`` writes no patient attribute to its CSV unless
``--include-patient-ids`` is given (for a hospital that allows it); ``query`` shows them on the terminal only.
"""

from __future__ import annotations

import argparse
import csv
import datetime as dt
import getpass
import json
import os
import sys
from pathlib import Path
from typing import TYPE_CHECKING

from .datasets import add_sign_in_arguments

if TYPE_CHECKING:  # the node stack, pydicom and the PACS libraries load only when a command runs
    from pneumodesk.inference import FileResult
    from pneumodesk.node import UserSession
    from pneumodesk.pacs.query import SeriesRow, StudyQuery
    from pneumodesk.pacs.retrieve import RetrieveOutcome
    from pneumodesk.pacs.service import PacsService
    from pneumodesk.pacs.settings import PacsConnection

CSV_COLUMNS = ("study_uid", "series_uid", "instance_uid", "study_date", "probability", "label", "error")
PATIENT_COLUMNS = ("patient_id", "accession")


def _date(text: str) -> dt.date:
    today = dt.date.today()
    named = {"today": today, "yesterday": today - dt.timedelta(days=1)}
    if text in named:
        return named[text]
    try:
        return dt.date.fromisoformat(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a date (YYYY-MM-DD, today or yesterday)") from None


def _add_query_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("connection", help="the PACS connection's name")
    parser.add_argument("--patient-id", default="")
    parser.add_argument("--patient-name", default="", help="DICOM wildcards allowed, e.g. DOE*")
    parser.add_argument("--accession", default="")
    parser.add_argument("--from", dest="date_from", type=_date, metavar="DATE", help="studies on or after DATE")
    parser.add_argument("--to", dest="date_to", type=_date, metavar="DATE", help="studies on or before DATE")
    parser.add_argument("--date", type=_date, metavar="DATE", help="studies of one day (e.g. yesterday)")
    parser.add_argument("--modality", action="append", metavar="M", help="CR, DX (the default: both); repeatable")
    parser.add_argument("--body-part", default="", help="e.g. CHEST")
    parser.add_argument("--limit", type=int, default=500, help="at most this many series (default 500)")


def add_pacs_parser(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    pacs = commands.add_parser("pacs", help="search the hospital's PACS and predict on its chest X-rays")
    actions = pacs.add_subparsers(dest="pacs_command", required=True)

    connect = actions.add_parser("connect", help="add or change a PACS connection (needs manage_accounts)")
    connect.add_argument("name")
    where = connect.add_mutually_exclusive_group(required=True)
    where.add_argument("--dicomweb", metavar="URL", help="DICOMweb base URL, e.g. https://pacs/dicom-web")
    where.add_argument("--dimse", metavar="HOST:PORT", help="a classic DICOM peer")
    connect.add_argument("--ae", metavar="TITLE", help="the PACS's AE title (DIMSE)")
    connect.add_argument("--local-ae", metavar="TITLE", default="PNEUMODESK", help="this workstation's AE title")
    connect.add_argument("--move-port", type=int, metavar="PORT", help="retrieve by C-MOVE, receiving on PORT "
                         "(registered at the PACS with --local-ae); default: C-GET")
    connect.add_argument("--ca", metavar="FILE", default="", help="CA certificate (PEM) of the PACS; for DIMSE it "
                         "turns DICOM over TLS on")
    connect.add_argument("--auth", choices=["none", "basic", "bearer"], default="none")
    connect.add_argument("--pacs-user", default="", help="user name for basic authentication")
    connect.add_argument("--secret-env", metavar="VAR", help="read the PACS password or token from this variable "
                         "(else a hidden prompt when --auth needs one)")
    connect.add_argument("--timeout", type=float, default=30.0, metavar="SECONDS")

    listing = actions.add_parser("connections", help="list the PACS connections")
    remove = actions.add_parser("remove", help="remove a PACS connection (needs manage_accounts)")
    remove.add_argument("name")
    echo = actions.add_parser("echo", help="test a connection (C-ECHO or a DICOMweb search; manage_accounts)")
    echo.add_argument("name")

    query = actions.add_parser("query", help="search for chest X-ray series (needs predict)")
    _add_query_arguments(query)
    query.add_argument("--json", action="store_true", help="print JSON (with patient attributes: keep it private)")

    predict = actions.add_parser("predict", help="search, retrieve and predict; one CSV row per instance")
    _add_query_arguments(predict)
    predict.add_argument("--csv", type=Path, required=True, metavar="OUT", help="where to write the rows")
    predict.add_argument("--model", type=Path, help="model bundle folder (default: the bundled model)")
    predict.add_argument("--operating-point", help="decision threshold to use, e.g. balanced")
    predict.add_argument("--include-patient-ids", action="store_true",
                         help="also write patient id and accession (only where the hospital allows it)")

    for parser in (connect, listing, remove, echo, query, predict):
        add_sign_in_arguments(parser, "see pneumodesk pacs --help")
        parser.set_defaults(run=pacs_command)


def pacs_command(args: argparse.Namespace) -> int:
    from pneumodesk.commands.datasets import signed_in
    from pneumodesk.errors import PneumoDeskError
    from pneumodesk.pacs.service import PacsService

    try:
        with signed_in(args) as (node, actor):
            return _run(args, PacsService(node), actor)
    except PneumoDeskError as error:
        print(f"pneumodesk pacs: {error}", file=sys.stderr)
        return 1


def _run(args: argparse.Namespace, pacs: PacsService, actor: UserSession) -> int:
    command = args.pacs_command
    if command == "connect":
        connection, secret = _connection(args)
        saved = pacs.connections.save(actor, connection, secret)
        print(f"Saved PACS connection {saved.name!r} ({saved.protocol}, {saved.address}).")
    elif command == "connections":
        found = pacs.connections.list(actor)
        for item in found:
            print(f"{item.name}  {item.protocol}  {item.address}")
        if not found:
            print("No PACS connection is set up; an administrator adds one with `pneumodesk pacs connect`.")
    elif command == "remove":
        pacs.connections.remove(actor, args.name)
        print(f"Removed PACS connection {args.name!r}.")
    elif command == "echo":
        print(pacs.test(actor, args.name))
    elif command == "query":
        rows = pacs.query(actor, args.connection, _query(args))
        _print_rows(rows, args.json)
    else:
        return _predict(args, pacs, actor)
    return 0


def _connection(args: argparse.Namespace) -> tuple[PacsConnection, str | None]:
    from pneumodesk.pacs.errors import PacsSettingsError
    from pneumodesk.pacs.settings import (
        AuthKind,
        DicomWebSettings,
        DimseSettings,
        PacsConnection,
        Protocol,
        RetrieveMethod,
    )

    if args.dicomweb:
        auth = AuthKind(args.auth)
        secret: str | None = None
        if auth is not AuthKind.NONE:
            secret = os.environ.get(args.secret_env, "") if args.secret_env else getpass.getpass(
                f"{'Password' if auth is AuthKind.BASIC else 'Token'} for the PACS: ")
        return PacsConnection(args.name, Protocol.DICOMWEB, dicomweb=DicomWebSettings(
            args.dicomweb, args.ca, auth, args.pacs_user, args.timeout)), secret
    host, _, port = str(args.dimse).rpartition(":")
    if not host or not port.isdigit() or not args.ae:
        raise PacsSettingsError("Give --dimse as HOST:PORT and the PACS's AE title with --ae.")
    method = RetrieveMethod.MOVE if args.move_port else RetrieveMethod.GET
    return PacsConnection(args.name, Protocol.DIMSE, dimse=DimseSettings(
        host, int(port), args.ae, args.local_ae, args.timeout, method, args.move_port or 0, args.ca)), None


def _query(args: argparse.Namespace) -> StudyQuery:
    from pneumodesk.pacs.query import DEFAULT_MODALITIES, StudyQuery

    date_from, date_to = (args.date, args.date) if args.date else (args.date_from, args.date_to)
    return StudyQuery(args.patient_id, args.patient_name, args.accession, date_from, date_to,
                      tuple(args.modality or DEFAULT_MODALITIES), args.body_part, args.limit)


def _print_rows(rows: list[SeriesRow], as_json: bool) -> None:
    if as_json:
        print(json.dumps([{
            "study_uid": r.study_uid, "series_uid": r.series_uid, "patient_id": r.patient_id,
            "patient_name": r.patient_name, "study_date": r.study_date, "accession": r.accession,
            "modality": r.modality, "body_part": r.body_part, "description": r.description,
            "instances": r.instances} for r in rows], indent=2))
        return
    print(f"{'date':<10}  {'patient id':<16}  {'name':<24}  {'accession':<12}  mod  {'body part':<9}  images  "
          "description")
    for r in rows:
        print(f"{r.study_date:<10}  {r.patient_id[:16]:<16}  {r.patient_name[:24]:<24}  {r.accession[:12]:<12}  "
              f"{r.modality:<3}  {r.body_part[:9]:<9}  {'' if r.instances is None else r.instances:>6}  "
              f"{r.description[:40]}")
    print(f"{len(rows)} series found.")


def _predict(args: argparse.Namespace, pacs: PacsService, actor: UserSession) -> int:
    from pneumodesk.commands.library_log import route_library_output_to_log
    from pneumodesk.inference import Predictor, predict_files
    from pneumodesk.model import ModelError
    from pneumodesk.node import Permission

    route_library_output_to_log(args.home)
    pacs.node.accounts.require(actor, Permission.PREDICT, "pacs_predict")
    try:
        predictor = Predictor.from_path(args.model, args.operating_point)
    except ModelError as error:
        print(f"pneumodesk pacs predict: {error}", file=sys.stderr)
        return 2
    rows = pacs.query(actor, args.connection, _query(args))
    if not rows:
        print("No matching series were found on the PACS.", file=sys.stderr)
        _write_csv(args.csv, [], [], {}, args.include_patient_ids)
        return 1
    outcome = pacs.retrieve(actor, args.connection, rows)
    results = list(predict_files(predictor, outcome.files))
    _write_csv(args.csv, results, rows, _skipped_rows(outcome), args.include_patient_ids)
    done = sum(1 for r in results if r.prediction)
    flagged = sum(1 for r in results if r.prediction and r.prediction.is_pneumonia)
    print(f"{len(rows)} series, {outcome.received} instances: {done} predicted, {flagged} flagged as pneumonia, "
          f"{len(outcome.skipped)} skipped, {len(results) - done} could not be read. Rows written to {args.csv}.")
    return 0 if done or not results else 1


def _skipped_rows(outcome: RetrieveOutcome) -> dict[str, str]:
    return {item.where: item.reason for item in outcome.skipped}


def _write_csv(target: Path, results: list[FileResult], rows: list[SeriesRow], skipped: dict[str, str],
               with_patient: bool) -> None:
    import pydicom

    from pneumodesk.csv_cells import defused_row

    by_series = {row.series_uid: row for row in rows}
    target.parent.mkdir(parents=True, exist_ok=True)
    with target.open("w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        writer.writerow([*CSV_COLUMNS, *(PATIENT_COLUMNS if with_patient else ())])
        for result in results:
            header = pydicom.dcmread(result.path, stop_before_pixels=True, specific_tags=[
                "StudyInstanceUID", "SeriesInstanceUID", "SOPInstanceUID"])
            series = by_series.get(str(header.get("SeriesInstanceUID", "")))
            prediction = result.prediction
            cells: list[object] = [
                header.get("StudyInstanceUID", ""), header.get("SeriesInstanceUID", ""),
                header.get("SOPInstanceUID", ""), series.study_date if series else "",
                "" if prediction is None else f"{prediction.probability:.6f}",
                "" if prediction is None else prediction.label, result.error or ""]
            if with_patient:
                cells += [series.patient_id if series else "", series.accession if series else ""]
            writer.writerow(defused_row([str(cell) for cell in cells]))
        for where, reason in skipped.items():
            cells = ["", "", "", "", "", "", f"skipped ({where}): {reason}"]
            writer.writerow(defused_row([*cells, *([""] * len(PATIENT_COLUMNS) if with_patient else [])]))
