"""Display rules of SPEC 3.6 and the three output formats of SPEC section 6.

Output is escaped for where it goes: CSV cells that a spreadsheet would run as a
formula get a leading quote, and text for a terminal shows control characters as
visible escapes instead of sending them (an id or a rejected line can carry ANSI
sequences that rewrite the screen or the window title).
"""

from __future__ import annotations

import csv
import io
import re
import unicodedata
from collections.abc import Sequence
from datetime import date
from decimal import ROUND_HALF_UP, Context, Decimal
from typing import Any

import orjson
from rich import box
from rich.console import Console
from rich.table import Table
from rich.text import Text

_CENT = Decimal("0.01")
_BASIS = Decimal("0.0001")
_DIVIDE = Context(prec=100)

# A spreadsheet runs a cell starting with one of these as a formula (OWASP, "CSV Injection").
_FORMULA_START = ("=", "+", "-", "@", "\t", "\r")
_PLAIN_NUMBER = re.compile(r"[+-]?(\d+(\.\d*)?|\.\d+)([eE][+-]?\d+)?")
# C0, DEL and C1 controls (ESC and CSI start terminal sequences), and the bidirectional
# overrides that make a terminal show text in another order than it is.
_CONTROL = re.compile("[\x00-\x1f\x7f-\x9f\u202a-\u202e\u2066-\u2069]")
_NAMED_CONTROLS = {"\t": "\\t", "\n": "\\n", "\r": "\\r"}


def money(value: Decimal) -> str:
    """Two places, half away from zero, never ``-0.00``."""
    shown = value.quantize(_CENT, rounding=ROUND_HALF_UP)
    return str(abs(shown) if shown == 0 else shown)


def roi(revenue: Decimal, spend: Decimal) -> str | None:
    """revenue / spend to four places; None when spend is 0."""
    if spend == 0:
        return None
    shown = _DIVIDE.divide(revenue, spend).quantize(_BASIS, rounding=ROUND_HALF_UP)
    return str(abs(shown) if shown == 0 else shown)


def display(row: dict[str, Any]) -> dict[str, Any]:
    """Exact values to display form: money 2 places, dates ISO, the rest as is."""
    out: dict[str, Any] = {}
    for key, value in row.items():
        if isinstance(value, Decimal):
            out[key] = money(value)
        elif isinstance(value, date):
            out[key] = value.isoformat()
        else:
            out[key] = value
    return out


def roi_columns(row: dict[str, Any]) -> dict[str, str | None]:
    """``roi_d0``, ``roi_d7``, ``roi_total`` of one exact ROI row."""
    return {
        "roi_d0": roi(row["revenue_d0"], row["spend"]),
        "roi_d7": roi(row["revenue_d7"], row["spend"]),
        "roi_total": roi(row["revenue_total"], row["spend"]),
    }


FUNNEL_COLUMNS = (
    "impressions", "clicks", "ctr", "click_to_user", "cost_per_user", "payer_rate", "cost_per_payer", "arpu", "arppu",
)  # fmt: skip


def ratio(part: Decimal | int, whole: Decimal | int) -> str | None:
    """part / whole to four places (a rate such as CTR); None when ``whole`` is 0."""
    return roi(Decimal(part), Decimal(whole))


def per(amount: Decimal, count: int) -> str | None:
    """Money per unit (cost per user, ARPU) to two places; None when ``count`` is 0."""
    return money(_DIVIDE.divide(amount, Decimal(count))) if count else None


def funnel_columns(row: dict[str, Any]) -> dict[str, Any]:
    """The funnel and unit costs of one exact ROI row that carries ``impressions`` and ``clicks``.

    CTR = clicks / impressions; click_to_user = new_users / clicks; payer_rate =
    payers / new_users; cost per user and per payer divide spend; ARPU = net
    revenue (revenue_total) / new_users; ARPPU = net IAP revenue (revenue_iap -
    refunds) / payers, since payers are the users with a payment.
    """
    spend, users, payers = row["spend"], row["new_users"], row["payers"]
    return {
        "impressions": row["impressions"],
        "clicks": row["clicks"],
        "ctr": ratio(row["clicks"], row["impressions"]),
        "click_to_user": ratio(users, row["clicks"]),
        "cost_per_user": per(spend, users),
        "payer_rate": ratio(payers, users),
        "cost_per_payer": per(spend, payers),
        "arpu": per(row["revenue_total"], users),
        "arppu": per(row["revenue_iap"] - row["refunds"], payers),
    }


