"""Membership roles and API-key scopes, and what each one implies."""

from __future__ import annotations

from enum import StrEnum


class Role(StrEnum):
    OWNER = "owner"
    ADMIN = "admin"
    EDITOR = "editor"
    RULE_AUTHOR = "rule_author"
    VIEWER = "viewer"


ROLES: tuple[str, ...] = tuple(role.value for role in Role)


class Scope(StrEnum):
    RUN = "run"
    READ = "read"
    RULES = "rules"
    WRITE = "write"
    ADMIN = "admin"


SCOPES: tuple[str, ...] = tuple(scope.value for scope in Scope)

# `admin` may do everything; `write` may also read and write rules. `rules` writes tenant rules
# only (never prompts, labels or settings). `run` only runs prompts.
_IMPLIED: dict[Scope, frozenset[Scope]] = {
    Scope.ADMIN: frozenset(Scope),
    Scope.WRITE: frozenset({Scope.WRITE, Scope.RULES, Scope.READ}),
    Scope.RULES: frozenset({Scope.RULES}),
    Scope.READ: frozenset({Scope.READ}),
    Scope.RUN: frozenset({Scope.RUN}),
}


def grants(granted: frozenset[Scope], required: Scope) -> bool:
    """True when a key with `granted` scopes may do what needs `required`."""
    return any(required in _IMPLIED[scope] for scope in granted)


def ordered(scopes: frozenset[Scope] | set[Scope]) -> list[Scope]:
    """Scopes in their canonical order, for stable output."""
    return [scope for scope in Scope if scope in scopes]


# What a signed-in member may do, in the same scopes as API keys, so the UI and the API
# check one rule. A rule author may try prompts and write rules, but not change prompts.
ROLE_SCOPES: dict[Role, frozenset[Scope]] = {
    Role.OWNER: frozenset({Scope.ADMIN}),
    Role.ADMIN: frozenset({Scope.ADMIN}),
    Role.EDITOR: frozenset({Scope.WRITE, Scope.RUN}),
    Role.RULE_AUTHOR: frozenset({Scope.READ, Scope.RUN, Scope.RULES}),
    Role.VIEWER: frozenset({Scope.READ}),
}
