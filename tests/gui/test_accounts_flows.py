"""Accounts in the desktop app: first-run Owner set-up, sign-in, the idle lock that keeps the worklist, an
administrator creating an account whose holder then sees only what the role allows."""

from __future__ import annotations

from pathlib import Path

import pytest
from PySide6.QtCore import Qt

from pneumodesk.gui.dialogs.gate import GateMode
from pneumodesk.gui.main_window import MainWindow
from pneumodesk.model.default import samples_path
from pneumodesk.node import NodeService, Permission, PermissionDenied
from tests.gui.conftest import LOAD_TIMEOUT_MS, run_batch
from tests.node_builders import CLINICIAN, OWNER, sign_in

OWNER_PASSWORD = "lantern orchard 5521"
OWNER_PAGES = ["Predict", "PACS", "Datasets", "Federation", "Training", "Models", "Accounts", "Audit", "Settings"]


def pages(window: MainWindow) -> list[str]:
    return [window.sidebar.item(i).text() for i in range(window.sidebar.count())]


def type_into(qtbot, field, text: str) -> None:
    field.clear()
    qtbot.keyClicks(field, text)


def open_window(qtbot, home: Path, bundle: Path, session=None) -> MainWindow:
    window = MainWindow(home=home, bundle=bundle, session=session)
    qtbot.addWidget(window)
    window.show()
    qtbot.waitUntil(lambda: window.predictor is not None, timeout=LOAD_TIMEOUT_MS)
    return window


def sign_in_through_gate(qtbot, window: MainWindow, username: str, password: str) -> None:
    gate = window.gate
    type_into(qtbot, gate.username, username)
    type_into(qtbot, gate.password, password)
    qtbot.mouseClick(gate.sign_in_button, Qt.MouseButton.LeftButton)


def test_first_run_creates_the_owner_then_signs_in(qtbot, tmp_path, tiny_bundle_dir):
    window = open_window(qtbot, tmp_path / "fresh-home", tiny_bundle_dir)
    gate = window.gate
    assert window.root.currentWidget() is gate and gate.mode is GateMode.SETUP
    assert not window.actions_by_id["open_files"].isEnabled()

    type_into(qtbot, gate.setup_username, "Olivia.Owner")
    type_into(qtbot, gate.setup_display, "Olivia Owner")
    type_into(qtbot, gate.setup_password, "short")
    type_into(qtbot, gate.setup_repeat, "short")
    qtbot.mouseClick(gate.setup_button, Qt.MouseButton.LeftButton)
    refused = gate.setup_panel.message.text()
    type_into(qtbot, gate.setup_password, OWNER_PASSWORD)
    type_into(qtbot, gate.setup_repeat, OWNER_PASSWORD)
    qtbot.mouseClick(gate.setup_button, Qt.MouseButton.LeftButton)
    assert gate.mode is GateMode.SIGN_IN and gate.username.text() == "olivia.owner"
    with qtbot.waitSignal(window.signed_in, timeout=5000):
        type_into(qtbot, gate.password, OWNER_PASSWORD)
        qtbot.mouseClick(gate.sign_in_button, Qt.MouseButton.LeftButton)

    assert "at least 12" in refused
    assert window.root.currentWidget() is window.workspace
    assert pages(window) == OWNER_PAGES
    assert window.account_label.text() == "Olivia Owner · Owner"
    assert window.actions_by_id["open_files"].isEnabled() and window.actions_by_id["export_pdf"].isVisible()
    assert not gate.setup_password.text() and not gate.password.text()  # no password left in a field


def test_a_wrong_password_is_refused_in_plain_words(qtbot, home, tiny_bundle_dir):
    window = open_window(qtbot, home, tiny_bundle_dir)
    assert window.gate.mode is GateMode.SIGN_IN

    sign_in_through_gate(qtbot, window, CLINICIAN[0], "not the password 1")
    message = window.gate.sign_in_panel.message.text()
    with qtbot.waitSignal(window.signed_in, timeout=5000):
        sign_in_through_gate(qtbot, window, CLINICIAN[0], CLINICIAN[2])

    assert message == "Wrong user name or password."
    assert pages(window) == ["Predict", "PACS", "Settings"]


