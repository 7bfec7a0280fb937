"""Connection settings are validated with plain messages, secrets go only to the keyring, and the cache keeps to
its age limit and size cap with names that reveal nothing."""

from __future__ import annotations

import datetime as dt
import os
import stat
import time

import pytest

from pneumodesk.pacs.cache import CacheLimits, PacsCache
from pneumodesk.pacs.errors import PacsSettingsError
from pneumodesk.pacs.query import StudyQuery
from pneumodesk.pacs.settings import (
    AuthKind,
    DicomWebSettings,
    DimseSettings,
    PacsConnection,
    Protocol,
    RetrieveMethod,
)

from .instances import PATIENT_ID, StudyIds, cr_instance


@pytest.mark.parametrize(("connection", "message"), [
    (PacsConnection("w", Protocol.DICOMWEB, dicomweb=DicomWebSettings("ftp://pacs")), "https://"),
    (PacsConnection("w", Protocol.DICOMWEB, dicomweb=DicomWebSettings("https://u:p@pacs")), "own fields"),
    (PacsConnection("w", Protocol.DICOMWEB, dicomweb=DicomWebSettings("https://pacs", auth=AuthKind.BASIC)),
     "user name"),
    (PacsConnection("d", Protocol.DIMSE, dimse=DimseSettings("pacs", 70000, "PACS")), "port"),
    (PacsConnection("d", Protocol.DIMSE, dimse=DimseSettings("pacs", 104, "A" * 17)), "AE title"),
    (PacsConnection(" ", Protocol.DIMSE, dimse=DimseSettings("pacs", 104, "PACS")), "name"),
    (PacsConnection("m", Protocol.DIMSE, dimse=DimseSettings("pacs", 104, "PACS", retrieve=RetrieveMethod.MOVE)),
     "receives images on"),
    (PacsConnection("t", Protocol.DIMSE, dimse=DimseSettings("pacs", 104, "PACS", tls_ca_file="/nonexistent.pem")),
     "TLS does not exist"),
])
def test_invalid_settings_are_refused_with_the_field_named(connection, message):
    with pytest.raises(PacsSettingsError, match=message):
        connection.validated()


def test_a_connection_round_trips_through_the_store_and_its_secret_only_through_the_keyring(pacs, owner):
    connection = PacsConnection("web", Protocol.DICOMWEB, dicomweb=DicomWebSettings(
        "https://pacs.example/dicom-web/", auth=AuthKind.BEARER))
    pacs.connections.save(owner, connection, secret="token-value-123")
    stored = pacs.connections.get(owner, "web")
    assert stored.dicomweb is not None and stored.dicomweb.base_url == "https://pacs.example/dicom-web"
    assert pacs.secrets.get("web") == "token-value-123"
    raw = pacs.node.store.path.read_bytes()
    assert b"token-value-123" not in raw
    assert "token-value-123" not in repr([entry.details for entry in pacs.node.audit.read()])
    pacs.connections.remove(owner, "web")
    assert pacs.secrets.get("web") == "" and pacs.connections.list(owner) == []


def test_query_audit_names_the_fields_never_their_values():
    query = StudyQuery(patient_name="DOE*", accession="A1", date_from=dt.date(2026, 1, 1))
    assert query.used_fields() == ["patient_name", "accession", "date"]
    assert query.date_range() == "20260101-"


def test_cache_names_reveal_nothing_and_pruning_keeps_age_and_size(tmp_path):
    ids = StudyIds("1.2.3", "1.2.3.4", "1.2.3.5")
    cache = PacsCache(tmp_path / "cache", CacheLimits(max_bytes=40_000, max_age=dt.timedelta(hours=1)))
    paths = [cache.store(cr_instance(ids, n)) for n in range(1, 4)]
    assert all(PATIENT_ID not in path.name and len(path.stem) == 40 for path in paths)
    assert oct(paths[0].stat().st_mode & 0o777) == "0o600"
    old = time.time() - 7200
    os.utime(paths[0], (old, old))
    size = paths[1].stat().st_size
    cache.limits = CacheLimits(max_bytes=size + 10, max_age=dt.timedelta(hours=1))
    removed = cache.prune(keep=[paths[1]])
    assert removed == 2 and [p.exists() for p in paths] == [False, True, False]



@pytest.mark.skipif(os.name != "posix", reason="POSIX permission bits")
def test_a_machine_wide_home_shares_its_cache_with_the_group_and_a_users_own_home_does_not(tmp_path):
    """On an installed workstation every OS user is the same node: an admin signed in as another OS user must read
    the cached confirmed images, and another user's session must retrieve into and prune the same folder."""
    from pneumodesk.node import NodeService
    from pneumodesk.node.homes import MACHINE_MARKER
    from pneumodesk.pacs.credentials import PacsSecrets
    from pneumodesk.pacs.service import PacsService
    from tests.unit.memory_keyring import MemoryKeyring

    ids = StudyIds("1.2.3", "1.2.3.4", "1.2.3.5")
    modes = {}
    for kind in ("machine", "user"):
        home = tmp_path / kind
        home.mkdir()
        if kind == "machine":
            (home / MACHINE_MARKER).touch()  # what resolve_homes leaves in a machine-wide node home
        node = NodeService.open(home)
        try:
            path = PacsService(node, PacsSecrets(MemoryKeyring())).cache.store(cr_instance(ids, 1))
        finally:
            node.close()
        modes[kind] = (oct(stat.S_IMODE(path.parent.stat().st_mode)), oct(stat.S_IMODE(path.stat().st_mode)))
    assert modes == {"machine": ("0o2770", "0o640"), "user": ("0o700", "0o600")}

    older = tmp_path / "older" / "pacs-cache"  # an owner-only cache made before: opened up when next written
    older.mkdir(parents=True, mode=0o700)
    PacsCache(older, shared=True).store(cr_instance(ids, 2))
    assert oct(stat.S_IMODE(older.stat().st_mode)) == "0o2770"

def test_tls_with_c_move_is_refused_in_words(tmp_path):
    ca = tmp_path / "ca.pem"
    ca.write_text("not checked here", encoding="utf-8")
    connection = PacsConnection("t", Protocol.DIMSE, dimse=DimseSettings(
        "pacs", 104, "PACS", retrieve=RetrieveMethod.MOVE, move_port=11112, tls_ca_file=str(ca)))
    with pytest.raises(PacsSettingsError, match="retrieve by C-GET"):
        connection.validated()


def test_stored_settings_round_trip_with_every_field(tmp_path):
    connection = PacsConnection("m", Protocol.DIMSE, dimse=DimseSettings(
        "pacs", 104, "PACS", "WS1", 12.0, RetrieveMethod.MOVE, 11112)).validated()
    assert PacsConnection.from_json("m", "dimse", connection.settings_json()) == connection
