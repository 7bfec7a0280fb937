"""The node's side of the federation: HTTPS to the coordinator (``transport``), the node identity (``keys``),
enrolment and tokens, and the participation engine (``participation``). No Qt here; the GUI runs
``ParticipationEngine.run`` in a QThread.

Imports are light: torch, Opacus and SQLAlchemy load only when training or the node store is used.
"""

from .enrolment import FederationConnection, connect, enrol, pin_ca, refresh_status, wait_for_approval
from .errors import (
    ClientError,
    CoordinatorUnreachable,
    EnrolmentError,
    KeyStoreError,
    NotAuthorised,
    ParticipationRefused,
    ProtocolError,
    Refused,
    TlsFailure,
)
from .home_key_store import HomeKeyStore
from .key_stores import EncryptedFileKeyStore, KeyringKeyStore, keyring_backend_status
from .keys import NodeKey, NodeKeyStore
from .participation import EngineOptions, EngineResult, EngineStage, EngineStatus, ParticipationEngine
from .transport import EgressEvent, Timeouts, Transport
from .upload import PlainUpload, PreparedUpdate, UpdateUploader

__all__ = [
    "ClientError",
    "CoordinatorUnreachable",
    "EgressEvent",
    "EncryptedFileKeyStore",
    "EngineOptions",
    "EngineResult",
    "EngineStage",
    "EngineStatus",
    "EnrolmentError",
    "FederationConnection",
    "HomeKeyStore",
    "KeyStoreError",
    "KeyringKeyStore",
    "NodeKey",
    "NodeKeyStore",
    "NotAuthorised",
    "ParticipationEngine",
    "ParticipationRefused",
    "PlainUpload",
    "PreparedUpdate",
    "ProtocolError",
    "Refused",
    "Timeouts",
    "TlsFailure",
    "Transport",
    "UpdateUploader",
    "connect",
    "enrol",
    "keyring_backend_status",
    "pin_ca",
    "refresh_status",
    "wait_for_approval",
]