def test_the_idle_lock_hides_the_worklist_and_unlocking_gives_it_back(qtbot, window):
    run_batch(qtbot, window, [samples_path()])
    page = window.predict_page
    page.select_proxy_row(2)
    before = ([item.name for item in page.visible_items()], page.current_row())

    window.idle.set_timeout_ms(50)
    with qtbot.waitSignal(window.locked, timeout=5000):
        pass
    locked_view = (window.root.currentWidget() is window.gate, window.gate.mode,
                   window.actions_by_id["next_image"].isEnabled(), window.actions_by_id["export_csv"].isEnabled())
    window.idle.set_timeout_ms(10 * 60_000)
    type_into(qtbot, window.gate.unlock_password, "not the password 1")
    qtbot.mouseClick(window.gate.unlock_button, Qt.MouseButton.LeftButton)
    refused = window.gate.lock_panel.message.text()
    with qtbot.waitSignal(window.unlocked, timeout=5000):
        type_into(qtbot, window.gate.unlock_password, CLINICIAN[2])
        qtbot.mouseClick(window.gate.unlock_button, Qt.MouseButton.LeftButton)

    assert locked_view == (True, GateMode.LOCKED, False, False)
    assert refused == "Wrong user name or password."
    assert window.root.currentWidget() is window.workspace and window.pages.currentWidget() is page
    assert ([item.name for item in page.visible_items()], page.current_row()) == before
    assert window.actions_by_id["next_image"].isEnabled()


def test_the_lock_keeps_a_running_batch_going(qtbot, window, tmp_path):
    from tests.gui.conftest import BATCH_TIMEOUT_MS, many_copies

    page = window.predict_page
    with qtbot.waitSignal(page.batch_finished, timeout=BATCH_TIMEOUT_MS) as finished:
        page.add_paths(many_copies(tmp_path / "many", 40))
        window.lock()
    assert window.is_locked and finished.args == [False]
    assert len(page.model.entries()) == 40


def test_an_admin_creates_an_account_whose_holder_gets_the_restricted_view(qtbot, home, tiny_bundle_dir):
    owner = open_window(qtbot, home, tiny_bundle_dir, sign_in(home, OWNER[0], OWNER[2]))
    owner.show_page("Accounts")
    accounts = owner.accounts_page
    type_into(qtbot, accounts.new_username, "cora.compliance")
    type_into(qtbot, accounts.new_display, "Cora Compliance")
    accounts.new_role.setCurrentText("Compliance officer")
    type_into(qtbot, accounts.new_password, "harbour light 3310")
    qtbot.mouseClick(accounts.create_button, Qt.MouseButton.LeftButton)
    listed = [accounts.table.item(r, 0).text() for r in range(accounts.table.rowCount())]
    owner.close()

    window = open_window(qtbot, home, tiny_bundle_dir)
    sign_in_through_gate(qtbot, window, "cora.compliance", "harbour light 3310")
    forced = window.gate.mode
    with qtbot.waitSignal(window.signed_in, timeout=5000):
        type_into(qtbot, window.gate.current_password, "harbour light 3310")
        type_into(qtbot, window.gate.new_password, "quiet valley 2207")
        type_into(qtbot, window.gate.repeat_password, "quiet valley 2207")
        qtbot.mouseClick(window.gate.change_button, Qt.MouseButton.LeftButton)

    assert "cora.compliance" in listed and "Created cora.compliance" in accounts.message.text()
    assert forced is GateMode.CHANGE_PASSWORD and not window.gate.cancel_change_button.isVisibleTo(window.gate)
    assert pages(window) == ["Audit", "Settings"]
    assert window.pages.currentWidget() is window.audit_page
    assert not window.actions_by_id["open_files"].isVisible() and not window.actions_by_id["agree"].isVisible()
    assert window.predict_page.add_paths([samples_path()]) == []  # the service refuses it too
    assert "does not allow you to run predictions" in window.predict_page.summary.text()


def test_a_clinician_without_export_reports_sees_no_export_and_the_service_refuses(qtbot, home, tiny_bundle_dir,
                                                                                  tmp_path):
    owner = open_window(qtbot, home, tiny_bundle_dir, sign_in(home, OWNER[0], OWNER[2]))
    owner.show_page("Accounts")  # pages read their data when shown
    owner.accounts_page.role_editor.set_permission("Clinician", Permission.EXPORT_REPORTS, False)
    saved = owner.accounts_page.message.text()
    owner.close()

    window = open_window(qtbot, home, tiny_bundle_dir, sign_in(home, CLINICIAN[0], CLINICIAN[2]))
    run_batch(qtbot, window, [samples_path()])

    assert saved == "Saved what the role Clinician may do."
    assert not window.actions_by_id["export_csv"].isVisible() and not window.actions_by_id["export_pdf"].isVisible()
    with pytest.raises(PermissionDenied):
        window.predict_page.export_csv(tmp_path / "w.csv")
    assert not (tmp_path / "w.csv").exists()
    node = NodeService.open(home)
    denied = node.audit.read(user=CLINICIAN[0], action="export_reports")
    node.close()
    assert [e.outcome for e in denied] == ["denied"]


