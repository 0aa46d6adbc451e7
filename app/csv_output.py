"""CSV the service and the CLI write: cells a spreadsheet would run as formulas are defused.

A cell starting with ``=``, ``+``, ``-``, ``@``, a tab or a carriage return is read by Excel,
LibreOffice and Google Sheets as a formula (``=HYPERLINK(...)`` leaks data when clicked). As
OWASP's guidance on CSV injection advises, such a cell is written with a leading single quote,
which spreadsheets show as text. Numbers stay numbers: ``-0.25`` is written as it is.
"""

import csv
import re
from collections.abc import Iterable
from typing import Any, TextIO

FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")
_NUMBER = re.compile(r"[+-]?(?:\d+\.?\d*|\.\d+)(?:[eE][+-]?\d+)?")


def defused(cell: Any) -> Any:
    """The cell as it is safe to write: text a spreadsheet would evaluate gets a quote first."""
    if not isinstance(cell, str) or not cell.startswith(FORMULA_STARTS):
        return cell
    if _NUMBER.fullmatch(cell):
        return cell
    return "'" + cell


class Writer:
    """``csv.writer`` whose every cell goes through :func:`defused`."""

    def __init__(self, out: TextIO) -> None:
        self._writer = csv.writer(out)

    def writerow(self, row: Iterable[Any]) -> None:
        """Write one row, defusing each cell."""
        self._writer.writerow([defused(cell) for cell in row])

    def writerows(self, rows: Iterable[Iterable[Any]]) -> None:
        """Write rows, defusing each cell."""
        for row in rows:
            self.writerow(row)
