"""The principal behind a request: which tenant, which key, which scopes."""

from __future__ import annotations

import uuid
from dataclasses import dataclass

from promptlogic.audit.service import Actor
from promptlogic.tenancy.roles import Scope, grants


@dataclass(frozen=True, slots=True)
class Principal:
    tenant_id: uuid.UUID
    tenant_slug: str
    tenant_name: str
    key_id: uuid.UUID
    key_name: str
    scopes: frozenset[Scope]

    def can(self, scope: Scope) -> bool:
        return grants(self.scopes, scope)

    @property
    def actor(self) -> Actor:
        return Actor(kind="api_key", id=str(self.key_id), name=self.key_name)
