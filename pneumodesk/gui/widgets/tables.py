"""The read-only table every admin page lists its records in."""

from __future__ import annotations

from typing import Literal

from PySide6.QtWidgets import QAbstractItemView, QHeaderView, QTableWidget


def read_only_table(accessible_name: str, columns: tuple[str, ...], *, single_selection: bool = True,
                    stretch: Literal["last", "first", "all"] = "last") -> QTableWidget:
    """An empty table with ``columns``, not editable, selected by whole rows (one at a time unless
    ``single_selection`` is False). ``stretch`` says which columns take the spare width: the last or the first
    (the others fit their contents), or all of them equally."""
    table = QTableWidget(0, len(columns))
    table.setAccessibleName(accessible_name)
    table.setHorizontalHeaderLabels(columns)
    table.verticalHeader().hide()
    table.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
    table.setSelectionBehavior(QAbstractItemView.SelectionBehavior.SelectRows)
    if single_selection:
        table.setSelectionMode(QAbstractItemView.SelectionMode.SingleSelection)
    header = table.horizontalHeader()
    if stretch == "all":
        header.setSectionResizeMode(QHeaderView.ResizeMode.Stretch)
    else:
        header.setSectionResizeMode(QHeaderView.ResizeMode.ResizeToContents)
        if stretch == "last":
            header.setStretchLastSection(True)
        else:
            header.setSectionResizeMode(0, QHeaderView.ResizeMode.Stretch)
    return table


__all__ = ["read_only_table"]
