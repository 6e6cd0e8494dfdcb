"""Diffs for reading: a text field line by line with the changed words marked inside changed
lines, a structured field as before and after. The library says what changed (history.diff);
this only lays it out.

A 1 MB field must not make a slow page: lines the two sides share at the start and end are
set aside before any matching, the matcher only runs on what is left while that is small,
unchanged runs fold to a few lines of context, and at most `MAX_ROWS` rows are drawn.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from difflib import SequenceMatcher
from typing import Any, Literal

import orjson

CONTEXT = 3
MAX_ROWS = 2000
# Past this many lines on both sides together the changed middle is shown as removed then
# added, without matching lines inside it (SequenceMatcher is quadratic at worst).
MAX_MATCHED_LINES = 20000
MAX_WORD_DIFF_CHARS = 2000
_WORD = re.compile(r"\w+|\s+|[^\w\s]")


@dataclass(frozen=True, slots=True)
class Side:
    number: int
    parts: list[tuple[str, str]]  # (kind, text): kind is "same" or "changed"


@dataclass(frozen=True, slots=True)
class Row:
    kind: str  # "same", "added", "removed", "changed" or "gap"
    old: Side | None = None
    new: Side | None = None
    skipped: int = 0  # for a gap: how many unchanged lines it stands for


@dataclass(slots=True)
class FieldDiff:
    path: str
    op: str  # add, remove, replace
    text: bool
    rows: list[Row] = field(default_factory=list)
    truncated: int = 0  # rows not drawn
    old: str | None = None  # a structured value, as pretty JSON
    new: str | None = None


def field_diffs(changes: list[Any]) -> list[FieldDiff]:
    """The layout of each of history.diff's field changes."""
    out = []
    for change in changes:
        if _is_text(change.old) and _is_text(change.new) and (_long(change.old) or _long(change.new)):
            rows = text_rows(change.old or "", change.new or "")
            out.append(FieldDiff(change.path, change.op, True, rows[:MAX_ROWS], max(0, len(rows) - MAX_ROWS)))
        else:
            out.append(FieldDiff(change.path, change.op, False, old=shown(change.old), new=shown(change.new)))
    return out


# difflib's opcode names, as SequenceMatcher.get_opcodes spells them.
_Op = Literal["replace", "delete", "insert", "equal"]


def text_rows(old: str, new: str) -> list[Row]:
    a, b = old.splitlines(), new.splitlines()
    start = 0
    while start < len(a) and start < len(b) and a[start] == b[start]:
        start += 1
    end = 0
    while end < len(a) - start and end < len(b) - start and a[len(a) - 1 - end] == b[len(b) - 1 - end]:
        end += 1
    mid_a, mid_b = a[start : len(a) - end], b[start : len(b) - end]
    middle: list[tuple[_Op, int, int, int, int]]
    if len(mid_a) + len(mid_b) > MAX_MATCHED_LINES:
        middle = [("replace", 0, len(mid_a), 0, len(mid_b))]
    else:
        middle = SequenceMatcher(None, mid_a, mid_b, autojunk=False).get_opcodes()
    opcodes: list[tuple[_Op, int, int, int, int]] = [("equal", 0, start, 0, start)] if start else []
    opcodes += [(op, i1 + start, i2 + start, j1 + start, j2 + start) for op, i1, i2, j1, j2 in middle]
    if end:
        opcodes.append(("equal", len(a) - end, len(a), len(b) - end, len(b)))
    rows: list[Row] = []
    for index, (op, i1, i2, j1, j2) in enumerate(opcodes):
        if op == "equal":
            rows += _context(a, i1, i2, j1, first=index == 0, last=index == len(opcodes) - 1)
            continue
        paired = min(i2 - i1, j2 - j1) if op == "replace" else 0
        for k in range(paired):
            old_parts, new_parts = _words(a[i1 + k], b[j1 + k])
            rows.append(Row("changed", Side(i1 + k + 1, old_parts), Side(j1 + k + 1, new_parts)))
        rows += [Row("removed", old=Side(i + 1, [("changed", a[i])])) for i in range(i1 + paired, i2)]
        rows += [Row("added", new=Side(j + 1, [("changed", b[j])])) for j in range(j1 + paired, j2)]
    return rows


def _context(a: list[str], i1: int, i2: int, j1: int, *, first: bool, last: bool) -> list[Row]:
    """An unchanged run: a few lines next to each change, the rest folded into a gap."""
    keep_before = 0 if first else CONTEXT
    keep_after = 0 if last else CONTEXT
    count = i2 - i1
    if count <= keep_before + keep_after + 1:
        return [_same(a, i1 + k, j1 + k) for k in range(count)]
    rows = [_same(a, i1 + k, j1 + k) for k in range(keep_before)]
    rows.append(Row("gap", skipped=count - keep_before - keep_after))
    rows += [_same(a, i2 - keep_after + k, j1 + count - keep_after + k) for k in range(keep_after)]
    return rows


def _same(a: list[str], i: int, j: int) -> Row:
    return Row("same", Side(i + 1, [("same", a[i])]), Side(j + 1, [("same", a[i])]))


def _words(old: str, new: str) -> tuple[list[tuple[str, str]], list[tuple[str, str]]]:
    if len(old) + len(new) > MAX_WORD_DIFF_CHARS:
        return [("changed", old)], [("changed", new)]
    x, y = _WORD.findall(old), _WORD.findall(new)
    old_parts: list[tuple[str, str]] = []
    new_parts: list[tuple[str, str]] = []
    for op, i1, i2, j1, j2 in SequenceMatcher(None, x, y, autojunk=False).get_opcodes():
        kind = "same" if op == "equal" else "changed"
        if i2 > i1:
            old_parts.append((kind, "".join(x[i1:i2])))
        if j2 > j1:
            new_parts.append((kind, "".join(y[j1:j2])))
    return old_parts, new_parts


def _is_text(value: Any) -> bool:
    return value is None or isinstance(value, str)


def _long(value: str | None) -> bool:
    return value is not None and ("\n" in value or len(value) > 80)


def shown(value: Any) -> str | None:
    if value is None:
        return None
    if isinstance(value, str):
        return value
    return orjson.dumps(value, option=orjson.OPT_INDENT_2 | orjson.OPT_SORT_KEYS).decode()
