"""Signing in and out of the web UI, and who a browser request is.

The cookie holds a random token signed with the secret key (a forged or stale cookie is
refused before the database is asked); the database holds only the token's SHA-256, the user,
the tenant being worked in and the session's CSRF token. One query per page load finds the
session, the user and all their memberships, so the role in force is always the current one:
a member removed from a tenant, or a changed role, takes effect on the next request.
"""

from __future__ import annotations

import functools
import hashlib
import secrets
import time
import uuid
from collections import deque
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from itsdangerous import BadSignature, TimestampSigner
from sqlalchemy import delete, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from promptlogic.audit.service import Actor
from promptlogic.tenancy.models import Membership, Tenant, User
from promptlogic.tenancy.passwords import hash_password, verify_password_async
from promptlogic.tenancy.principal import Principal
from promptlogic.tenancy.roles import ROLE_SCOPES, Role, Scope
from promptlogic.tenancy.service import normalize_email
from promptlogic.ui.models import WebSession

SESSION_COOKIE = "promptlogic_session"
SESSION_LIFETIME = timedelta(hours=12)
_SALT = "promptlogic.ui.session"


@functools.cache
def _dummy_hash() -> str:
    """A real argon2 hash to verify against when the email is unknown: that takes as long as a
    wrong password, so response times do not tell which emails have accounts."""
    return hash_password(secrets.token_urlsafe(16))


@dataclass(frozen=True, slots=True)
class TenantChoice:
    id: uuid.UUID
    slug: str
    name: str
    role: Role


@dataclass(frozen=True, slots=True)
class SignedIn:
    """A browser request's member: who, in which tenant, with which role, and the CSRF token."""

    session_id: uuid.UUID
    user_id: uuid.UUID
    email: str
    csrf_token: str
    tenant: TenantChoice
    tenants: tuple[TenantChoice, ...]

    @property
    def role(self) -> Role:
        return self.tenant.role

    @property
    def principal(self) -> Principal:
        return Principal(
            tenant_id=self.tenant.id,
            tenant_slug=self.tenant.slug,
            tenant_name=self.tenant.name,
            key_id=self.user_id,
            key_name=self.email,
            scopes=ROLE_SCOPES[self.role],
            kind="user",
        )

    @property
    def actor(self) -> Actor:
        return self.principal.actor

    def can(self, scope: Scope) -> bool:
        return self.principal.can(scope)


class CookieSigner:
    """Signs session tokens with the secret key; `unsign` refuses tampered or expired ones."""

    def __init__(self, secret_key: str) -> None:
        self._signer = TimestampSigner(secret_key, salt=_SALT)

    def sign(self, token: str) -> str:
        return self._signer.sign(token).decode()

    def unsign(self, cookie: str) -> str | None:
        try:
            value = self._signer.unsign(cookie, max_age=int(SESSION_LIFETIME.total_seconds()))
        except (BadSignature, UnicodeError):
            return None
        return value.decode()


def _digest(token: str) -> bytes:
    return hashlib.sha256(token.encode()).digest()


class LoginThrottle:
    """At most `attempts` failed sign-ins per email and per client address in `window` seconds
    (per worker process): guessing passwords gets slow without locking the real user out for
    long. Keys whose failures have all expired are swept out once their number doubles (from
    `sweep_above`): sign-ins with ever new emails would otherwise grow the table for ever."""

    def __init__(
        self, attempts: int = 10, window: float = 900.0, *, sweep_above: int = 10_000
    ) -> None:
        self.attempts = attempts
        self.window = window
        self.sweep_above = sweep_above
        self._failures: dict[str, deque[float]] = {}
        self._sweep_at = sweep_above

    def _recent(self, key: str, now: float) -> deque[float]:
        failures = self._failures.setdefault(key, deque())
        while failures and failures[0] <= now - self.window:
            failures.popleft()
        if not failures:
            del self._failures[key]
            return deque()
        return failures

    def retry_after(self, *keys: str) -> float | None:
        """Seconds until another attempt is allowed, or None when it is allowed now."""
        now = time.monotonic()
        waits = [
            failures[0] + self.window - now
            for key in keys
            if len(failures := self._recent(key, now)) >= self.attempts
        ]
        return max(waits) if waits else None

    def failed(self, *keys: str) -> None:
        now = time.monotonic()
        if len(self._failures) >= self._sweep_at:
            self._sweep(now)
        for key in keys:
            self._failures.setdefault(key, deque()).append(now)

    def _sweep(self, now: float) -> None:
        expired = [key for key, times in self._failures.items() if times[-1] <= now - self.window]
        for key in expired:
            del self._failures[key]
        self._sweep_at = max(self.sweep_above, 2 * len(self._failures))

    def __len__(self) -> int:
        """How many emails and addresses are tracked."""
        return len(self._failures)

    def succeeded(self, *keys: str) -> None:
        for key in keys:
            self._failures.pop(key, None)


