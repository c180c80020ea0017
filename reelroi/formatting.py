"""Display rules of SPEC 3.6 and the three output formats of SPEC section 6."""

from __future__ import annotations

import csv
import io
import unicodedata
from collections.abc import Sequence
from datetime import date
from decimal import ROUND_HALF_UP, Context, Decimal
from typing import Any

import orjson

_CENT = Decimal("0.01")
_BASIS = Decimal("0.0001")
_DIVIDE = Context(prec=100)


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


def roi_report(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Exact ROI rows from the store to the SPEC's display form."""
    return [{**display(row), **roi_columns(row)} for row in rows]


def commission_report(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [display(row) for row in rows]


def _width(text: str) -> int:
    return sum(2 if unicodedata.east_asian_width(c) in "WF" else 1 for c in text)


def table(rows: Sequence[dict[str, Any]], columns: Sequence[str] | None = None) -> str:
    """An aligned text table (numbers right-aligned, CJK-width aware)."""
    if not rows:
        return "(no rows)"
    names = list(columns or rows[0].keys())
    cells = [["" if row.get(n) is None else str(row.get(n)) for n in names] for row in rows]
    widths = [max(_width(n), *(_width(c[i]) for c in cells)) for i, n in enumerate(names)]
    numeric = [all(_is_number(c[i]) for c in cells) for i in range(len(names))]

    def line(values: Sequence[str]) -> str:
        parts = []
        for i, v in enumerate(values):
            pad = " " * (widths[i] - _width(v))
            parts.append(pad + v if numeric[i] else v + pad)
        return "  ".join(parts).rstrip()

    return "\n".join([line(names), line(["-" * w for w in widths]), *(line(c) for c in cells)])


def _is_number(text: str) -> bool:
    try:
        Decimal(text)
    except ArithmeticError:
        return text == ""
    return True


def render(rows: list[dict[str, Any]], fmt: str) -> str:
    if fmt == "json":
        return orjson.dumps(rows).decode()
    if fmt == "csv":
        buf = io.StringIO()
        if rows:
            writer = csv.DictWriter(buf, fieldnames=list(rows[0].keys()), lineterminator="\n")
            writer.writeheader()
            writer.writerows({k: "" if v is None else v for k, v in r.items()} for r in rows)
        return buf.getvalue().rstrip("\n")
    return table(rows)
