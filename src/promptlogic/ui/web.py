"""What every UI page shares: the templates, who is signed in, CSRF, flash messages, headers.

The UI's own templates are trusted files of this package, rendered with autoescaping; tenant
text only ever reaches them as data. Every state-changing request must carry the session's
CSRF token (a form field or the `X-CSRF-Token` header) and, when the browser sends one, an
`Origin` of this site.
"""

from __future__ import annotations

import hmac
import json
from datetime import datetime
from typing import Annotated, Any
from urllib.parse import quote

from fastapi import Depends, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from fastapi.templating import Jinja2Templates
from itsdangerous import BadSignature, URLSafeSerializer
from jinja2 import Environment, PackageLoader, StrictUndefined, select_autoescape
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from promptlogic import __version__
from promptlogic.db.engine import SessionDep
from promptlogic.errors import Forbidden
from promptlogic.tenancy.roles import ROLE_SCOPES, Role, grants
from promptlogic.tenancy.roles import Scope as KeyScope
from promptlogic.ui.sessions import SESSION_COOKIE, CookieSigner, SignedIn, load_session

UNSAFE_METHODS = frozenset({"POST", "PUT", "PATCH", "DELETE"})
CSRF_FIELD = "csrf_token"
CSRF_HEADER = "x-csrf-token"
FLASH_COOKIE = "promptlogic_flash"
HOME = "/ui/prompts"
RULES_HOME = "/ui/rules"

CONTENT_SECURITY_POLICY = "; ".join(
    [
        "default-src 'self'",
        "script-src 'self'",
        "style-src 'self'",
        "img-src 'self' data:",
        "connect-src 'self'",
        "form-action 'self'",
        "frame-ancestors 'none'",
        "base-uri 'none'",
        "object-src 'none'",
    ]
)
SECURITY_HEADERS = [
    (b"content-security-policy", CONTENT_SECURITY_POLICY.encode()),
    (b"x-content-type-options", b"nosniff"),
    (b"referrer-policy", b"same-origin"),
    (b"x-frame-options", b"DENY"),
    (b"cache-control", b"no-store"),
]
STATIC_HEADERS = [
    (b"x-content-type-options", b"nosniff"),
    (b"cache-control", b"public, max-age=86400"),
]


class NotSignedIn(Exception):
    """No valid session cookie: pages redirect to the sign-in form."""


def _when(value: datetime | None) -> str:
    return "" if value is None else value.strftime("%Y-%m-%d %H:%M UTC")


def _pretty(value: Any) -> str:
    return json.dumps(value, indent=2, ensure_ascii=False, sort_keys=False)


def _static(path: str) -> str:
    return f"/ui/static/{path}?v={__version__}"


def rules_only(role: Role) -> bool:
    """A role that writes rules but not prompts (a rule author): the UI gives it the rules
    area alone, so the prompt editor, the playground and the rest are never offered to it."""
    scopes = ROLE_SCOPES[role]
    return grants(scopes, KeyScope.RULES) and not grants(scopes, KeyScope.WRITE)


def home_of(role: Role) -> str:
    """Where a member of `role` lands: the rules area for a rule author, else the prompts."""
    return RULES_HOME if rules_only(role) else HOME


def _environment() -> Environment:
    environment = Environment(
        loader=PackageLoader("promptlogic.ui", "templates"),
        autoescape=select_autoescape(default=True, default_for_string=True),
        undefined=StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
    )
    environment.filters["when"] = _when
    environment.filters["pretty"] = _pretty
    environment.globals["static"] = _static
    environment.globals["Scope"] = KeyScope
    environment.globals["rules_only"] = rules_only
    environment.globals["home_of"] = home_of
    return environment


templates = Jinja2Templates(env=_environment())


def signer_of(request: Request) -> CookieSigner:
    return request.app.state.cookie_signer  # type: ignore[no-any-return]


def _flash_serializer(request: Request) -> URLSafeSerializer:
    return URLSafeSerializer(request.app.state.settings.resolved_secret_key(), salt="ui.flash")


def flash(request: Request, response: Response, message: str, kind: str = "ok") -> Response:
    """Show `message` once, on the next page this browser loads."""
    value = _flash_serializer(request).dumps({"message": message, "kind": kind})
    response.set_cookie(
        FLASH_COOKIE, value, httponly=True, samesite="lax", secure=is_https(request), path="/ui"
    )
    return response


def _take_flash(request: Request) -> dict[str, str] | None:
    raw = request.cookies.get(FLASH_COOKIE)
    if not raw:
        return None
    try:
        value = _flash_serializer(request).loads(raw)
    except BadSignature:
        return None
    return value if isinstance(value, dict) else None


def is_https(request: Request) -> bool:
    return request.url.scheme == "https"


