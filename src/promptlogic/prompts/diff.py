"""Differences between two versions: unified diffs of messages, field diffs of settings."""

from __future__ import annotations

import difflib
from itertools import zip_longest

from promptlogic.prompts.models import PromptVersion
from promptlogic.prompts.schemas import DiffOut, FieldDiff, MessageDiff

SETTINGS_FIELDS = ("input_schema", "model", "response_format", "tools", "context")


MAX_DIFF_LINES = 2000  # difflib is quadratic in the worst case: past this, say what changed


def _unified(old: str, new: str, old_name: str, new_name: str) -> str:
    if old == new:
        return ""
    old_lines, new_lines = old.splitlines(keepends=True), new.splitlines(keepends=True)
    if len(old_lines) + len(new_lines) > MAX_DIFF_LINES:
        return (
            f"--- {old_name}\n+++ {new_name}\n"
            f"(too long to diff line by line: {len(old_lines)} → {len(new_lines)} lines, "
            f"{len(old)} → {len(new)} characters)\n"
        )
    lines = difflib.unified_diff(old_lines, new_lines, old_name, new_name)
    return "".join(line if line.endswith("\n") else line + "\n" for line in lines)


def diff_versions(prompt: str, old: PromptVersion, new: PromptVersion) -> DiffOut:
    a, b = f"{prompt}@{old.number}", f"{prompt}@{new.number}"
    messages: list[MessageDiff] = []
    if old.template is not None or new.template is not None:
        text = _unified(old.template or "", new.template or "", a, b)
        if text:
            messages.append(MessageDiff(index=0, role_from=None, role_to=None, diff=text))
    pairs = zip_longest(old.messages or [], new.messages or [])
    for index, (before, after) in enumerate(pairs):
        text = _unified(
            (before or {}).get("content", ""),
            (after or {}).get("content", ""),
            f"{a} messages[{index}]",
            f"{b} messages[{index}]",
        )
        role_from = (before or {}).get("role")
        role_to = (after or {}).get("role")
        if text or role_from != role_to:
            messages.append(
                MessageDiff(index=index, role_from=role_from, role_to=role_to, diff=text)
            )
    settings = [
        FieldDiff(field=field, from_value=getattr(old, field), to_value=getattr(new, field))
        for field in SETTINGS_FIELDS
        if getattr(old, field) != getattr(new, field)
    ]
    return DiffOut(
        prompt=prompt,
        from_version=old.number,
        to_version=new.number,
        messages=messages,
        settings=settings,
    )
