"""The peers of the last secure round this node was shown, by node id and key fingerprint, and the admin's action that
recognises one (after comparing the fingerprint with that hospital's admin out of band) or forgets it; the service
checks *manage the federation* and audits both."""

from __future__ import annotations

from pathlib import Path

from PySide6.QtWidgets import (
    QGroupBox,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QPushButton,
    QTableWidgetItem,
    QVBoxLayout,
    QWidget,
)

from pneumodesk.client.roster_policy import last_roster
from pneumodesk.node import NodeService, UserSession
from pneumodesk.node.errors import NodeError
from pneumodesk.node.permissions import Permission
from pneumodesk.node.recognised_peers import canonical_fingerprint

from .tables import read_only_table

COLUMNS = ("Node", "Key fingerprint", "Recognised as")


class RosterPeersPanel(QGroupBox):
    def __init__(self, node: NodeService, home: Path, parent: QWidget | None = None) -> None:
        super().__init__("Hospitals in the last secure round", parent)
        self.node, self.home = node, Path(home)
        self.session: UserSession | None = None
        layout = QVBoxLayout(self)
        note = QLabel("Compare a fingerprint with that hospital's admin by telephone before recognising it; the "
                      "policy can require recognised hospitals in every secure round.")
        note.setWordWrap(True)
        layout.addWidget(note)
        self.table = read_only_table("Hospitals in the last secure round", COLUMNS)
        layout.addWidget(self.table, 1)
        row = QHBoxLayout()
        self.name_field = QLineEdit()
        self.name_field.setPlaceholderText("Hospital name")
        self.name_field.setAccessibleName("Recognised hospital name")
        self.recognise_button = QPushButton("Recognise")
        self.recognise_button.clicked.connect(self.recognise_selected)
        self.forget_button = QPushButton("Forget")
        self.forget_button.clicked.connect(self.forget_selected)
        self.message = QLabel()
        self.message.setWordWrap(True)
        for widget in (self.name_field, self.recognise_button, self.forget_button):
            row.addWidget(widget)
        layout.addLayout(row)
        layout.addWidget(self.message)

    def set_session(self, session: UserSession | None) -> None:
        self.session = session
        may = session is not None and session.can(Permission.MANAGE_FEDERATION)
        for widget in (self.name_field, self.recognise_button, self.forget_button):
            widget.setEnabled(may)
        self.refresh()

    def refresh(self) -> None:
        names = {peer.fingerprint: peer.name for peer in self.node.peers.list()}
        peers = last_roster(self.home)
        self.table.setRowCount(len(peers))
        for index, peer in enumerate(peers):
            name = names.get(canonical_fingerprint(peer.fingerprint), "")
            for column, text in enumerate((peer.node_id, peer.fingerprint, name or "not recognised")):
                self.table.setItem(index, column, QTableWidgetItem(text))

    def _selected(self) -> tuple[str, str] | None:
        row = self.table.currentRow()
        node_item, fingerprint_item = self.table.item(row, 0), self.table.item(row, 1)
        if row < 0 or node_item is None or fingerprint_item is None:
            self.message.setText("Select a hospital first.")
            return None
        return node_item.text(), fingerprint_item.text()

    def recognise_selected(self) -> bool:
        selected = self._selected()
        if selected is None or self.session is None:
            return False
        try:
            peer = self.node.peers.recognise(self.session, selected[1], self.name_field.text(), selected[0])
        except NodeError as error:
            self.message.setText(str(error))
            return False
        self.message.setText(f"{peer.name} is recognised by its key fingerprint.")
        self.refresh()
        return True

    def forget_selected(self) -> bool:
        selected = self._selected()
        if selected is None or self.session is None:
            return False
        try:
            self.node.peers.forget(self.session, selected[1])
        except NodeError as error:
            self.message.setText(str(error))
            return False
        self.message.setText(f"Node {selected[0]} is no longer recognised.")
        self.refresh()
        return True