def redirect(url: str) -> RedirectResponse:
    """After a form post: 303, so a reload does not post again."""
    return RedirectResponse(url, status_code=303)


def login_redirect(request: Request) -> RedirectResponse:
    target = request.url.path + (f"?{request.url.query}" if request.url.query else "")
    return redirect(f"/ui/login?next={quote(target, safe='')}")


def page(
    request: Request,
    template: str,
    context: dict[str, Any] | None = None,
    *,
    status_code: int = 200,
    me: SignedIn | None = None,
) -> HTMLResponse:
    """Render a page with the layout's needs: the member, their CSRF token, a flash message."""
    me = me if me is not None else getattr(request.state, "signed_in", None)
    values = {
        "me": me,
        "csrf_token": me.csrf_token if me is not None else "",
        "flash": _take_flash(request),
        "path": request.url.path,
        **(context or {}),
    }
    response = templates.TemplateResponse(request, template, values, status_code=status_code)
    if values["flash"] is not None:
        response.delete_cookie(FLASH_COOKIE, path="/ui")
    return response


def wants_json(request: Request) -> bool:
    """Calls from the page's scripts (preview, playground) get problem+json, not pages."""
    accept = request.headers.get("accept", "")
    return "application/json" in accept or "text/event-stream" in accept


def _same_origin(request: Request) -> bool:
    origin = request.headers.get("origin")
    if origin is None or origin == "null":
        return origin is None
    host = request.headers.get("host", "")
    return origin in (f"{request.url.scheme}://{host}",)


async def _check_csrf(request: Request, expected: str) -> None:
    if not _same_origin(request):
        raise Forbidden("This request came from another site.")
    sent = request.headers.get(CSRF_HEADER)
    if sent is None:
        content_type = request.headers.get("content-type", "")
        if content_type.startswith(("application/x-www-form-urlencoded", "multipart/form-data")):
            field = (await request.form()).get(CSRF_FIELD)
            sent = field if isinstance(field, str) else None
    if not sent or not hmac.compare_digest(sent.encode(), expected.encode()):
        raise Forbidden("The form's security token is missing or out of date. Reload the page.")


async def current_member(request: Request, session: SessionDep) -> SignedIn:
    """The signed-in member (checking the CSRF token on any state-changing request)."""
    cookie = request.cookies.get(SESSION_COOKIE)
    token = signer_of(request).unsign(cookie) if cookie else None
    signed_in = await load_session(session, token) if token else None
    if signed_in is None:
        raise NotSignedIn
    request.state.signed_in = signed_in
    if request.method in UNSAFE_METHODS:
        await _check_csrf(request, signed_in.csrf_token)
    return signed_in


Member = Annotated[SignedIn, Depends(current_member)]


def _needs(scope: KeyScope, what: str) -> Any:
    async def check(member: Member) -> SignedIn:
        if not member.can(scope):
            raise Forbidden(f"Your role ({member.role}) cannot {what}.")
        if rules_only(member.role):
            raise Forbidden(
                f"Your role ({member.role}) works in the rules area only: open {RULES_HOME}."
            )
        return member

    return Depends(check)


Reader = Annotated[SignedIn, _needs(KeyScope.READ, "read this tenant's data")]
Runner = Annotated[SignedIn, _needs(KeyScope.RUN, "run prompts")]
Editor = Annotated[SignedIn, _needs(KeyScope.WRITE, "change prompts")]
Admin = Annotated[SignedIn, _needs(KeyScope.ADMIN, "change settings")]


async def _rules_reader(member: Member) -> SignedIn:
    """The rules area is open to rule authors too: reading it needs `read` or `rules`."""
    if not (member.can(KeyScope.READ) or member.can(KeyScope.RULES)):
        raise Forbidden(f"Your role ({member.role}) cannot read rules.")
    return member


async def _rules_author(member: Member) -> SignedIn:
    if not member.can(KeyScope.RULES):
        raise Forbidden(f"Your role ({member.role}) cannot write rules.")
    return member


RulesReader = Annotated[SignedIn, Depends(_rules_reader)]
RulesAuthor = Annotated[SignedIn, Depends(_rules_author)]


class SecurityHeaders:
    """Adds the UI's security headers (a strict CSP: no inline script or style) to responses."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return

        # Static files carry the release in their URL, so browsers may keep them.
        static = scope["path"].startswith("/ui/static/")
        headers = STATIC_HEADERS if static else SECURITY_HEADERS

        async def with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                present = {name.lower() for name, _ in message.get("headers", [])}
                extra = [(n, v) for n, v in headers if n not in present]
                message["headers"] = [*message.get("headers", []), *extra]
            await send(message)

        await self.app(scope, receive, with_headers)
