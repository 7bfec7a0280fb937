"""The local model registry: every model bundle this node has used or been offered, kept under
``home/models/<id>/``, and which one is the prediction model.

Invariants: exactly one model is ``active`` at a time; the bundled default model is entry 1 (registered, as a
copy, the first time the registry is used); a new global model arrives as a ``candidate`` (copied in and verified
against its card's sha256) and becomes active only when an admin with ``approve_training`` accepts it — the previous
active model becomes ``retired`` and can be restored; a rejected candidate stays listed but is never used. Every
change is audited.
"""

from __future__ import annotations

import datetime as dt
import json
import shutil
from dataclasses import dataclass
from enum import StrEnum
from pathlib import Path
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from .accounts import AccountService
from .audit import AuditLog
from .errors import ModelRegistryError
from .ledger import SYSTEM_ACTOR
from .models import LocalModelRow, utcnow
from .permissions import Permission
from .session import UserSession
from .store import NodeStore


class ModelStatus(StrEnum):
    """A local model's standing; exactly one is ``active`` (the prediction model). Stored by value."""

    ACTIVE = "active"
    CANDIDATE = "candidate"  # a new global model awaiting an admin's decision
    RETIRED = "retired"  # was active; can be restored
    REJECTED = "rejected"  # never used

MODELS_FOLDER = "models"
DEFAULT_SOURCE = "bundled default"
#: The source of a candidate made here by refitting the prediction model's operating points on confirmed cases;
#: accepting one is audited as ``recalibration_accepted``.
RECALIBRATION_SOURCE = "local recalibration"


@dataclass(frozen=True)
class LocalModel:
    id: int
    status: ModelStatus
    source: str  # "bundled default", "federation", …
    model_version: str
    architecture: str
    weights_sha256: str
    plan_sha256: str | None
    round_number: int | None
    global_version: int | None
    metrics: dict[str, Any]  # on the local validation split
    baseline_metrics: dict[str, Any]  # the active model's figures on the same split, when it was added
    added: dt.datetime
    decided_by: str | None
    decided_at: dt.datetime | None
    bundle_dir: Path


def _clean(metrics: dict[str, Any]) -> str:
    return json.dumps(metrics, sort_keys=True, default=float)


