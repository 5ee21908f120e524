"""The principal behind a request: which tenant, who (an API key or a signed-in user), which
scopes. The API and the web UI hand the same principal to the same services."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from typing import Literal

from promptlogic.audit.service import Actor
from promptlogic.tenancy.roles import Scope, grants

PrincipalKind = Literal["api_key", "user", "rules_token"]


@dataclass(frozen=True, slots=True)
class Principal:
    tenant_id: uuid.UUID
    tenant_slug: str
    tenant_name: str
    key_id: uuid.UUID  # the API key's id (a token's minting key's), or the signed-in user's
    key_name: str  # the key's name, a token's subject, or the user's email
    scopes: frozenset[Scope]
    kind: PrincipalKind = "api_key"
    # A rule-set token's one set (rules.tokens): it reaches those rules and nothing else.
    rule_set: str | None = None

    def can(self, scope: Scope) -> bool:
        return grants(self.scopes, scope)

    @property
    def actor(self) -> Actor:
        return Actor(kind=self.kind, id=str(self.key_id), name=self.key_name)
