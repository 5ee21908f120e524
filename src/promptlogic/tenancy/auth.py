"""Authenticating API keys, cached per worker, and the dependencies routes declare."""

from __future__ import annotations

from collections.abc import Callable, Coroutine
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Annotated, Any

from fastapi import Depends, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from starlette import types as asgi
from starlette.datastructures import Headers

from promptlogic.errors import Forbidden, Unauthorized, problem_response
from promptlogic.tenancy import keys
from promptlogic.tenancy.key_cache import ApiKeyCache, CachedKey
from promptlogic.tenancy.models import ApiKey, Tenant
from promptlogic.tenancy.principal import Principal
from promptlogic.tenancy.roles import Scope, grants
from promptlogic.tenancy.usage import KeyUsageRecorder

if TYPE_CHECKING:  # rules.tokens imports tenancy's service, which imports this module
    from promptlogic.rules.tokens import RuleTokens

API_KEY_TOPIC = "api_key"
PRINCIPAL_STATE = "principal"
RULES_PATH = "/v1/rules"  # all a rule-set token may reach: `/v1/rules`, `/v1/rules/…`, `…:verb`


class Authenticator:
    """Turns an `Authorization` header into a `Principal`, from memory whenever it can."""

    def __init__(
        self,
        sessionmaker: async_sessionmaker[AsyncSession],
        cache: ApiKeyCache,
        usage: KeyUsageRecorder,
        rule_tokens: RuleTokens | None = None,
    ) -> None:
        self._sessionmaker = sessionmaker
        self.cache = cache
        self.usage = usage
        self.rule_tokens = rule_tokens

    def on_key_changed(self, message: dict[str, Any]) -> None:
        """NOTIFY handler: forget a key that was revoked or changed."""
        prefix = message.get("prefix")
        if isinstance(prefix, str):
            self.cache.drop(prefix)

    async def authenticate(self, authorization: str | None) -> Principal:
        token = _bearer_token(authorization)
        if self.rule_tokens is not None and self.rule_tokens.is_token(token):
            return await self._authenticate_rule_token(self.rule_tokens, token)
        presented = keys.parse(token)
        if presented is None:
            raise Unauthorized("The API key is malformed; expected `pl_<prefix>_<secret>`.")
        entry = self.cache.get(presented.prefix) or await self._load(presented.prefix)
        if entry is None or not keys.secret_matches(presented, entry.secret_hash):
            raise Unauthorized("The API key is not valid.")
        dead = _dead(entry)
        if dead is not None:
            raise Unauthorized(f"The API key has {dead}.")
        self.usage.note(entry.id)
        return Principal(
            tenant_id=entry.tenant_id,
            tenant_slug=entry.tenant_slug,
            tenant_name=entry.tenant_name,
            key_id=entry.id,
            key_name=entry.name,
            scopes=entry.scopes,
        )

    async def _authenticate_rule_token(self, rule_tokens: RuleTokens, token: str) -> Principal:
        """A rule-set token, valid only while the API key that minted it is: the key is looked
        up as for any request, so revoking it stops its tokens on every worker at once."""
        claims = rule_tokens.verify(token)
        entry = self.cache.get(claims.key_prefix) or await self._load(claims.key_prefix)
        if entry is None or entry.tenant_id != claims.tenant_id:
            raise Unauthorized("The rule-set token is not valid: its API key no longer exists.")
        dead = _dead(entry)
        if dead is not None:
            raise Unauthorized(f"The rule-set token is no longer valid: its API key has {dead}.")
        if not grants(entry.scopes, Scope.RULES):
            raise Unauthorized("The rule-set token is not valid: its API key cannot write rules.")
        self.usage.note(entry.id)
        return Principal(
            tenant_id=entry.tenant_id,
            tenant_slug=entry.tenant_slug,
            tenant_name=entry.tenant_name,
            key_id=entry.id,
            key_name=claims.subject or f"{entry.name} (token)",
            scopes=frozenset({Scope.RULES}),
            kind="rules_token",
            rule_set=claims.rule_set,
        )

    async def _load(self, prefix: str) -> CachedKey | None:
        generation = self.cache.generation
        async with self._sessionmaker() as session:
            row = (
                await session.execute(
                    select(ApiKey, Tenant.slug, Tenant.name)
                    .join(Tenant, Tenant.id == ApiKey.tenant_id)
                    .where(ApiKey.prefix == prefix)
                )
            ).one_or_none()
        if row is None:
            return None
        key, tenant_slug, tenant_name = row
        entry = CachedKey(
            id=key.id,
            tenant_id=key.tenant_id,
            tenant_slug=tenant_slug,
            tenant_name=tenant_name,
            name=key.name,
            scopes=frozenset(Scope(s) for s in key.scopes),
            secret_hash=key.secret_hash,
            expires_at=key.expires_at,
            revoked=key.revoked_at is not None,
        )
        self.cache.put(prefix, entry, loaded_at_generation=generation)
        return entry


