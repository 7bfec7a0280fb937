"""``init``: lay out a new coordinator folder (config, CA and server certificate, token key, database, operator)."""

from __future__ import annotations

from pathlib import Path

from .audit import local_actor
from .auth import TokenAuthority, hash_password
from .config import CoordinatorConfig, CoordinatorPaths
from .errors import ConfigurationError
from .tls import certificate_hosts, create_certificates


def initialise(directory: Path, *, hosts: list[str], port: int, operator: str, password: str,
               database_url: str | None = None, model: Path | None = None) -> str:
    """Create everything; refuses a folder that already holds a coordinator. Returns a summary for the operator."""
    paths = CoordinatorPaths(Path(directory))
    if paths.config.exists():
        raise ConfigurationError(f"{paths.root} already holds a coordinator; choose an empty folder.")
    hash_password(password)  # refuse a weak password before writing anything
    config = CoordinatorConfig(database_url=database_url or "", host=hosts[0] if hosts else "127.0.0.1", port=port)
    paths.root.mkdir(parents=True, exist_ok=True)
    create_certificates(paths, hosts, config.federation_id)
    TokenAuthority.create_key(paths.token_key)
    config.save(paths)

    from .service import CoordinatorService

    actor = local_actor()
    service = CoordinatorService(paths, config)
    try:
        service.create_operator(operator, password, "operator", actor=actor)
        from pneumodesk.model import default_bundle_path

        first = service.import_model(model or default_bundle_path(), actor=actor)
    finally:
        service.close()
    return (
        f"Coordinator created in {paths.root}\n"
        f"  federation id: {config.federation_id}\n"
        f"  CA certificate for nodes to pin: {paths.ca_cert}\n"
        f"  server certificate names: {', '.join(certificate_hosts(paths.server_cert))}\n"
        f"  operator: {operator}\n"
        f"  model version {first.version}: {first.architecture}, sha256 {first.sha256}"
    )
