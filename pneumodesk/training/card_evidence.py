"""What the generalisation yardstick measured, written into a model bundle's card (``card.extra["generalisation"]``).

A card must say how far its figures carry beyond the validation split: the shift suite of the bundle itself and the
patient-grouped cross-validation of its recipe (``benchmarks/shift_suite.py`` prints both as JSON; this module keeps
the figures a reader needs — values and 95 % CIs — and how they were measured). Invariant: only the card changes;
the weights and the out-of-distribution statistics are written back byte for byte (their sha256s stay).
"""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from pneumodesk.model import ModelBundle, load_bundle

from .yardstick import summarise_folds

GENERALISATION = "generalisation"


def _rate(row: dict[str, Any]) -> list[float]:
    """[value, CI low, CI high] of a bootstrapped proportion."""
    return [row["value"], *row["ci95"]]


def compact_shift_suite(report: dict[str, Any]) -> dict[str, Any]:
    """The shift-suite figures of one bundle: per condition ROC-AUC with its CI and sensitivity/specificity
    [value, CI low, CI high] at the bundle's operating point; the worst case and the median over the shifts."""
    return {
        "kind": "shift suite",
        "images": {"total": report["images"], "pneumonia": report["pneumonia"], "normal": report["normal"]},
        "operating_point": report["operating_point"],
        "conditions": {
            name: {"roc_auc": row["roc_auc"], "roc_auc_ci95": row["roc_auc_ci95"],
                   "sensitivity": _rate(row["sensitivity"]), "specificity": _rate(row["specificity"])}
            for name, row in report["conditions"].items()
        },
        "worst_case": report["worst_case"],
        "median_over_shifts": report["median_over_shifts"],
    }


def compact_cross_validation(report: dict[str, Any]) -> dict[str, Any]:
    """A k-fold report: the recipe it cross-validated, the summary (recomputed from the folds, so a report saved
    before the summary grew reads the same), and each fold's ROC-AUC (with its CI)."""
    return {
        "kind": "cross-validation",
        "folds": report["folds"],
        "images": report["images"],
        "recipe": report["recipe"],
        "summary": summarise_folds(report["per_fold"]),
        "per_fold": [
            {"fold": row["fold"], "roc_auc": row["roc_auc"], "roc_auc_ci95": row["roc_auc_ci95"],
             **({"worst_shift_roc_auc": row["worst_shift_roc_auc"]} if "worst_shift_roc_auc" in row else {})}
            for row in report["per_fold"]
        ],
    }


def compact_report(report: dict[str, Any]) -> dict[str, Any]:
    """Either kind of yardstick report (as ``benchmarks/shift_suite.py`` prints it for one bundle or one recipe)."""
    if "per_fold" in report:
        return compact_cross_validation(report)
    if "conditions" in report:
        return compact_shift_suite(report)
    raise ValueError("Not a report of one bundle's shift suite or of one recipe's cross-validation "
                     "(a side-by-side report of several bundles: run the suite on this bundle alone).")


def record_evaluation(bundle_dir: Path, name: str, report: dict[str, Any], *, command: str = "",
                      note: str = "") -> dict[str, Any]:
    """Write the compacted ``report`` into the card of the bundle in ``bundle_dir`` under ``name`` (replacing an
    entry of that name); returns the entry. The bundle is verified on load and re-saved with the same files."""
    bundle = load_bundle(bundle_dir)
    entry = {**compact_report(report), "measured": datetime.now(UTC).date().isoformat(),
             **({"command": command} if command else {}), **({"note": note} if note else {})}
    recorded = dict(bundle.card.extra.get(GENERALISATION, {}))
    recorded[name] = entry
    card = bundle.card.with_updates(extra={**bundle.card.extra, GENERALISATION: recorded})
    ModelBundle(card, bundle.state_dict, bundle.ood).save(bundle_dir)
    return entry
