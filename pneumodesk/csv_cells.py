"""Cells for CSV files a person may open in a spreadsheet: the one defence against formula injection, used by
every CSV the app writes (audit and egress exports, the worklist, ``predict --csv``).

Invariant: a text cell whose first character — or first after leading whitespace — is one a spreadsheet reads as
the start of a formula (``= + - @``, tab, carriage return, line feed) is written with a leading single quote, as
OWASP's "CSV Injection" advises, so Excel, LibreOffice and Google Sheets show it as text and never run it. Other
text and non-text cells (numbers, None) are left as they are; ``csv.writer`` does the quoting of commas, quotes
and line breaks. Not for CSVs the app writes only to read back itself (the federation demo's ``path,label``
sheets of absolute paths): a quote there would change the path.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import TypeVar

#: First characters that make a spreadsheet treat a cell as a formula (or shift to one in the next cell).
FORMULA_STARTS = frozenset("=+-@\t\r\n")

Cell = TypeVar("Cell")


def defuse_cell(cell: Cell) -> Cell | str:
    """``cell`` prefixed with ``'`` when a spreadsheet would read it as a formula; otherwise ``cell`` unchanged."""
    if isinstance(cell, str) and cell and (cell[0] in FORMULA_STARTS or cell.lstrip()[:1] in FORMULA_STARTS):
        return "'" + cell
    return cell


def defused_row(cells: Iterable[object]) -> list[object]:
    """A row for ``csv.writer.writerow`` with every cell passed through ``defuse_cell``."""
    return [defuse_cell(cell) for cell in cells]
