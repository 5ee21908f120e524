"""Two versions compared for people: each message and setting as unified lines and as
side-by-side rows, from the same comparison the API's diff uses (`prompts.diff`)."""

from __future__ import annotations

import difflib
import json
from dataclasses import dataclass, field
from itertools import zip_longest
from typing import Any, Literal

from promptlogic.prompts.diff import MAX_DIFF_LINES, SETTINGS_FIELDS
from promptlogic.prompts.models import PromptVersion

LineKind = Literal["ctx", "add", "del", "hunk"]


@dataclass(frozen=True, slots=True)
class Line:
    kind: LineKind
    text: str


@dataclass(frozen=True, slots=True)
class Cell:
    kind: Literal["ctx", "add", "del", "empty"]
    text: str


@dataclass(slots=True)
class Part:
    """One message or setting that differs."""

    title: str
    unified: list[Line] = field(default_factory=list)
    side: list[tuple[Cell, Cell]] = field(default_factory=list)
    too_long: str | None = None


def _unified(old: list[str], new: list[str]) -> list[Line]:
    lines: list[Line] = []
    for group in difflib.SequenceMatcher(a=old, b=new, autojunk=False).get_grouped_opcodes(3):
        first, last = group[0], group[-1]
        lines.append(
            Line(
                "hunk",
                f"@@ -{first[1] + 1},{last[2] - first[1]} +{first[3] + 1},{last[4] - first[3]} @@",
            )
        )
        for tag, i1, i2, j1, j2 in group:
            if tag == "equal":
                lines += [Line("ctx", text) for text in old[i1:i2]]
                continue
            lines += [Line("del", text) for text in old[i1:i2]]
            lines += [Line("add", text) for text in new[j1:j2]]
    return lines


def _side(old: list[str], new: list[str]) -> list[tuple[Cell, Cell]]:
    rows: list[tuple[Cell, Cell]] = []
    for tag, i1, i2, j1, j2 in difflib.SequenceMatcher(a=old, b=new, autojunk=False).get_opcodes():
        if tag == "equal":
            rows += [(Cell("ctx", text), Cell("ctx", text)) for text in old[i1:i2]]
            continue
        for before, after in zip_longest(old[i1:i2], new[j1:j2]):
            rows.append(
                (
                    Cell("del", before) if before is not None else Cell("empty", ""),
                    Cell("add", after) if after is not None else Cell("empty", ""),
                )
            )
    return rows


def _part(title: str, old: str, new: str) -> Part:
    old_lines, new_lines = old.splitlines(), new.splitlines()
    part = Part(title)
    if len(old_lines) + len(new_lines) > MAX_DIFF_LINES:
        part.too_long = (
            f"Too long to compare line by line: {len(old_lines)} → {len(new_lines)} lines, "
            f"{len(old)} → {len(new)} characters."
        )
        return part
    part.unified = _unified(old_lines, new_lines)
    part.side = _side(old_lines, new_lines)
    return part


def _as_text(value: Any) -> str:
    return "" if value is None else json.dumps(value, indent=2, ensure_ascii=False)


def compare(old: PromptVersion, new: PromptVersion) -> list[Part]:
    """What differs from `old` to `new`: template or messages (with their roles), then settings."""
    parts: list[Part] = []
    if (old.template or "") != (new.template or ""):
        parts.append(_part("template", old.template or "", new.template or ""))
    pairs = zip_longest(old.messages or [], new.messages or [])
    for index, (before, after) in enumerate(pairs):
        role_from = (before or {}).get("role")
        role_to = (after or {}).get("role")
        old_text, new_text = (before or {}).get("content", ""), (after or {}).get("content", "")
        if old_text == new_text and role_from == role_to:
            continue
        if before is None:
            title = f"message {index + 1} added ({role_to})"
        elif after is None:
            title = f"message {index + 1} removed ({role_from})"
        elif role_from != role_to:
            title = f"message {index + 1}: role {role_from} → {role_to}"
        else:
            title = f"message {index + 1} ({role_to})"
        parts.append(_part(title, old_text, new_text))
    for name in SETTINGS_FIELDS:
        before, after = getattr(old, name), getattr(new, name)
        if before != after:
            parts.append(_part(name.replace("_", " "), _as_text(before), _as_text(after)))
    return parts
