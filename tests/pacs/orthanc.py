"""A real Orthanc PACS for the tests: its JSON configuration in a temporary folder (DICOMweb plugin, HTTP and DICOM
ports on 127.0.0.1, one registered user for basic auth), started as a subprocess and loaded through its REST API.

When the ``Orthanc`` binary or its DICOMweb plugin is missing, ``start_orthanc`` skips with a reason that starts
with ``NEEDS_REAL_PACS``; ``tests/conftest.py`` turns such a skip into a failure under CI (``CI=true``).
"""

from __future__ import annotations

import io
import json
import shutil
import socket
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path

import pytest
import requests
from pydicom.dataset import Dataset

from tests.conftest import NEEDS_REAL_PACS

PLUGIN_FOLDERS = (Path("/usr/share/orthanc/plugins"), Path("/usr/lib/orthanc"))
ORTHANC_AE = "ORTHANC"
USER, PASSWORD = "radiology", "orthanc-test-password"


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def _dicomweb_plugin() -> Path | None:
    for folder in PLUGIN_FOLDERS:
        for candidate in sorted(folder.glob("libOrthancDicomWeb.so*")):
            return candidate
    return None


@dataclass
class Orthanc:
    process: subprocess.Popen[bytes]
    http_port: int
    dicom_port: int
    folder: Path
    move_port: int  # where Orthanc sends C-MOVE results for the calling AE title

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.http_port}"

    @property
    def dicomweb_url(self) -> str:
        return f"{self.url}/dicom-web"

    def upload(self, datasets: list[Dataset]) -> None:
        for dataset in datasets:
            buffer = io.BytesIO()
            dataset.save_as(buffer, enforce_file_format=True)
            answer = requests.post(f"{self.url}/instances", data=buffer.getvalue(), auth=(USER, PASSWORD), timeout=30)
            answer.raise_for_status()

    def clear(self) -> None:
        for patient in requests.get(f"{self.url}/patients", auth=(USER, PASSWORD), timeout=30).json():
            requests.delete(f"{self.url}/patients/{patient}", auth=(USER, PASSWORD), timeout=30).raise_for_status()

    def stop(self) -> None:
        self.process.terminate()
        try:
            self.process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()


def start_orthanc(folder: Path, calling_ae: str = "PNEUMODESK") -> Orthanc:
    binary = shutil.which("Orthanc")
    plugin = _dicomweb_plugin()
    if binary is None or plugin is None:
        missing = "the Orthanc binary" if binary is None else "Orthanc's DICOMweb plugin"
        pytest.skip(f"{NEEDS_REAL_PACS} {missing} is not installed (apt-get install orthanc orthanc-dicomweb)")
    http_port, dicom_port, move_port = free_port(), free_port(), free_port()
    storage = folder / "storage"
    storage.mkdir(parents=True)
    config = {
        "Name": "PneumoDesk test PACS",
        "StorageDirectory": str(storage),
        "IndexDirectory": str(storage),
        "Plugins": [str(plugin)],
        "HttpServerEnabled": True,
        "HttpPort": http_port,
        "RemoteAccessAllowed": False,
        "AuthenticationEnabled": True,
        "RegisteredUsers": {USER: PASSWORD},
        "DicomServerEnabled": True,
        "DicomAet": ORTHANC_AE,
        "DicomPort": dicom_port,
        "DicomCheckCalledAet": True,
        "DicomAlwaysAllowEcho": True,
        "DicomAlwaysAllowFind": True,
        "DicomAlwaysAllowGet": True,
        "DicomModalities": {"pneumodesk": [calling_ae, "127.0.0.1", move_port]},
        "DicomWeb": {"Enable": True, "Root": "/dicom-web/", "EnableWado": True},
        "StableAge": 1,
        "ConcurrentJobs": 2,
    }
    path = folder / "orthanc.json"
    path.write_text(json.dumps(config, indent=2), encoding="utf-8")
    log = (folder / "orthanc.log").open("wb")
    process = subprocess.Popen([binary, str(path)], stdout=log, stderr=subprocess.STDOUT, cwd=folder)
    server = Orthanc(process, http_port, dicom_port, folder, move_port)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError("Orthanc exited at start:\n" + (folder / "orthanc.log").read_text(errors="replace"))
        try:
            if requests.get(f"{server.url}/system", auth=(USER, PASSWORD), timeout=2).ok:
                return server
        except requests.ConnectionError:
            pass
        time.sleep(0.2)
    server.stop()
    raise RuntimeError("Orthanc did not start within 60 s:\n" + (folder / "orthanc.log").read_text(errors="replace"))
