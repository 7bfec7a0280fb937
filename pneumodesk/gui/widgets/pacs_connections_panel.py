"""The PACS connections section of Settings (administrators only): list, edit, remove and "Test connection".

Shown only to a role with manage_accounts (the service refuses anyone else anyway). The secret field is write-only:
it is never filled from the keyring; leaving it empty keeps the stored secret. The test runs in a QThread and its
answer is shown in plain words. The cache option (delete retrieved images at sign-out) is a workstation setting.
"""

from __future__ import annotations

from PySide6.QtWidgets import (
    QCheckBox,
    QComboBox,
    QFormLayout,
    QGroupBox,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QListWidget,
    QPushButton,
    QSpinBox,
    QStackedWidget,
    QVBoxLayout,
    QWidget,
)

from pneumodesk.errors import PneumoDeskError
from pneumodesk.pacs.connections import ADMIN
from pneumodesk.pacs.service import PacsService
from pneumodesk.pacs.settings import (
    AuthKind,
    DicomWebSettings,
    DimseSettings,
    PacsConnection,
    Protocol,
    RetrieveMethod,
)

from ..pages.base import SessionPage
from ..settings import Settings
from ..workers.background import BackgroundCalls


class PacsConnectionsPanel(SessionPage):
    def __init__(self, pacs: PacsService, settings: Settings, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.pacs = pacs
        self.settings = settings
        self._connections: dict[str, PacsConnection] = {}
        self.calls = BackgroundCalls("pacs-test", self)
        outer = QVBoxLayout(self)
        outer.setContentsMargins(0, 0, 0, 0)
        box = QGroupBox("PACS connections (administrators)")
        outer.addWidget(box)
        layout = QHBoxLayout(box)
        self.list = QListWidget()
        self.list.setAccessibleName("PACS connections")
        self.list.setMaximumWidth(220)
        self.list.currentTextChanged.connect(self._show_connection)
        layout.addWidget(self.list)
        right = QVBoxLayout()
        layout.addLayout(right, 1)
        form = QFormLayout()
        self.name = QLineEdit()
        self.name.setAccessibleName("Connection name")
        self.protocol = QComboBox()
        self.protocol.setAccessibleName("Protocol")
        self.protocol.addItem("DICOMweb (QIDO-RS / WADO-RS)", Protocol.DICOMWEB)
        self.protocol.addItem("DIMSE (C-ECHO / C-FIND / C-GET)", Protocol.DIMSE)
        form.addRow("Name", self.name)
        form.addRow("Protocol", self.protocol)
        right.addLayout(form)

        self.stack = QStackedWidget()
        web = QWidget()
        web_form = QFormLayout(web)
        self.base_url = QLineEdit()
        self.base_url.setAccessibleName("DICOMweb base URL")
        self.base_url.setPlaceholderText("https://pacs.hospital.local/dicom-web")
        self.ca_file = QLineEdit()
        self.ca_file.setAccessibleName("CA certificate file")
        self.auth = QComboBox()
        self.auth.setAccessibleName("Authentication")
        for label, kind in (("None", AuthKind.NONE), ("User name and password", AuthKind.BASIC),
                            ("Bearer token", AuthKind.BEARER)):
            self.auth.addItem(label, kind)
        self.username = QLineEdit()
        self.username.setAccessibleName("PACS user name")
        self.secret = QLineEdit()
        self.secret.setAccessibleName("PACS password or token")
        self.secret.setEchoMode(QLineEdit.EchoMode.Password)
        self.secret.setPlaceholderText("kept in the OS keyring; empty keeps the stored one")
        web_form.addRow("Base URL", self.base_url)
        web_form.addRow("CA certificate", self.ca_file)
        web_form.addRow("Authentication", self.auth)
        web_form.addRow("User name", self.username)
        web_form.addRow("Password / token", self.secret)
        dimse = QWidget()
        dimse_form = QFormLayout(dimse)
        self.host = QLineEdit()
        self.host.setAccessibleName("PACS host")
        self.port = QSpinBox()
        self.port.setAccessibleName("PACS port")
        self.port.setRange(1, 65535)
        self.port.setValue(104)
        self.remote_ae = QLineEdit()
        self.remote_ae.setAccessibleName("PACS AE title")
        self.local_ae = QLineEdit("PNEUMODESK")
        self.local_ae.setAccessibleName("Workstation AE title")
        self.retrieve_method = QComboBox()
        self.retrieve_method.setAccessibleName("Retrieve by")
        self.retrieve_method.addItem("C-GET (no port to open here)", RetrieveMethod.GET)
        self.retrieve_method.addItem("C-MOVE (the PACS sends to this workstation)", RetrieveMethod.MOVE)
        self.move_port = QSpinBox()
        self.move_port.setAccessibleName("Receive port for C-MOVE")
        self.move_port.setRange(1, 65535)
        self.move_port.setValue(11112)
        self.retrieve_method.currentIndexChanged.connect(
            lambda index: self.move_port.setEnabled(index == 1))
        self.move_port.setEnabled(False)
        dimse_form.addRow("Host", self.host)
        dimse_form.addRow("Port", self.port)
        dimse_form.addRow("PACS AE title", self.remote_ae)
        dimse_form.addRow("This workstation's AE title", self.local_ae)
        self.tls_ca_file = QLineEdit()
        self.tls_ca_file.setAccessibleName("CA certificate for DICOM over TLS")
        self.tls_ca_file.setPlaceholderText("optional: DICOM over TLS, the PACS's CA certificate (PEM)")
        dimse_form.addRow("TLS CA certificate", self.tls_ca_file)
        dimse_form.addRow("Retrieve by", self.retrieve_method)
        dimse_form.addRow("Receive port (C-MOVE)", self.move_port)
        self.stack.addWidget(web)
        self.stack.addWidget(dimse)
        self.protocol.currentIndexChanged.connect(self.stack.setCurrentIndex)
        right.addWidget(self.stack)

        buttons = QHBoxLayout()
        self.save_button = QPushButton("Save")
        self.save_button.clicked.connect(self.save)
        self.remove_button = QPushButton("Remove")
        self.remove_button.clicked.connect(self.remove)
        self.test_button = QPushButton("Test connection")
        self.test_button.clicked.connect(self.test)
        for button in (self.save_button, self.remove_button, self.test_button):
            buttons.addWidget(button)
        buttons.addStretch(1)
        right.addLayout(buttons)
        self.result = QLabel("")
        self.result.setAccessibleName("PACS connection result")
        self.result.setWordWrap(True)
        right.addWidget(self.result)
        self.clear_at_sign_out = QCheckBox("Delete retrieved images from this workstation at sign-out")
        self.clear_at_sign_out.setChecked(settings.clear_pacs_cache_at_sign_out)
        self.clear_at_sign_out.toggled.connect(self._clear_at_sign_out_toggled)
        right.addWidget(self.clear_at_sign_out)

    def _clear_at_sign_out_toggled(self, checked: bool) -> None:
        self.settings.clear_pacs_cache_at_sign_out = checked

    def may_refresh(self) -> bool:
        return self.session is not None and self.session.can(ADMIN)

    def session_changed(self) -> None:
        self.setVisible(self.may_refresh())
        self.result.setText("")

    def refresh(self) -> None:
        self._stale = False
        if self.session is None:
            return
        current = self.list.currentItem().text() if self.list.currentRow() >= 0 else ""
        self.list.clear()
        try:
            self._connections = {c.name: c for c in self.pacs.connections.list(self.session)}
        except PneumoDeskError as error:
            self.result.setText(str(error))
            return
        self.list.addItems(list(self._connections))
        if current in self._connections:
            self.list.setCurrentRow(list(self._connections).index(current))

    def _show_connection(self, name: str) -> None:
        connection = self._connections.get(name)
        if connection is None:
            return
        self.name.setText(connection.name)
        self.protocol.setCurrentIndex(0 if connection.protocol is Protocol.DICOMWEB else 1)
        self.secret.clear()
        if connection.dicomweb is not None:
            web = connection.dicomweb
            self.base_url.setText(web.base_url)
            self.ca_file.setText(web.ca_file)
            self.auth.setCurrentIndex(max(self.auth.findData(web.auth), 0))
            self.username.setText(web.username)
        if connection.dimse is not None:
            dimse = connection.dimse
            self.host.setText(dimse.host)
            self.port.setValue(dimse.port)
            self.remote_ae.setText(dimse.remote_ae)
            self.local_ae.setText(dimse.local_ae)
            self.tls_ca_file.setText(dimse.tls_ca_file)
            self.retrieve_method.setCurrentIndex(1 if dimse.retrieve is RetrieveMethod.MOVE else 0)
            if dimse.move_port:
                self.move_port.setValue(dimse.move_port)

    def connection(self) -> PacsConnection:
        protocol = Protocol(self.protocol.currentData())
        if protocol is Protocol.DICOMWEB:
            return PacsConnection(self.name.text(), protocol, dicomweb=DicomWebSettings(
                self.base_url.text(), self.ca_file.text(), AuthKind(self.auth.currentData()), self.username.text()))
        method = RetrieveMethod(self.retrieve_method.currentData())
        return PacsConnection(self.name.text(), protocol, dimse=DimseSettings(
            self.host.text(), self.port.value(), self.remote_ae.text(), self.local_ae.text(), retrieve=method,
            move_port=self.move_port.value() if method is RetrieveMethod.MOVE else 0,
            tls_ca_file=self.tls_ca_file.text()))

    def save(self) -> None:
        if self.session is None:
            return
        try:
            saved = self.pacs.connections.save(self.session, self.connection(), self.secret.text() or None)
        except PneumoDeskError as error:
            self.result.setText(str(error))
            return
        self.secret.clear()
        self.result.setText(f"Saved {saved.name} ({saved.address}).")
        self.refresh()
        self.list.setCurrentRow(max(list(self._connections).index(saved.name), 0))

    def remove(self) -> None:
        item = self.list.currentItem()
        if self.session is None or item is None:
            return
        try:
            self.pacs.connections.remove(self.session, item.text())
        except PneumoDeskError as error:
            self.result.setText(str(error))
            return
        self.result.setText(f"Removed {item.text()}.")
        self.refresh()

    def test(self) -> None:
        item = self.list.currentItem()
        session = self.session
        if session is None or item is None:
            self.result.setText("Save the connection, then test it.")
            return
        name = item.text()
        self.result.setText(f"Testing {name}…")
        self.test_button.setEnabled(False)

        def done(answer: object) -> None:
            self.test_button.setEnabled(True)
            self.result.setText(str(answer))

        def failed(message: str) -> None:
            self.test_button.setEnabled(True)
            self.result.setText(message)

        self.calls.start(lambda _report: self.pacs.test(session, name), done, failed)

    def shutdown(self) -> None:
        self.calls.shutdown()


__all__ = ["PacsConnectionsPanel"]
