"""Small shared pieces of every read: bound-parameter WHERE clauses and rows as dicts."""

from __future__ import annotations

from typing import Any

from clickhouse_connect.driver.client import Client

from sinks.connection import translate


def where(*conditions: tuple[str, str, Any]) -> tuple[str, dict[str, Any]]:
    """``(" WHERE a AND b", params)`` from ``(sql, param name, value)`` triples; ``None`` values drop out.

    Each ``sql`` names its one bound parameter, e.g. ``("date >= {p_from:Date32}", "p_from", day)``.
    """
    used = [(sql, name, value) for sql, name, value in conditions if value is not None]
    clause = (" WHERE " + " AND ".join(sql for sql, _, _ in used)) if used else ""
    return clause, {name: value for _, name, value in used}


def query_dicts(client: Client, sql: str, parameters: dict[str, Any], what: str) -> list[dict[str, Any]]:
    """Run a query; rows as dicts by column name; driver errors become ``SinkError``."""
    try:
        result = client.query(sql, parameters=parameters)
    except Exception as exc:
        raise translate(exc, f"{what} failed") from exc
    return [dict(zip(result.column_names, row, strict=True)) for row in result.result_rows]