def _dead(entry: CachedKey) -> str | None:
    """Why a key may no longer be used (`been revoked`, `expired`), or None while it may."""
    if entry.revoked:
        return "been revoked"
    if entry.expires_at is not None and entry.expires_at <= datetime.now(UTC):
        return "expired"
    return None


def _bearer_token(authorization: str | None) -> str:
    if not authorization:
        raise Unauthorized("An API key is required: send `Authorization: Bearer <key>`.")
    scheme, _, token = authorization.partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        raise Unauthorized("Send the API key as `Authorization: Bearer <key>`.")
    return token.strip()


# Declared so OpenAPI documents bearer auth; the header itself is parsed above, for clear errors.
bearer_scheme = HTTPBearer(
    auto_error=False,
    scheme_name="ApiKey",
    description="An API key, `pl_<prefix>_<secret>`; or a rule-set token, `plr_…`.",
)


class ApiKeyGate:
    """Authenticate every request under `prefix` before routing and before its body is parsed.

    No route under the API can forget authentication, and a caller without a valid key learns
    nothing about routes or body validation: it gets 401.
    """

    def __init__(self, app: asgi.ASGIApp, prefix: str = "/v1/") -> None:
        self.app = app
        self.prefix = prefix

    async def __call__(self, scope: asgi.Scope, receive: asgi.Receive, send: asgi.Send) -> None:
        if scope["type"] == "http" and scope["path"].startswith(self.prefix):
            authenticator: Authenticator = scope["app"].state.authenticator
            try:
                principal = await authenticator.authenticate(
                    Headers(scope=scope).get("authorization")
                )
            except Unauthorized as exc:
                response = problem_response(401, exc.detail, slug=exc.slug, headers=exc.headers)
                await response(scope, receive, send)
                return
            if principal.rule_set is not None and not _rules_path(scope["path"]):
                # Besides each route's scope check: a route added later cannot let one in.
                detail = "A rule-set token reaches only the rules API (`/v1/rules`)."
                await problem_response(403, detail, slug="forbidden")(scope, receive, send)
                return
            scope.setdefault("state", {})[PRINCIPAL_STATE] = principal
        await self.app(scope, receive, send)


def _rules_path(path: str) -> bool:
    return path == RULES_PATH or path.startswith((RULES_PATH + "/", RULES_PATH + ":"))


async def current_principal(
    request: Request,
    _documented: Annotated[HTTPAuthorizationCredentials | None, Depends(bearer_scheme)],
) -> Principal:
    principal: Principal | None = getattr(request.state, PRINCIPAL_STATE, None)
    if principal is not None:
        return principal
    authenticator: Authenticator = request.app.state.authenticator
    return await authenticator.authenticate(request.headers.get("authorization"))


def require_scope(scope: Scope) -> Callable[..., Coroutine[Any, Any, Principal]]:
    """A dependency that authenticates and then insists on `scope` (403 without it)."""

    async def dependency(principal: Annotated[Principal, Depends(current_principal)]) -> Principal:
        if not principal.can(scope):
            raise Forbidden(f"This API key lacks the `{scope.value}` scope.")
        return principal

    return dependency


def require_scopes(*scopes: Scope) -> Callable[..., Coroutine[Any, Any, Principal]]:
    """A dependency that insists on every one of `scopes` (403 naming them otherwise), for
    what does two things at once (an eval runs prompts and reads a dataset)."""

    async def dependency(principal: Annotated[Principal, Depends(current_principal)]) -> Principal:
        if not all(principal.can(scope) for scope in scopes):
            named = " and ".join(f"`{scope.value}`" for scope in scopes)
            raise Forbidden(f"This needs the {named} scopes.")
        return principal

    return dependency


PrincipalDep = Annotated[Principal, Depends(current_principal)]
ReadPrincipal = Annotated[Principal, Depends(require_scope(Scope.READ))]
WritePrincipal = Annotated[Principal, Depends(require_scope(Scope.WRITE))]
RunPrincipal = Annotated[Principal, Depends(require_scope(Scope.RUN))]
AdminPrincipal = Annotated[Principal, Depends(require_scope(Scope.ADMIN))]
RulesPrincipal = Annotated[Principal, Depends(require_scope(Scope.RULES))]
RunReadPrincipal = Annotated[Principal, Depends(require_scopes(Scope.RUN, Scope.READ))]
RunRulesPrincipal = Annotated[Principal, Depends(require_scopes(Scope.RULES, Scope.RUN))]
