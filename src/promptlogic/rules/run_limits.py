"""What a run enforces of a prompt's rules policy when it binds rules; carried by the render
plan, so it is plain data with no imports from the rest of the package."""

from __future__ import annotations

import fnmatch
from dataclasses import dataclass
from typing import Any

DEFAULT_MAX_RULES = 50
DEFAULT_MAX_CHARS = 500


@dataclass(frozen=True, slots=True)
class RunLimits:
    """The part of a policy a run enforces when it binds rules (carried by the render plan)."""

    allowed: bool = True
    sets: tuple[str, ...] = ()
    max_rules: int = DEFAULT_MAX_RULES
    max_chars: int = DEFAULT_MAX_CHARS

    def takes_set(self, name: str) -> bool:
        return not self.sets or matches_any(name, self.sets)

    def apply(self, rules: tuple[dict[str, Any], ...]) -> tuple[dict[str, Any], ...]:
        """The rules a run may bind: none when not allowed, no longer than `max_chars`, and
        the first `max_rules` of them."""
        if not self.allowed:
            return ()
        kept = tuple(rule for rule in rules if len(rule["text"]) <= self.max_chars)
        return kept[: self.max_rules]


NO_POLICY = RunLimits()  # a prompt whose admins set no policy


def matches_any(name: str, patterns: tuple[str, ...] | list[str]) -> bool:
    """Case-sensitive glob match (`fnmatchcase`: no surprise from the platform's case rules)."""
    return any(fnmatch.fnmatchcase(name, pattern) for pattern in patterns)
