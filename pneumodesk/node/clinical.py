"""Clinical actions done in the GUI (predictions, verdicts, exports), checked and audited here so the desktop and
any other front end enforce the same rules.

Invariant: audit details carry counts, kinds, verdicts and model versions only, never a file name, path, image
hash or pixel (DESIGN invariant 1 applies to what the log could later reveal, too).
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from .accounts import AccountService
from .audit import FAILED, AuditLog
from .permissions import Permission
from .session import UserSession

EXPORT_KINDS = ("report_pdf", "worklist_csv", "worklist_pdf")
VERDICTS = ("agree", "disagree", "cleared")


class ClinicalService:
    def __init__(self, accounts: AccountService, audit: AuditLog) -> None:
        self.accounts = accounts
        self.audit = audit

    def authorize_prediction(self, actor: UserSession, count: int) -> None:
        """Raise ``PermissionDenied`` unless the actor may predict; call before any image is read."""
        self.accounts.require(actor, Permission.PREDICT, f"{count} image(s)")

    def record_predictions(self, actor: UserSession, count: int, failed: int, model_version: str) -> None:
        """After a batch: how many images were predicted (and failed) with which model version."""
        self.audit.append(actor.username, "predict", "worklist",
                          details={"count": int(count), "failed": int(failed), "model_version": model_version})

    def record_verdict(self, actor: UserSession, verdict: str | None, model_version: str,
                       store: Callable[[], None]) -> None:
        """Check ``review``, then keep the verdict (``store``) and its audit entry together.

        The audit entry is written first and committed after ``store`` returns, in one transaction: a store that is
        locked, read-only or full refuses before the verdict is kept (``NodeStoreError``, nothing kept), and a
        failing ``store`` rolls the entry back. Only a disk that fills during the final commit itself can leave the
        verdict kept without its entry; the error is raised then too, so nothing is reported saved that is not.
        """
        self.accounts.require(actor, Permission.REVIEW, "verdict")
        label = verdict or "cleared"
        if label not in VERDICTS:
            raise ValueError(f"unknown verdict {verdict!r}")
        with self.audit.store.session() as session:
            self.audit.append_in(session, actor.username, "verdict", "image",
                                 details={"verdict": label, "model_version": model_version})
            session.flush()
            store()

    def export(self, actor: UserSession, kind: str, count: int, write: Callable[[], Path]) -> Path:
        """Check ``export_reports``, run ``write`` and audit the outcome (the file's name is not recorded)."""
        if kind not in EXPORT_KINDS:
            raise ValueError(f"unknown export kind {kind!r}")
        self.accounts.require(actor, Permission.EXPORT_REPORTS, kind)
        try:
            written = write()
        except Exception as error:
            self.audit.append(actor.username, "export", kind, FAILED, {"count": int(count),
                                                                       "error": type(error).__name__})
            raise
        self.audit.append(actor.username, "export", kind, details={"count": int(count)})
        return written
