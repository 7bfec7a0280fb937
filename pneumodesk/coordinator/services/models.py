"""Global model versions: importing bundles, listing, serving weights and exporting bundles.

Invariants: weights live in the blob store under their sha256 (verified on every read); a version's row is added in
the transaction that audits it; an export is verified to load before it is reported as done.
"""

from __future__ import annotations

import json
from pathlib import Path

from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from pneumodesk.federation.messages import ModelVersionInfo

from ..audit import SYSTEM, AuditLog
from ..blobs import BlobStore, Weights
from ..db import ModelVersion, utcnow
from ..errors import Conflict, InvalidInput, NotFound
from ..views import model_info


class ModelService:
    def __init__(self, sessions: sessionmaker[Session], audit: AuditLog, blobs: BlobStore) -> None:
        self._sessions, self._audit, self._blobs = sessions, audit, blobs

    def import_bundle(self, bundle_dir: Path, *, actor: str = SYSTEM) -> ModelVersionInfo:
        """Add a verified model bundle as a new root model version (e.g. the bundled default model at init)."""
        from pneumodesk.model import WEIGHTS_FILE, ModelError, load_bundle  # torch, only when needed

        try:
            bundle = load_bundle(bundle_dir)
        except ModelError as error:
            raise InvalidInput(str(error)) from None
        weights = (Path(bundle_dir) / WEIGHTS_FILE).read_bytes()
        sha = self._blobs.put(weights)
        with self._sessions() as session:
            model = ModelVersion(sha256=sha, architecture=bundle.card.architecture,
                                 card_json=json.dumps(bundle.card.to_json_dict(), sort_keys=True),
                                 size_bytes=len(weights), created=utcnow())
            session.add(model)
            session.flush()
            self._audit.add(session, actor, "model.import", f"version {model.version}",
                            {"sha256": sha, "architecture": model.architecture})
            session.commit()
            return model_info(model)

    def list(self) -> list[ModelVersionInfo]:
        with self._sessions() as session:
            return [model_info(m) for m in session.scalars(select(ModelVersion).order_by(ModelVersion.version))]

    def weights(self, version: int) -> tuple[Weights, str]:
        """The version's safetensors bytes (kept in memory: every node downloads them) and their sha256."""
        sha = self._row(version).sha256
        return self._blobs.get(sha, cache=True), sha

    def export(self, version: int, out: Path, *, actor: str = SYSTEM) -> Path:
        """Write model version ``version`` as a bundle folder (weights + card), then verify it loads."""
        from pneumodesk.model import CARD_FILE, WEIGHTS_FILE, ModelError, load_bundle  # torch, only when needed

        weights, _sha = self.weights(version)
        card = self._row(version).card_json
        out = Path(out)
        if out.exists() and any(out.iterdir()):
            raise Conflict(f"{out} exists and is not empty; choose a new folder.")
        out.mkdir(parents=True, exist_ok=True)
        (out / WEIGHTS_FILE).write_bytes(weights)
        (out / CARD_FILE).write_text(json.dumps(json.loads(card), indent=2) + "\n", encoding="utf-8")
        try:
            load_bundle(out)
        except ModelError as error:
            raise InvalidInput(f"The exported bundle does not load: {error}") from None
        self._audit.append(actor, "model.export", f"version {version}", {"out": str(out.resolve())})
        return out

    def _row(self, version: int) -> ModelVersion:
        with self._sessions() as session:
            model = session.get(ModelVersion, version)
        if model is None:
            raise NotFound(f"There is no model version {version}.")
        return model