async def authenticate(session: AsyncSession, email: str, password: str) -> User | None:
    """The user with this email and password, if they belong to at least one tenant."""
    user = await session.scalar(select(User).where(User.email == normalize_email(email)))
    password_hash = user.password_hash if user is not None else None
    valid = await verify_password_async(password_hash or _dummy_hash(), password)
    if user is None or password_hash is None or not valid:
        return None
    member_of = await session.scalar(
        select(Membership.id).where(Membership.user_id == user.id).limit(1)
    )
    return user if member_of is not None else None


async def start_session(
    session: AsyncSession, user: User, *, tenant_slug: str | None = None
) -> tuple[str, WebSession]:
    """Open a session for `user` in their first tenant by slug (or `tenant_slug`); returns the
    raw token for the cookie and the row."""
    choices = await _memberships(session, user.id)
    tenant = next((c for c in choices if c.slug == tenant_slug), choices[0])
    token = secrets.token_urlsafe(32)
    row = WebSession(
        token_hash=_digest(token),
        user_id=user.id,
        tenant_id=tenant.id,
        csrf_token=secrets.token_urlsafe(32),
        expires_at=datetime.now(UTC) + SESSION_LIFETIME,
    )
    session.add(row)
    # Expired sessions of this user go as they sign in again: the table does not grow.
    await session.execute(
        delete(WebSession).where(
            WebSession.user_id == user.id, WebSession.expires_at < datetime.now(UTC)
        )
    )
    await session.flush()
    return token, row


async def _memberships(session: AsyncSession, user_id: uuid.UUID) -> list[TenantChoice]:
    rows = await session.execute(
        select(Tenant.id, Tenant.slug, Tenant.name, Membership.role)
        .join(Membership, Membership.tenant_id == Tenant.id)
        .where(Membership.user_id == user_id)
        .order_by(Tenant.slug)
    )
    return [TenantChoice(id, slug, name, Role(role)) for id, slug, name, role in rows]


async def load_session(session: AsyncSession, token: str) -> SignedIn | None:
    """The signed-in member behind `token`, in one query; None if it is unknown, expired, or
    the user no longer belongs to any tenant."""
    rows = (
        await session.execute(
            select(
                WebSession.id,
                WebSession.user_id,
                WebSession.tenant_id,
                WebSession.csrf_token,
                User.email,
                Tenant.id,
                Tenant.slug,
                Tenant.name,
                Membership.role,
            )
            .join(User, User.id == WebSession.user_id)
            .join(Membership, Membership.user_id == User.id)
            .join(Tenant, Tenant.id == Membership.tenant_id)
            .where(
                WebSession.token_hash == _digest(token),
                WebSession.expires_at > datetime.now(UTC),
            )
            .order_by(Tenant.slug)
        )
    ).all()
    if not rows:
        return None
    choices = tuple(TenantChoice(row[5], row[6], row[7], Role(row[8])) for row in rows)
    session_id, user_id, current_tenant, csrf_token, email = rows[0][:5]
    # Removed from the tenant being worked in: carry on in the first one still held.
    current = next((c for c in choices if c.id == current_tenant), choices[0])
    return SignedIn(session_id, user_id, email, csrf_token, current, choices)


async def switch_tenant(session: AsyncSession, signed_in: SignedIn, slug: str) -> TenantChoice:
    """Work in another of the user's tenants; LookupError if they are not a member of it."""
    choice = next((c for c in signed_in.tenants if c.slug == slug), None)
    if choice is None:
        raise LookupError(slug)
    await session.execute(
        update(WebSession).where(WebSession.id == signed_in.session_id).values(tenant_id=choice.id)
    )
    return choice


async def end_session(session: AsyncSession, session_id: uuid.UUID) -> None:
    await session.execute(delete(WebSession).where(WebSession.id == session_id))
