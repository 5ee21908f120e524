"""Rule-set tokens: short-lived, signed bearer tokens that reach one rule set and nothing else.

A product app mints one with its API key (`POST /v1/rules/tokens`) and hands it to its own end
user, whose browser then edits that set's rules directly. The token is `plr_` and an
itsdangerous payload signed with the installation's secret key under its own salt, so neither
a UI cookie nor any other signed value of ours passes for one. It names the minting key by
prefix: every use looks that key up, so revoking (or expiring) the key kills its tokens at once.
"""

from __future__ import annotations

import hashlib
import re
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from itsdangerous import BadData, URLSafeSerializer
from sqlalchemy.ext.asyncio import AsyncSession

from promptlogic.audit import service as audit
from promptlogic.errors import NotFound, Unauthorized
from promptlogic.rules import service
from promptlogic.rules.models import Rule
from promptlogic.rules.schemas import set_name
from promptlogic.tenancy import service as tenancy
from promptlogic.tenancy.principal import Principal

TOKEN_PREFIX = "plr_"  # noqa: S105 - a prefix, not a secret
SALT = "promptlogic.rules.token"
DEFAULT_MINUTES = 15
MAX_MINUTES = 1_440  # one day: a token is for a session of editing, not a standing credential
MAX_SUBJECT_CHARS = 200
_KEY_PREFIX = re.compile(r"^[0-9a-f]{12}$")  # as tenancy.keys.KEY_PATTERN

clock: Callable[[], float] = time.time
"""Unix seconds now; tests replace it to move past a token's expiry without waiting."""


def subject_name(value: str) -> str:
    """The app's name for its end user: 1 to MAX_SUBJECT_CHARS printable characters."""
    if not value:
        raise ValueError("must not be empty")
    if len(value) > MAX_SUBJECT_CHARS:
        raise ValueError(f"is {len(value)} characters long; the limit is {MAX_SUBJECT_CHARS}")
    if not value.isprintable():
        raise ValueError("must be printable text, without control characters or line breaks")
    if value != value.strip():
        raise ValueError("must not start or end with whitespace")
    return value


@dataclass(frozen=True, slots=True)
class RuleToken:
    """What a token grants: one tenant's set, until `expires_at`, while its key lives."""

    tenant_id: uuid.UUID
    rule_set: str
    expires_at: int  # unix seconds
    key_prefix: str  # the minting API key's
    subject: str | None = None

    @property
    def expires(self) -> datetime:
        return datetime.fromtimestamp(self.expires_at, UTC)


def _invalid() -> Unauthorized:
    return Unauthorized("The rule-set token is not valid: it is malformed or its signature fails.")


def _claims(payload: Any) -> RuleToken:
    """The token a verified payload describes; anything unexpected is an invalid token."""
    if not isinstance(payload, dict) or not payload.keys() <= {"t", "s", "e", "k", "u"}:
        raise _invalid()
    try:
        tenant_id = uuid.UUID(payload["t"])
        rule_set = set_name(payload["s"])
        expires_at = payload["e"]
        key_prefix = payload["k"]
        subject = payload.get("u")
        if subject is not None:
            subject = subject_name(subject)
    except (KeyError, TypeError, ValueError, AttributeError):
        raise _invalid() from None
    if type(expires_at) is not int or not isinstance(key_prefix, str):
        raise _invalid()
    if not _KEY_PREFIX.match(key_prefix):
        raise _invalid()
    return RuleToken(tenant_id, rule_set, expires_at, key_prefix, subject)


class RuleTokens:
    """Signs and verifies rule-set tokens with the installation's secret key."""

    def __init__(self, secret_key: str) -> None:
        self._serializer = URLSafeSerializer(
            secret_key, salt=SALT, signer_kwargs={"digest_method": hashlib.sha256}
        )

    @staticmethod
    def is_token(bearer: str) -> bool:
        return bearer.startswith(TOKEN_PREFIX)

    def sign(self, token: RuleToken) -> str:
        payload: dict[str, Any] = {
            "t": str(token.tenant_id),
            "s": token.rule_set,
            "e": token.expires_at,
            "k": token.key_prefix,
        }
        if token.subject is not None:
            payload["u"] = token.subject
        return TOKEN_PREFIX + self._serializer.dumps(payload)

    def verify(self, bearer: str, *, now: float | None = None) -> RuleToken:
        """The token's claims; 401 when it is malformed, tampered with, or expired. The
        signature is compared in constant time (itsdangerous); the token is never echoed."""
        if not self.is_token(bearer):
            raise _invalid()
        try:
            payload = self._serializer.loads(bearer.removeprefix(TOKEN_PREFIX))
        except (BadData, UnicodeError):
            raise _invalid() from None
        token = _claims(payload)
        if (clock() if now is None else now) >= token.expires_at:
            raise Unauthorized("The rule-set token has expired; ask the app for a new one.")
        return token


async def mint(
    session: AsyncSession,
    tokens: RuleTokens,
    *,
    principal: Principal,
    rule_set: str,
    minutes: int,
    subject: str | None,
) -> tuple[str, RuleToken]:
    """A token for `rule_set` from the principal's API key, valid `minutes` (never past the
    key's own expiry), and its audit event. The token itself is never stored or audited."""
    key = await tenancy.get_api_key(session, tenant_id=principal.tenant_id, key_id=principal.key_id)
    expires_at = int(clock()) + minutes * 60
    if key.expires_at is not None:
        expires_at = min(expires_at, int(key.expires_at.timestamp()))
    claims = RuleToken(principal.tenant_id, rule_set, expires_at, key.prefix, subject)
    await audit.record(
        session,
        tenant_id=principal.tenant_id,
        actor=principal.actor,
        action="rule_token.create",
        target_type="rule_scope",
        target_id=f"set:{rule_set}",
        after={
            "set": rule_set,
            "subject": subject,
            "minutes": minutes,
            "expires_at": claims.expires.isoformat(),
        },
    )
    return tokens.sign(claims), claims


def _outside(principal: Principal) -> NotFound:
    return NotFound(f"No such rules here: this token reaches only the set `{principal.rule_set}`.")


def confine(principal: Principal, *, prompt: str | None, rule_set: str | None) -> None:
    """A token principal reaches exactly its own set: any other scope is unknown to it (404).
    Every other principal passes."""
    if principal.rule_set is None:
        return
    if prompt is not None or rule_set != principal.rule_set:
        raise _outside(principal)


def list_filter(principal: Principal, *, prompt: str | None, rule_set: str | None) -> str | None:
    """The `set` filter a rule list applies: a token's own set, whatever the query left out."""
    if principal.rule_set is None:
        return rule_set
    confine(principal, prompt=prompt, rule_set=principal.rule_set if rule_set is None else rule_set)
    return principal.rule_set


def confine_rule(principal: Principal, rule: Rule) -> None:
    """A rule outside a token's set answers as an unknown rule does (another tenant's, too)."""
    if principal.rule_set is not None and rule.rule_set != principal.rule_set:
        raise NotFound(f"No rule `{rule.id}`.")


async def confine_rule_id(session: AsyncSession, principal: Principal, rule_id: uuid.UUID) -> None:
    """For a token, 404 unless the rule is in its set, before a route reads or changes it.

    A rule's scope never changes, so checking before the service locks it is enough. Other
    principals cost no query.
    """
    if principal.rule_set is None:
        return
    rule = await service.get_rule(session, tenant_id=principal.tenant_id, rule_id=rule_id)
    confine_rule(principal, rule)