def roi_report(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Exact ROI rows from the store to the SPEC's display form."""
    return [{**display(row), **roi_columns(row)} for row in rows]


def commission_report(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [display(row) for row in rows]


def spreadsheet_safe(value: Any) -> Any:
    """A text cell a spreadsheet would evaluate, prefixed with ``'``; numbers (``-10.00``) unchanged."""
    if isinstance(value, str) and value.startswith(_FORMULA_START) and not _PLAIN_NUMBER.fullmatch(value):
        return "'" + value
    return value


def csv_text(rows: Sequence[dict[str, Any]]) -> str:
    """Rows as CSV with a header line and ``\\n`` line ends, every cell spreadsheet-safe; ``""`` for no rows."""
    if not rows:
        return ""
    names = list(rows[0].keys())
    buf = io.StringIO()
    # The csv module quotes a cell holding a character of its line terminator, and only those: with
    # "\r\n" a cell with a bare CR is quoted too (with "\n" it is not, and a reader splits the row there).
    writer = csv.writer(buf, lineterminator="\r\n")
    lines = []
    for values in [names, *([spreadsheet_safe("" if r.get(n) is None else r.get(n)) for n in names] for r in rows)]:
        buf.seek(0)
        buf.truncate()
        writer.writerow(values)
        lines.append(buf.getvalue().removesuffix("\r\n"))
    return "\n".join(lines) + "\n"


def _escape(match: re.Match[str]) -> str:
    char = match.group()
    return _NAMED_CONTROLS.get(char) or (f"\\x{ord(char):02x}" if ord(char) < 0x100 else f"\\u{ord(char):04x}")


def terminal_safe(text: str) -> str:
    """``text`` with control characters as visible escapes (``\\x1b``, ``\\n``), safe to print."""
    return _CONTROL.sub(_escape, text)


def rejected_line(raw: str | bytes) -> str:
    """A rejected record's bytes for a terminal: UTF-8 text escaped, anything else marked and escaped."""
    if isinstance(raw, bytes):
        try:
            raw = raw.decode("utf-8")
        except UnicodeDecodeError:
            return f"(not UTF-8) {raw!r}"  # the bytes literal escapes every non-ASCII and control byte
    return terminal_safe(raw)


def _width(text: str) -> int:
    return sum(2 if unicodedata.east_asian_width(c) in "WF" else 1 for c in text)


def table(rows: Sequence[dict[str, Any]], columns: Sequence[str] | None = None) -> str:
    """An aligned text table (rich): numbers right-aligned, CJK-width aware, control characters escaped.

    Cells go in as plain ``Text``, never as markup, so an id like ``[bold]x`` prints as it is.
    """
    if not rows:
        return "(no rows)"
    raw_names = list(columns or rows[0].keys())
    cells = [["" if row.get(n) is None else terminal_safe(str(row.get(n))) for n in raw_names] for row in rows]
    numeric = [all(_is_number(c[i]) for c in cells) for i in range(len(raw_names))]
    grid = Table(
        box=box.SIMPLE_HEAD, show_edge=False, pad_edge=False, header_style="", padding=(0, 1), collapse_padding=True
    )
    for i, name in enumerate(raw_names):
        grid.add_column(Text(terminal_safe(name)), justify="right" if numeric[i] else "left", no_wrap=True)
    for row_cells in cells:
        grid.add_row(*(Text(c) for c in row_cells))
    out = io.StringIO()
    Console(file=out, width=100_000, color_system=None, highlight=False, emoji=False, markup=False).print(grid)
    return "\n".join(line.rstrip() for line in out.getvalue().splitlines() if line.strip())


def table_width(text: str) -> int:
    """The widest line of a rendered table, in terminal cells."""
    return max((_width(line) for line in text.splitlines()), default=0)


def wrapped_table(rows: Sequence[dict[str, Any]], width: int, keys: Sequence[str] = ()) -> str:
    """``table`` that fits ``width`` cells: too wide, its columns go into blocks one under another.

    Each block repeats the ``keys`` columns present in the rows (which row it is),
    then as many other columns as fit; a column wider than ``width`` gets a block
    of its own.
    """
    whole = table(rows)
    if not rows or width <= 0 or table_width(whole) <= width:
        return whole
    names = list(rows[0].keys())
    lead = [n for n in names if n in keys]
    rest = [n for n in names if n not in lead]
    blocks: list[str] = []
    chunk: list[str] = []
    for name in rest:
        trial = table(rows, [*lead, *chunk, name])
        if chunk and table_width(trial) > width:
            blocks.append(table(rows, [*lead, *chunk]))
            chunk = []
        chunk.append(name)
    if chunk:
        blocks.append(table(rows, [*lead, *chunk]))
    return "\n\n".join(blocks)


def _is_number(text: str) -> bool:
    try:
        Decimal(text.removesuffix("*").replace(",", ""))  # marked not final, or with thousands separators
    except ArithmeticError:
        return text == ""
    return True


def render(rows: list[dict[str, Any]], fmt: str) -> str:
    if fmt == "json":
        return orjson.dumps(rows).decode()
    if fmt == "csv":
        return csv_text(rows).rstrip("\n")
    return table(rows)
