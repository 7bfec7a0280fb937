"""The coordinator's folder layout and its JSON configuration file (no secrets inside: keys live in files 0600)."""

from __future__ import annotations

import json
import os
import secrets
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path

from .errors import ConfigurationError

CONFIG_FILE = "coordinator.json"


@dataclass(frozen=True)
class CoordinatorPaths:
    """Where everything lives under the coordinator's folder DIR."""

    root: Path

    @property
    def config(self) -> Path:
        return self.root / CONFIG_FILE

    @property
    def tls(self) -> Path:
        return self.root / "tls"

    @property
    def ca_cert(self) -> Path:
        """The federation CA certificate: the file every node pins at enrolment."""
        return self.tls / "ca.pem"

    @property
    def ca_key(self) -> Path:
        return self.tls / "ca-key.pem"

    @property
    def server_cert(self) -> Path:
        return self.tls / "server.pem"

    @property
    def server_key(self) -> Path:
        return self.tls / "server-key.pem"

    @property
    def token_key(self) -> Path:
        """Ed25519 private key that signs the coordinator's JWTs."""
        return self.root / "keys" / "token-signing-ed25519.pem"

    @property
    def blobs(self) -> Path:
        return self.root / "blobs"

    @property
    def sqlite(self) -> Path:
        return self.root / "coordinator.db"


@dataclass(frozen=True)
class CoordinatorConfig:
    """Settings read from DIR/coordinator.json; every field has a safe default.

    ``federation_id`` is random per federation and is part of the token issuer and audience, so tokens of one
    federation are worthless at another.
    """

    federation_id: str = field(default_factory=lambda: secrets.token_hex(8))
    database_url: str = ""  # empty: SQLite at DIR/coordinator.db (WAL)
    host: str = "127.0.0.1"
    port: int = 8443
    node_token_seconds: int = 900
    operator_token_seconds: int = 3600
    challenge_seconds: int = 120
    enrolment_code_hours: float = 24.0
    max_json_bytes: int = 64 * 1024
    max_update_bytes: int = 512 * 1024 * 1024
    login_attempts_per_minute: int = 10  # per client address and per user name; counted before checking
    concurrent_login_checks: int = 2  # argon2 checks at once; more logins at the same moment are refused (429)
    token_requests_per_minute: int = 30
    enrol_attempts_per_minute: int = 30
    sweep_seconds: float = 1.0
    long_poll_max_seconds: float = 60.0
    keep_alive_seconds: int = 75  # idle HTTPS connections stay open this long: nodes between phases keep theirs
    idle_upload_buffers_mb: int = 1024  # received updates' buffers kept for reuse (the kernel need not zero them)

    @property
    def issuer(self) -> str:
        return f"pneumodesk-coordinator:{self.federation_id}"

    @property
    def node_audience(self) -> str:
        return f"pneumodesk-node:{self.federation_id}"

    @property
    def operator_audience(self) -> str:
        return f"pneumodesk-operator:{self.federation_id}"

    def resolved_database_url(self, paths: CoordinatorPaths) -> str:
        return self.database_url or f"sqlite:///{paths.sqlite}"

    def save(self, paths: CoordinatorPaths) -> None:
        paths.root.mkdir(parents=True, exist_ok=True)
        paths.config.write_text(json.dumps(asdict(self), indent=2) + "\n", encoding="utf-8")

    @classmethod
    def load(cls, paths: CoordinatorPaths) -> CoordinatorConfig:
        try:
            data = json.loads(paths.config.read_text(encoding="utf-8"))
        except FileNotFoundError:
            raise ConfigurationError(
                f"{paths.root} is not a coordinator folder (no {CONFIG_FILE}); run `pneumodesk-coordinator init` first."
            ) from None
        except (OSError, json.JSONDecodeError) as error:
            raise ConfigurationError(f"Cannot read {paths.config}: {error}.") from None
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(data) - known)
        if unknown:
            raise ConfigurationError(f"Unknown settings in {paths.config}: {', '.join(unknown)}.")
        return cls(**data)


def write_private(path: Path, data: bytes) -> None:
    """Write a secret file readable by its owner only (created 0600 before any byte is written)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(descriptor, "wb") as handle:
        handle.write(data)
