"""PACS speed on this machine, against a real Orthanc started here: search and retrieve N CR instances by DICOMweb
(QIDO-RS + WADO-RS) and by DIMSE (C-FIND + C-GET, C-FIND + C-MOVE), and worklist throughput from the PACS
(search + retrieve + predict) vs from the same DICOM files on disk. Prints JSON (medians of repeated runs).

    .venv/bin/python benchmarks/pacs.py [--instances 50] [--width 1024] [--repeats 3] [--model BUNDLE_DIR]

Needs the ``Orthanc`` binary and its DICOMweb plugin (Debian: apt-get install orthanc orthanc-dicomweb).
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))


def median_s(action: Callable[[], object], repeats: int) -> float:
    times = []
    for _ in range(repeats):
        started = time.perf_counter()
        action()
        times.append(time.perf_counter() - started)
    return round(statistics.median(times), 3)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--instances", type=int, default=50)
    parser.add_argument("--width", type=int, default=1024, help="columns of each CR image (8-bit, uncompressed)")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--model", type=Path, help="model bundle (default: the bundled model)")
    args = parser.parse_args()

    import torch

    from pneumodesk.inference import Predictor, predict_files
    from pneumodesk.node import NodeService
    from pneumodesk.pacs.credentials import PacsSecrets
    from pneumodesk.pacs.query import StudyQuery
    from pneumodesk.pacs.service import PacsService
    from pneumodesk.pacs.settings import (
        AuthKind,
        DicomWebSettings,
        DimseSettings,
        PacsConnection,
        Protocol,
        RetrieveMethod,
    )
    from tests.pacs.instances import StudyIds, cr_instance
    from tests.pacs.orthanc import ORTHANC_AE, PASSWORD, USER, start_orthanc
    from tests.unit.memory_keyring import MemoryKeyring

    predictor = Predictor.from_path(args.model)
    with tempfile.TemporaryDirectory(prefix="pneumodesk-pacs-bench-") as temporary:
        root = Path(temporary)
        ids = StudyIds("1.2.826.0.1.3680043.10.1.1", "1.2.826.0.1.3680043.10.1.1.1", "1.2.826.0.1.3680043.10.1.1.2")
        datasets = [cr_instance(ids, n, args.width) for n in range(1, args.instances + 1)]
        files = root / "files"
        files.mkdir()
        for n, dataset in enumerate(datasets):
            dataset.save_as(files / f"{n:04d}.dcm", enforce_file_format=True)
        instance_bytes = (files / "0000.dcm").stat().st_size
        orthanc = start_orthanc(root / "orthanc")
        try:
            orthanc.upload(datasets)
            node = NodeService.open(root / "home")
            node.accounts.create_owner("bench.owner", "Bench Owner", "tulip harbour 4821")
            owner = node.accounts.authenticate("bench.owner", "tulip harbour 4821")
            pacs = PacsService(node, PacsSecrets(MemoryKeyring()), cache_folder=root / "cache")
            pacs.connections.save(owner, PacsConnection("web", Protocol.DICOMWEB, dicomweb=DicomWebSettings(
                orthanc.dicomweb_url, auth=AuthKind.BASIC, username=USER)), secret=PASSWORD)
            pacs.connections.save(owner, PacsConnection("dimse", Protocol.DIMSE, dimse=DimseSettings(
                "127.0.0.1", orthanc.dicom_port, ORTHANC_AE)))
            pacs.connections.save(owner, PacsConnection("move", Protocol.DIMSE, dimse=DimseSettings(
                "127.0.0.1", orthanc.dicom_port, ORTHANC_AE, retrieve=RetrieveMethod.MOVE,
                move_port=orthanc.move_port)))
            query = StudyQuery(date_from=None, modalities=("CR",))
            report: dict[str, object] = {}
            for name, label in (("web", "dicomweb_qido_wado"), ("dimse", "dimse_cfind_cget"),
                                ("move", "dimse_cfind_cmove")):
                rows = pacs.query(owner, name, query)
                assert sum(row.instances or 0 for row in rows) == args.instances, rows

                def retrieve(name: str = name, rows: list = rows) -> None:  # type: ignore[type-arg]
                    pacs.cache.clear()
                    outcome = pacs.retrieve(owner, name, rows)
                    assert len(outcome.files) == args.instances

                def from_pacs(name: str = name) -> None:
                    pacs.cache.clear()
                    found = pacs.query(owner, name, query)
                    outcome = pacs.retrieve(owner, name, found)
                    assert all(r.prediction for r in predict_files(predictor, outcome.files))

                query_s = median_s(lambda name=name: pacs.query(owner, name, query), args.repeats)  # type: ignore[misc]
                retrieve_s = median_s(retrieve, args.repeats)
                worklist_s = median_s(from_pacs, args.repeats)
                report[label] = {
                    "query_s": query_s, "retrieve_s": retrieve_s,
                    "query_and_retrieve_s": round(query_s + retrieve_s, 3),
                    "retrieve_instances_per_s": round(args.instances / retrieve_s, 1),
                    "worklist_from_pacs_s": worklist_s,
                    "worklist_from_pacs_images_per_s": round(args.instances / worklist_s, 1),
                }
            paths = sorted(files.glob("*.dcm"))
            files_s = median_s(lambda: [r for r in predict_files(predictor, paths)], args.repeats)
            report["worklist_from_files"] = {"seconds": files_s, "images_per_s": round(args.instances / files_s, 1)}
            node.close()
        finally:
            orthanc.stop()
    print(json.dumps({
        "machine": {"torch_threads": torch.get_num_threads(), "python": sys.version.split()[0]},
        "instances": args.instances, "image": f"{args.width} px wide, 8-bit CR, {instance_bytes / 1e6:.2f} MB each",
        "repeats": args.repeats, "peer": "Orthanc on 127.0.0.1 (HTTP + DICOM)", **report,
    }, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
