"""PACS test fixtures: a node with an Owner and a Clinician, a PacsService whose secrets live in an in-process
keyring, a running pynetdicom Query/Retrieve SCP and a running Orthanc, each loaded with a sample study."""

from __future__ import annotations

import pytest

from pneumodesk.node import NodeService
from pneumodesk.pacs.credentials import PacsSecrets
from pneumodesk.pacs.service import PacsService
from pneumodesk.pacs.settings import (
    AuthKind,
    DicomWebSettings,
    DimseSettings,
    PacsConnection,
    Protocol,
    RetrieveMethod,
)
from tests.node_builders import CLINICIAN, OWNER, seed_node
from tests.unit.memory_keyring import MemoryKeyring

from .instances import sample_study
from .orthanc import ORTHANC_AE, USER, Orthanc, start_orthanc
from .qr_scp import SCP_AE, QueryRetrieveSCP


@pytest.fixture
def node(tmp_path):
    home = tmp_path / "home"
    seed_node(home)
    service = NodeService.open(home)
    yield service
    service.close()


@pytest.fixture
def owner(node):
    return node.accounts.authenticate(OWNER[0], OWNER[2])


@pytest.fixture
def clinician(node):
    return node.accounts.authenticate(CLINICIAN[0], CLINICIAN[2])


@pytest.fixture
def pacs(node):
    return PacsService(node, PacsSecrets(MemoryKeyring()))


@pytest.fixture(scope="package")
def study():
    return sample_study(cr_count=3)


@pytest.fixture(scope="module")
def scp(study):
    server = QueryRetrieveSCP(study[1])
    yield server
    server.stop()


def dimse_connection(port: int, name: str = "scp") -> PacsConnection:
    return PacsConnection(name, Protocol.DIMSE, dimse=DimseSettings("127.0.0.1", port, SCP_AE, "PNEUMODESK", 5.0))


@pytest.fixture(scope="package")
def orthanc(tmp_path_factory, study):
    """A running Orthanc loaded with the sample study, shared by the package's tests, which only read from it
    (skips, or under CI fails, when Orthanc is missing)."""
    server = start_orthanc(tmp_path_factory.mktemp("orthanc"))
    try:
        server.upload(study[1])
        yield server
    finally:
        server.stop()


def dicomweb_connection(server: Orthanc, name: str = "orthanc-web") -> PacsConnection:
    return PacsConnection(name, Protocol.DICOMWEB, dicomweb=DicomWebSettings(
        server.dicomweb_url, auth=AuthKind.BASIC, username=USER, timeout_s=10.0))


def orthanc_dimse_connection(server: Orthanc, name: str = "orthanc-dimse", move: bool = False) -> PacsConnection:
    method = RetrieveMethod.MOVE if move else RetrieveMethod.GET
    return PacsConnection(name, Protocol.DIMSE, dimse=DimseSettings(
        "127.0.0.1", server.dicom_port, ORTHANC_AE, "PNEUMODESK", 10.0, method, server.move_port if move else 0))
