"""Report files people open: CSV that Excel reads as UTF-8, and ``.xlsx`` with typed cells.

Both carry the report's policy and ``as_of`` as columns on every row (the
labels of ``ReportContext.labels``), so a file forwarded alone still says what
it is; the workbook adds an ``about`` sheet with the same heading a table has.
Text is spreadsheet-safe in both: a cell a spreadsheet would evaluate as a
formula gets a leading ``'`` (``formatting.spreadsheet_safe``), and in the
workbook every text cell is stored as a string, never as a formula.
"""

from __future__ import annotations

import io
import re
from datetime import date
from decimal import Decimal, InvalidOperation
from typing import Any

from openpyxl import Workbook
from openpyxl.cell import WriteOnlyCell
from openpyxl.worksheet._write_only import WriteOnlyWorksheet

from reelroi.formatting import csv_text, spreadsheet_safe, terminal_safe
from reelroi.labels import ReportContext, for_csv

BOM = "\ufeff"
XLSX_MEDIA_TYPE = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"

_MONEY = re.compile(
    r"spend|revenue_\w+|refunds|commission|gross|net|cost_per_user|cost_per_payer|arpu|arppu"
)  # fmt: skip
_RATIO = re.compile(r"roi_\w+|ctr|click_to_user|payer_rate")
_COUNT = re.compile(r"new_users|payers|impressions|clicks|cohorts|day")
_DATE = re.compile(r"cohort_date|date|from|to")


def csv_bytes(rows: list[dict[str, Any]], context: ReportContext, bom: bool = False) -> bytes:
    """The CSV export (policy and ``as_of`` columns), UTF-8, with a byte-order mark when ``bom``."""
    text = csv_text(for_csv(rows, context))
    return ((BOM if bom else "") + text).encode("utf-8")


def _typed_cell(sheet: WriteOnlyWorksheet, name: str, value: Any) -> WriteOnlyCell:
    """A number for money, ratio and count columns, a date for date columns, else a string cell."""
    if value is None or value == "":
        return WriteOnlyCell(sheet, None)
    if isinstance(value, str):
        try:
            if _MONEY.fullmatch(name) or _RATIO.fullmatch(name):
                cell = WriteOnlyCell(sheet, Decimal(value))
                cell.number_format = "0.00" if _MONEY.fullmatch(name) else "0.0000"
                return cell
            if _COUNT.fullmatch(name):
                return WriteOnlyCell(sheet, int(value))
            if _DATE.fullmatch(name):
                cell = WriteOnlyCell(sheet, date.fromisoformat(value))
                cell.number_format = "yyyy-mm-dd"
                return cell
        except (InvalidOperation, ValueError):
            pass  # not what the column usually holds: kept as text
    if isinstance(value, bool | int | Decimal):
        return WriteOnlyCell(sheet, value)
    # control characters are not allowed in a workbook: shown as escapes, like on a terminal
    cell = WriteOnlyCell(sheet, None)
    cell.value = spreadsheet_safe(terminal_safe(str(value)))
    cell.data_type = "s"  # even "=1+1" or "#N/A" stays text
    return cell


def xlsx_bytes(rows: list[dict[str, Any]], context: ReportContext, title: str) -> bytes:
    """The workbook: sheet ``report`` (a header row and typed cells, as the CSV) and sheet ``about``."""
    book = Workbook(write_only=True)
    sheet = book.create_sheet("report")
    flat = for_csv(rows, context)
    names = list(flat[0]) if flat else [*context.labels()]
    sheet.append([_typed_cell(sheet, "", n) for n in names])
    for row in flat:
        sheet.append([_typed_cell(sheet, n, row.get(n)) for n in names])
    about = book.create_sheet("about")
    meta = context.meta()
    for key, value in [("report", title), *meta.items(), ("heading", context.heading(title))]:
        about.append([_typed_cell(about, "", key), _typed_cell(about, "", value)])
    buf = io.BytesIO()
    book.save(buf)
    return buf.getvalue()