class LocalModelRegistry:
    def __init__(self, store: NodeStore, accounts: AccountService, audit: AuditLog, home: Path,
                 default_bundle: Path | None = None) -> None:
        self.store = store
        self.accounts = accounts
        self.audit = audit
        self.root = Path(home) / MODELS_FOLDER
        self._default_bundle = default_bundle

    # --- reading (no actor: the prediction model is not secret) ---
    def list(self) -> list[LocalModel]:
        """Every model, newest first."""
        self._ensure_default()
        with self.store.session() as session:
            return [self._model(r) for r in session.scalars(select(LocalModelRow).order_by(LocalModelRow.id.desc()))]

    def get(self, model_id: int) -> LocalModel:
        self._ensure_default()
        with self.store.session() as session:
            return self._model(self._row(session, model_id))

    def active(self) -> LocalModel:
        self._ensure_default()
        with self.store.session() as session:
            row = session.scalars(select(LocalModelRow).where(LocalModelRow.status == ModelStatus.ACTIVE.value)).one()
            return self._model(row)

    def active_bundle_dir(self) -> Path:
        """The folder of the prediction model's bundle (load it with ``model.load_bundle``)."""
        return self.active().bundle_dir

    # --- changes ---
    def add_candidate(self, bundle_dir: Path, source: str, plan_sha256: str | None, round_number: int | None,
                      global_version: int | None, metrics: dict[str, Any],
                      baseline_metrics: dict[str, Any]) -> LocalModel:
        """Copy a verified bundle in as a candidate (the participation engine, after the local acceptance check)."""
        from pneumodesk.model import ModelError, load_bundle

        self._ensure_default()
        try:
            card = load_bundle(bundle_dir).card
        except ModelError as error:
            raise ModelRegistryError(f"The new model cannot be added: {error}") from None
        model_id = self._insert(bundle_dir, ModelStatus.CANDIDATE, source, card.version, card.architecture,
                                card.weights_sha256, plan_sha256, round_number, global_version, metrics,
                                baseline_metrics)
        self.audit.append(SYSTEM_ACTOR, "model_candidate", f"model {model_id}", details={
            "model_version": card.version, "global_version": global_version, "plan_sha256": plan_sha256,
        })
        return self.get(model_id)

    def accept(self, actor: UserSession, model_id: int) -> LocalModel:
        """Make a candidate the prediction model; the current one is retired."""
        return self._activate(actor, model_id, ModelStatus.CANDIDATE, "model_accepted")

    def restore(self, actor: UserSession, model_id: int) -> LocalModel:
        """Make an earlier (retired) model the prediction model again; the current one is retired."""
        return self._activate(actor, model_id, ModelStatus.RETIRED, "model_restored")

    def reject(self, actor: UserSession, model_id: int) -> LocalModel:
        self.accounts.require(actor, Permission.APPROVE_TRAINING, f"model {model_id}")
        self._ensure_default()
        with self.store.session() as session:
            row = self._row(session, model_id)
            if row.status != ModelStatus.CANDIDATE:
                raise ModelRegistryError(f"Model {model_id} is {row.status}; only a new (candidate) model can be "
                                         "rejected.")
            row.status, row.decided_by, row.decided_at = ModelStatus.REJECTED.value, actor.username, utcnow()
            version = row.model_version
        self.audit.append(actor.username, "model_rejected", f"model {model_id}", details={"model_version": version})
        return self.get(model_id)

    # --- helpers ---
    def _activate(self, actor: UserSession, model_id: int, expected: ModelStatus, action: str) -> LocalModel:
        self.accounts.require(actor, Permission.APPROVE_TRAINING, f"model {model_id}")
        self._ensure_default()
        with self.store.session() as session:
            row = self._row(session, model_id)
            if row.status != expected:
                verb = "accepted" if expected == ModelStatus.CANDIDATE else "restored"
                raise ModelRegistryError(f"Model {model_id} is {row.status}; only a {expected} model can be {verb}.")
            current = select(LocalModelRow).where(LocalModelRow.status == ModelStatus.ACTIVE.value)
            previous = session.scalars(current).one()
            previous.status = ModelStatus.RETIRED.value
            row.status, row.decided_by, row.decided_at = ModelStatus.ACTIVE.value, actor.username, utcnow()
            details: dict[str, str | int] = {"model_version": row.model_version, "previous_model": previous.id}
            if action == "model_accepted" and row.source == RECALIBRATION_SOURCE:
                action = "recalibration_accepted"
        self.audit.append(actor.username, action, f"model {model_id}", details=details)
        return self.get(model_id)

    def _ensure_default(self) -> None:
        """Register the bundled default model as entry 1, active, the first time the registry is used."""
        with self.store.session() as session:
            if session.scalar(select(func.count()).select_from(LocalModelRow)):
                return
        from pneumodesk.model import load_bundle
        from pneumodesk.model.default import default_bundle_path

        source = self._default_bundle or default_bundle_path()
        card = load_bundle(source).card
        model_id = self._insert(source, ModelStatus.ACTIVE, DEFAULT_SOURCE, card.version, card.architecture,
                                card.weights_sha256, None, None, None, dict(card.validation), {})
        if model_id == 0:
            return
        self.audit.append(SYSTEM_ACTOR, "model_registered", f"model {model_id}",
                          details={"model_version": card.version, "status": ModelStatus.ACTIVE.value})

    def _insert(self, bundle_dir: Path, status: ModelStatus, source: str, version: str, architecture: str, sha: str,
                plan_sha256: str | None, round_number: int | None, global_version: int | None,
                metrics: dict[str, Any], baseline: dict[str, Any]) -> int:
        """Row first (its id names the folder), then the copy; a failed copy leaves no row behind."""
        from pneumodesk.model import CARD_FILE, OOD_FILE, WEIGHTS_FILE

        with self.store.session() as session:
            if status == ModelStatus.ACTIVE and session.scalar(select(func.count()).select_from(LocalModelRow)):
                return 0  # another process registered the default meanwhile
            row = LocalModelRow(status=status.value, source=source[:128], model_version=version[:128],
                                architecture=architecture, weights_sha256=sha, plan_sha256=plan_sha256,
                                round_number=round_number, global_version=global_version, metrics=_clean(metrics),
                                baseline_metrics=_clean(baseline), added=utcnow(), decided_by=None, decided_at=None)
            session.add(row)
            session.flush()
            target = self.root / str(row.id)
            if target.exists():
                shutil.rmtree(target)
            target.mkdir(parents=True)
            # The bundle itself, nothing else from its folder; its out-of-distribution statistics when it has them
            # (the card names them by sha256, so loading checks the copy).
            for name in (CARD_FILE, WEIGHTS_FILE, OOD_FILE):
                if name != OOD_FILE or (Path(bundle_dir) / name).is_file():
                    shutil.copy2(Path(bundle_dir) / name, target / name)
            return row.id

    @staticmethod
    def _row(session: Session, model_id: int) -> LocalModelRow:
        row = session.get(LocalModelRow, model_id)
        if row is None:
            raise ModelRegistryError(f"There is no local model {model_id}.")
        return row

    def _model(self, r: LocalModelRow) -> LocalModel:
        return LocalModel(r.id, ModelStatus(r.status), r.source, r.model_version, r.architecture,
                          r.weights_sha256, r.plan_sha256, r.round_number, r.global_version, json.loads(r.metrics),
                          json.loads(r.baseline_metrics), r.added, r.decided_by, r.decided_at, self.root / str(r.id))
