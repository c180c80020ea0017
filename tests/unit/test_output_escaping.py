"""Output escaping (reelroi/formatting.py): CSV cells a spreadsheet would run, text that would drive a terminal."""

from __future__ import annotations

import csv
import io
import re

from hypothesis import given
from hypothesis import strategies as st

from reelroi.formatting import csv_text, rejected_line, render, spreadsheet_safe, table, terminal_safe

CONTROL = re.compile("[\x00-\x1f\x7f-\x9f\u202a-\u202e\u2066-\u2069]")


def cells(text: str) -> list[list[str]]:
    return list(csv.reader(io.StringIO(text)))


def test_formula_cells_get_a_leading_quote() -> None:
    hostile = ['=HYPERLINK("http://x","y")', "+1+cmd|' /C calc'!A0", "-2+3", "@SUM(A1:A9)", "\t=1", "\r=1"]
    for value in hostile:
        assert spreadsheet_safe(value) == "'" + value
    rows = [{"id": v, "n": i} for i, v in enumerate(hostile)]
    parsed = cells(csv_text(rows))
    assert parsed[0] == ["id", "n"]
    assert [r[0] for r in parsed[1:]] == ["'" + v for v in hostile]


def test_a_line_break_inside_a_cell_cannot_start_a_row() -> None:
    text = csv_text([{"id": "x\r=cmd()", "n": 1}, {"id": "y\n@z", "n": 2}])
    assert cells(text) == [["id", "n"], ["x\r=cmd()", "1"], ["y\n@z", "2"]]
    assert text.splitlines(keepends=True)[0] == "id,n\n"


def test_numbers_and_plain_text_stay_as_they_are() -> None:
    for value in ("-10.00", "-0.5", "+3", "12", "1e5", "-1.5E-3", "cA1", "", "a=b", "douyin"):
        assert spreadsheet_safe(value) == value
    for value in (-10, 3.5, None, True):
        assert spreadsheet_safe(value) is value
    assert cells(render([{"refunds": "-10.00", "net": -3}], "csv")) == [["refunds", "net"], ["-10.00", "-3"]]


@given(st.text())
def test_no_escaped_cell_starts_a_formula_unless_it_is_a_number(value: str) -> None:
    safe = spreadsheet_safe(value)
    if safe.startswith(("=", "+", "-", "@", "\t", "\r")):
        assert safe == value and re.fullmatch(r"[+-]?(\d+(\.\d*)?|\.\d+)([eE][+-]?\d+)?", value)


def test_terminal_controls_become_visible_escapes() -> None:
    assert terminal_safe("c\x1b[31mred\x1b[0m") == "c\\x1b[31mred\\x1b[0m"
    assert terminal_safe("\x1b]0;owned\x07") == "\\x1b]0;owned\\x07"  # window title
    assert terminal_safe("a\tb\nc\rd\x7f\x9b2J") == "a\\tb\\nc\\rd\\x7f\\x9b2J"  # DEL and the C1 CSI too
    assert terminal_safe("abc\u202edcba") == "abc\\u202edcba"  # right-to-left override
    assert terminal_safe("投放 cA1 ✓") == "投放 cA1 ✓"


@given(st.text())
def test_terminal_safe_output_has_no_control_characters(text: str) -> None:
    assert not CONTROL.search(terminal_safe(text))


def test_table_cells_and_headers_are_escaped_and_stay_aligned() -> None:
    shown = table([{"source_id": "c\x1b[2Jx", "spend": "1.00"}, {"source_id": "cA", "spend": "10.00"}])
    assert "\x1b" not in shown
    lines = shown.splitlines()
    assert lines[2].startswith("c\\x1b[2Jx") and lines[3].startswith("cA ")
    assert len({len(line) for line in lines}) == 1  # still one column width for the escaped cell
    assert "\x1b" not in table([{"a\x1bb": 1}])


def test_rejected_lines_show_text_escaped_and_other_bytes_marked() -> None:
    assert rejected_line(b'{"type":"click\x1b[2J"}') == '{"type":"click\\x1b[2J"}'
    assert rejected_line(b"\xff\xfe\x1b[2Jab") == "(not UTF-8) b'\\xff\\xfe\\x1b[2Jab'"
    assert rejected_line("ff41") == "ff41"  # a line of hex digits is text, not the marker
    assert rejected_line(b"") == ""


@given(st.binary())
def test_any_rejected_bytes_print_as_printable_ascii_or_escaped_text(raw: bytes) -> None:
    shown = rejected_line(raw)
    assert not CONTROL.search(shown)
    try:
        raw.decode("utf-8")
    except UnicodeDecodeError:
        assert shown.startswith("(not UTF-8) b") and shown.isascii() and eval(shown.removeprefix("(not UTF-8) ")) == raw
