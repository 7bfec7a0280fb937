"""What a PACS connection is: a DICOMweb endpoint or a DIMSE peer, as plain settings without any secret.

Invariants: ``validated()`` returns settings that can be stored and used, or raises ``PacsSettingsError`` with a
sentence naming the field; a DICOMweb URL is http(s) only; an AE title is 1–16 printable ASCII characters without
backslash; a port is 1–65535. The password or bearer token never sits here: it lives in the OS keyring
(``credentials.PacsSecrets``) under the connection's name.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, replace
from enum import StrEnum
from pathlib import Path
from urllib.parse import urlsplit

from .errors import PacsSettingsError


class Protocol(StrEnum):
    DICOMWEB = "dicomweb"
    DIMSE = "dimse"


class AuthKind(StrEnum):
    NONE = "none"
    BASIC = "basic"
    BEARER = "bearer"


@dataclass(frozen=True)
class DicomWebSettings:
    base_url: str  # e.g. https://pacs.hospital.local/dicom-web
    ca_file: str = ""  # PEM bundle that signs the PACS's certificate; empty: the system's trust store
    auth: AuthKind = AuthKind.NONE
    username: str = ""  # basic auth only
    timeout_s: float = 30.0


class RetrieveMethod(StrEnum):
    GET = "get"  # C-GET: the PACS sends the instances back on our association (no port to open here)
    MOVE = "move"  # C-MOVE: the PACS opens an association to this workstation's storage port


@dataclass(frozen=True)
class DimseSettings:
    host: str
    port: int
    remote_ae: str  # the PACS's AE title
    local_ae: str = "PNEUMODESK"  # this workstation's AE title, as registered at the PACS
    timeout_s: float = 30.0
    retrieve: RetrieveMethod = RetrieveMethod.GET
    move_port: int = 0  # C-MOVE only: the port this workstation receives on (registered at the PACS with local_ae)
    tls_ca_file: str = ""  # set: DICOM over TLS, the PACS's certificate checked against this CA and its host name


@dataclass(frozen=True)
class PacsConnection:
    name: str
    protocol: Protocol
    dicomweb: DicomWebSettings | None = None
    dimse: DimseSettings | None = None

    def validated(self) -> PacsConnection:
        name = self.name.strip()
        if not name or len(name) > 64:
            raise PacsSettingsError("Give the connection a name of 1 to 64 characters.")
        if self.protocol is Protocol.DICOMWEB:
            if self.dicomweb is None:
                raise PacsSettingsError("A DICOMweb connection needs its base URL.")
            return replace(self, name=name, dicomweb=_valid_dicomweb(self.dicomweb), dimse=None)
        if self.dimse is None:
            raise PacsSettingsError("A DIMSE connection needs the PACS's host, port and AE title.")
        return replace(self, name=name, dimse=_valid_dimse(self.dimse), dicomweb=None)

    def settings_json(self) -> str:
        chosen = self.dicomweb if self.protocol is Protocol.DICOMWEB else self.dimse
        return json.dumps(asdict(chosen) if chosen is not None else {}, sort_keys=True)

    @classmethod
    def from_json(cls, name: str, protocol: str, settings: str) -> PacsConnection:
        values = json.loads(settings)
        kind = Protocol(protocol)
        if kind is Protocol.DICOMWEB:
            values["auth"] = AuthKind(values.get("auth", "none"))
            return cls(name, kind, dicomweb=DicomWebSettings(**values))
        values["retrieve"] = RetrieveMethod(values.get("retrieve", "get"))
        return cls(name, kind, dimse=DimseSettings(**values))

    @property
    def address(self) -> str:
        """Where it points, for lists and messages (no credentials)."""
        if self.dicomweb is not None:
            return self.dicomweb.base_url
        if self.dimse is not None:
            via = f" (C-MOVE to port {self.dimse.move_port})" if self.dimse.retrieve is RetrieveMethod.MOVE else ""
            tls = " over TLS" if self.dimse.tls_ca_file else ""
            return f"{self.dimse.remote_ae}@{self.dimse.host}:{self.dimse.port}{tls}{via}"
        return ""


def _valid_dicomweb(settings: DicomWebSettings) -> DicomWebSettings:
    url = settings.base_url.strip().rstrip("/")
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise PacsSettingsError("The DICOMweb base URL must start with https:// (or http://) and name a host.")
    if parts.username or parts.password:
        raise PacsSettingsError("Put the user name and password in their own fields, not in the URL.")
    ca_file = settings.ca_file.strip()
    if ca_file and not Path(ca_file).is_file():
        raise PacsSettingsError("The CA certificate file does not exist.")
    auth = AuthKind(settings.auth)
    username = settings.username.strip()
    if auth is AuthKind.BASIC and not username:
        raise PacsSettingsError("Basic authentication needs a user name.")
    if not 1 <= settings.timeout_s <= 600:
        raise PacsSettingsError("The timeout must be between 1 and 600 seconds.")
    return DicomWebSettings(url, ca_file, auth, username if auth is AuthKind.BASIC else "", float(settings.timeout_s))


def _valid_ae(title: str, which: str) -> str:
    title = title.strip()
    if not 1 <= len(title) <= 16 or not title.isascii() or not title.isprintable() or "\\" in title:
        raise PacsSettingsError(f"The {which} AE title must be 1 to 16 plain characters (letters, digits, _ or -).")
    return title


def _valid_dimse(settings: DimseSettings) -> DimseSettings:
    host = settings.host.strip()
    if not host:
        raise PacsSettingsError("Give the PACS's host name or IP address.")
    if not 1 <= int(settings.port) <= 65535:
        raise PacsSettingsError("The port must be a number from 1 to 65535.")
    if not 1 <= settings.timeout_s <= 600:
        raise PacsSettingsError("The timeout must be between 1 and 600 seconds.")
    method = RetrieveMethod(settings.retrieve)
    if method is RetrieveMethod.MOVE and not 1 <= int(settings.move_port) <= 65535:
        raise PacsSettingsError("C-MOVE needs the port this workstation receives images on (1 to 65535), as "
                                "registered at the PACS.")
    tls_ca_file = settings.tls_ca_file.strip()
    if tls_ca_file and not Path(tls_ca_file).is_file():
        raise PacsSettingsError("The CA certificate file for DICOM over TLS does not exist.")
    if tls_ca_file and method is RetrieveMethod.MOVE:
        raise PacsSettingsError("With TLS, retrieve by C-GET: PneumoDesk does not receive C-MOVE transfers over TLS.")
    return DimseSettings(host, int(settings.port), _valid_ae(settings.remote_ae, "PACS's"),
                         _valid_ae(settings.local_ae, "workstation's"), float(settings.timeout_s), method,
                         int(settings.move_port) if method is RetrieveMethod.MOVE else 0, tls_ca_file)
