"""PACS test fixtures: a node with an Owner and a Clinician, a PacsService whose secrets live in an in-process
keyring, and a running pynetdicom Query/Retrieve SCP loaded with a sample study."""

from __future__ import annotations

import pytest

from pneumodesk.node import NodeService
from pneumodesk.pacs.credentials import PacsSecrets
from pneumodesk.pacs.service import PacsService
from pneumodesk.pacs.settings import DimseSettings, PacsConnection, Protocol
from tests.node_builders import CLINICIAN, OWNER, seed_node
from tests.unit.memory_keyring import MemoryKeyring

from .instances import sample_study
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


@pytest.fixture(scope="module")
def study():
    return sample_study(cr_count=3)


@pytest.fixture(scope="module")
def scp(study):
    server = QueryRetrieveSCP(study[1])
    yield server
    server.stop()


def dimse_connection(port: int, name: str = "scp") -> PacsConnection:
    return PacsConnection(name, Protocol.DIMSE, dimse=DimseSettings("127.0.0.1", port, SCP_AE, "PNEUMODESK", 5.0))
