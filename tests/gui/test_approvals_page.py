"""The Training page and the plan review dialog: a plan in plain words with its privacy cost for the chosen dataset;
a plan outside policy shows every reason with Approve disabled; approve (audited by plan hash) and withdraw; the
policy editor; the privacy ledger."""

from __future__ import annotations

import pytest
from PySide6.QtCore import Qt

from pneumodesk.federation import TrainingPlan
from pneumodesk.gui.dialogs.plan_review import PlanReviewDialog
from pneumodesk.gui.main_window import MainWindow
from tests.node_builders import OWNER, sign_in

COST_TIMEOUT_MS = 60_000
URL = "https://127.0.0.1:8443"


def plan(**changes: object) -> TrainingPlan:
    fields = {
        "name": "Pneumonia refresh 2026", "architecture": "pneumonet-tiny", "input_size": 32,
        "base_model_sha256": "ab" * 32, "learning_rate": 0.05, "batch_size": 8, "local_epochs": 1, "rounds": 2,
        "min_nodes": 3, "secure_aggregation": True, "dp": {"enabled": True, "target_epsilon": 4.0},
    }
    return TrainingPlan.model_validate({**fields, **changes})


@pytest.fixture
def owner_window(qtbot, make_window, home, labelled_folder) -> MainWindow:
    owner = sign_in(home, OWNER[0], OWNER[2])
    window = make_window(as_user=owner)
    window.node.datasets.register(owner, "Ward A", labelled_folder)
    window.show_page("Training")
    return window


def reviewed(qtbot, dialog: PlanReviewDialog) -> PlanReviewDialog:
    qtbot.addWidget(dialog)
    qtbot.waitUntil(lambda: not dialog.cost_pending, timeout=COST_TIMEOUT_MS)
    return dialog


def test_a_plan_outside_policy_lists_every_reason_and_cannot_be_approved(qtbot, owner_window):
    page = owner_window.approvals_page
    outside = plan(secure_aggregation=False, min_nodes=1, rounds=500, dp={"enabled": False})

    dialog = reviewed(qtbot, page.review_plan(outside, URL))
    approved = dialog.approve()

    reasons = dialog.objections.text()
    assert not dialog.approve_button.isEnabled() and not approved
    assert "outside this workstation's policy" in reasons
    for words in ("secure aggregation", "without differential privacy", "500 rounds", "at least 3"):
        assert words in reasons, words
    assert "cannot be approved" in dialog.approve_button.toolTip()
    assert "No differential privacy" in dialog.description.toPlainText()
    assert page.node.approvals.active(outside.sha256) is None


def test_a_plan_in_plain_words_is_approved_audited_and_withdrawn(qtbot, owner_window):
    page = owner_window.approvals_page
    within = plan()
    dialog = reviewed(qtbot, page.review_plan(within, URL))
    text = dialog.description.toPlainText()

    assert dialog.violations == [] and dialog.approve_button.isEnabled()
    for words in ("pneumonet-tiny", "32×32", "Ward A", "2 round(s)", "1 pass(es)", "learning rate 0.05",
                  "batch size 8", "per round", "in total", "δ = 1e-05", "Secure aggregation: on",
                  "What will leave this workstation", "the number of training examples", "What never leaves",
                  "file names"):
        assert words in text, words
    assert dialog.cost is not None and 0 < dialog.cost.epsilon_per_round < dialog.cost.epsilon_total <= 4.0 + 0.01

    with qtbot.waitSignal(dialog.approved, timeout=5000):
        qtbot.mouseClick(dialog.approve_button, Qt.MouseButton.LeftButton)

    entry = page.node.audit.read(action="plan_approved")[0]
    assert entry.target == within.sha256 and entry.user == OWNER[0]
    assert not dialog.approve_button.isEnabled() and "Approved by olivia.owner" in dialog.state.text()
    assert page.approvals_table.rowCount() == 1 and page.approvals_table.item(0, 6).text() == "active"
    assert page.ledger_table.item(0, 0).text() == "Ward A" and page.ledger_table.item(0, 1).text() == "0.00"
    assert float(page.ledger_table.item(0, 2).text()) == pytest.approx(dialog.cost.epsilon_total, abs=0.005)

    page.approvals_table.selectRow(0)
    assert page.withdraw_selected()

    assert page.node.approvals.active(within.sha256) is None
    assert page.approvals_table.item(0, 6).text().startswith("withdrawn")
    assert page.node.audit.read(action="plan_withdrawn")[0].target == within.sha256


def test_a_changed_plan_needs_its_own_approval(qtbot, owner_window):
    page = owner_window.approvals_page
    first = reviewed(qtbot, page.review_plan(plan(), URL))
    assert first.approve()

    changed = reviewed(qtbot, page.review_plan(plan(learning_rate=0.5), URL))

    assert changed.active_approval() is None and changed.approve_button.isEnabled()


def test_a_second_plan_that_would_not_fit_beside_an_approved_one_says_why(qtbot, owner_window):
    page = owner_window.approvals_page
    page.node.policy.set(page.session, page.node.policy.get().with_settings(epsilon_cap_per_dataset=6.0))
    first = reviewed(qtbot, page.review_plan(plan(), URL))
    assert first.approve()

    second = reviewed(qtbot, page.review_plan(plan(learning_rate=0.5), URL))

    assert not second.approve_button.isEnabled()
    assert "other approved plans may still spend ε = " in second.objections.text()
    assert "other approved plans may still spend" in second.description.toPlainText()
    assert "other approved plans" not in first.objections.text()  # a plan does not hold room against itself


def test_the_policy_editor_saves_and_the_cap_then_refuses_the_plan(qtbot, owner_window):
    page = owner_window.approvals_page
    editor = page.policy_editor
    editor.epsilon_cap.setValue(2.0)
    editor.set_architecture_allowed("pneumonet-tiny", True)

    qtbot.mouseClick(editor.save_button, Qt.MouseButton.LeftButton)
    dialog = reviewed(qtbot, page.review_plan(plan(), URL))

    assert page.node.policy.get().epsilon_cap_per_dataset == 2.0
    assert "Policy saved" in page.message.text()
    assert page.node.audit.read(action="policy_changed")[0].details["epsilon_cap_per_dataset"] == 2.0
    assert not dialog.approve_button.isEnabled()
    assert "more than this node's cap of ε = 2" in dialog.objections.text()


def test_an_inconsistent_policy_is_refused_in_plain_words(qtbot, owner_window):
    editor = owner_window.approvals_page.policy_editor
    editor.min_batch.setValue(64)
    editor.max_batch.setValue(16)

    saved = owner_window.approvals_page.save_policy(editor.values())

    assert not saved
    assert "smallest batch size is larger than the largest" in owner_window.approvals_page.message.text()


def test_a_plan_file_is_reviewed_and_a_broken_one_refused_in_plain_words(qtbot, owner_window, tmp_path):
    page = owner_window.approvals_page
    good = tmp_path / "plan.json"
    good.write_bytes(plan().canonical_json())
    broken = tmp_path / "broken.json"
    broken.write_text('{"name": "x", "architecture": "pneumonet-tiny"}')

    dialog = page.review_plan_file(good)
    qtbot.addWidget(dialog)
    refused = page.review_plan_file(broken)

    assert dialog is not None and dialog.plan == plan()
    assert refused is None and page.message.text().startswith("The training plan is not valid")