def test_predictions_verdicts_and_exports_are_audited_without_file_names(qtbot, window, home, xray_folder, tmp_path):
    run_batch(qtbot, window, [xray_folder])
    page = window.predict_page
    page.select_proxy_row(0)
    page.set_verdict("agree")
    page.export_csv(tmp_path / "worklist.csv")

    node = NodeService.open(home)
    entries = node.audit.read(user=CLINICIAN[0])
    node.close()
    by_action = {e.action: e for e in entries}
    assert by_action["predict"].details == {"count": 4, "failed": 2, "model_version": "test-1"}
    assert by_action["verdict"].details == {"verdict": "agree", "model_version": "test-1"}
    assert by_action["export"].target == "worklist_csv" and by_action["export"].details == {"count": 6}
    text = repr(entries)
    for secret in ("a_chest", "broken", "worklist.csv", str(xray_folder), str(tmp_path)):
        assert secret not in text


def test_the_audit_page_filters_verifies_and_exports_csv(qtbot, home, tiny_bundle_dir, tmp_path):
    window = open_window(qtbot, home, tiny_bundle_dir, sign_in(home, OWNER[0], OWNER[2]))
    window.show_page("Audit")
    audit = window.audit_page

    audit.set_filters(action="login")
    logins = [(r.user, r.action) for r in audit.records]
    audit.set_filters(user=CLINICIAN[0])
    clinician_actions = {r.action for r in audit.records}
    intact = (audit.verify(), audit.message.text())
    written = audit.export_csv(tmp_path / "audit.csv")

    assert logins and all(action == "login" for _, action in logins)
    assert {user for user, _ in logins} == {OWNER[0], CLINICIAN[0]}
    assert clinician_actions == {"login", "password_changed"}
    assert intact[0] and "Chain intact" in intact[1]
    lines = written.read_text(encoding="utf-8").splitlines()
    assert lines[0] == "id,time,user,action,target,outcome,details" and len(lines) == len(audit.records) + 1


def test_a_reader_changes_their_password_from_the_account_menu(qtbot, make_window, home):
    window = make_window()
    window.actions_by_id["change_password"].trigger()
    gate = window.gate
    shown = (window.root.currentWidget() is gate, gate.mode, gate.cancel_change_button.isVisibleTo(gate))
    type_into(qtbot, gate.current_password, CLINICIAN[2])
    type_into(qtbot, gate.new_password, CLINICIAN[0] + " 2026")
    type_into(qtbot, gate.repeat_password, CLINICIAN[0] + " 2026")
    qtbot.mouseClick(gate.change_button, Qt.MouseButton.LeftButton)
    refused = gate.change_panel.message.text()
    type_into(qtbot, gate.current_password, CLINICIAN[2])
    type_into(qtbot, gate.new_password, "cedar window 6128")
    type_into(qtbot, gate.repeat_password, "cedar window 6128")
    qtbot.mouseClick(gate.change_button, Qt.MouseButton.LeftButton)

    assert shown == (True, GateMode.CHANGE_PASSWORD, True)
    assert "user name" in refused
    assert window.root.currentWidget() is window.workspace
    assert sign_in(home, CLINICIAN[0], "cedar window 6128").username == CLINICIAN[0]


def test_locking_closes_open_dialogs(qtbot, window):
    dialog = window.show_shortcuts()
    assert dialog.isVisible()

    window.actions_by_id["lock_screen"].trigger()

    assert window.is_locked and not dialog.isVisible()


def test_the_accounts_page_disables_resets_and_refuses_in_plain_words(qtbot, home, tiny_bundle_dir):
    window = open_window(qtbot, home, tiny_bundle_dir, sign_in(home, OWNER[0], OWNER[2]))
    window.show_page("Accounts")
    page = window.accounts_page

    page.select(CLINICIAN[0])
    qtbot.mouseClick(page.disable_button, Qt.MouseButton.LeftButton)
    disabled = (page.message.text(), page.table.item(page.accounts.index(
        next(a for a in page.accounts if a.username == CLINICIAN[0])), 3).text())
    type_into(qtbot, page.reset_field, "fresh start 4410")
    qtbot.mouseClick(page.reset_button, Qt.MouseButton.LeftButton)
    reset = page.message.text()
    page.select(OWNER[0])
    qtbot.mouseClick(page.disable_button, Qt.MouseButton.LeftButton)
    self_disable = page.message.text()
    page.role_choice.setCurrentText("Clinician")
    qtbot.mouseClick(page.role_button, Qt.MouseButton.LeftButton)
    last_owner = page.message.text()

    assert disabled == (f"{CLINICIAN[0]} is now disabled.", "disabled")
    assert "must change it at their next sign-in" in reset and not page.reset_field.text()
    assert self_disable == "You cannot disable your own account."
    assert "last Owner" in last_owner
    assert window.session.role == "Owner" and pages(window) == OWNER_PAGES
