"""The Owner's role editor: one row per role, one checkbox per permission. The Owner row cannot be changed."""

from __future__ import annotations

from PySide6.QtCore import Qt, Signal
from PySide6.QtWidgets import QHeaderView, QTableWidget, QTableWidgetItem, QWidget

from pneumodesk.node.permissions import OWNER, Permission


class RoleEditor(QTableWidget):
    """Shows ``roles`` and reports each edit with ``role_edited(role, permissions)``; saving is the page's job."""

    role_edited = Signal(str, object)  # role name, frozenset[Permission]

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(0, len(Permission), parent)
        self.setAccessibleName("Role editor")
        self.setHorizontalHeaderLabels([p.value.replace("_", "\n") for p in Permission])
        self.horizontalHeader().setSectionResizeMode(QHeaderView.ResizeMode.ResizeToContents)
        self.verticalHeader().setDefaultSectionSize(26)
        self._loading = False
        self.itemChanged.connect(self._changed)

    def set_roles(self, roles: dict[str, frozenset[Permission]]) -> None:
        self._loading = True
        self.setRowCount(len(roles))
        self.setVerticalHeaderLabels(list(roles))
        for row, (role, granted) in enumerate(roles.items()):
            for column, permission in enumerate(Permission):
                item = QTableWidgetItem()
                flags = Qt.ItemFlag.ItemIsUserCheckable | Qt.ItemFlag.ItemIsEnabled
                item.setFlags(flags if role != OWNER else Qt.ItemFlag.ItemIsEnabled)
                item.setCheckState(Qt.CheckState.Checked if permission in granted else Qt.CheckState.Unchecked)
                item.setToolTip(f"{role}: {permission.value}")
                self.setItem(row, column, item)
        self._loading = False

    def role_names(self) -> list[str]:
        return [self._role_at(r) for r in range(self.rowCount())]

    def _box(self, row: int, column: int) -> QTableWidgetItem:
        """The checkbox item ``set_roles`` put in every cell."""
        item = self.item(row, column)
        if item is None:
            raise IndexError(f"no role editor cell at ({row}, {column})")
        return item

    def _role_at(self, row: int) -> str:
        return self.verticalHeaderItem(row).text()

    def permissions_of(self, row: int) -> frozenset[Permission]:
        return frozenset(p for c, p in enumerate(Permission) if self._box(row, c).checkState() == Qt.CheckState.Checked)

    def set_permission(self, role: str, permission: Permission, granted: bool) -> None:
        """Tick or untick one box as a person would (emits ``role_edited``)."""
        row = self.role_names().index(role)
        column = list(Permission).index(permission)
        self._box(row, column).setCheckState(Qt.CheckState.Checked if granted else Qt.CheckState.Unchecked)

    def _changed(self, item: QTableWidgetItem) -> None:
        if not self._loading:
            self.role_edited.emit(self._role_at(item.row()), self.permissions_of(item.row()))
