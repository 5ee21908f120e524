"""Signing in and out, and switching tenants."""

from __future__ import annotations

import hmac
import math
import secrets
from typing import Annotated

from fastapi import APIRouter, Form, Query, Request
from fastapi.responses import Response

from promptlogic.db.engine import SessionDep
from promptlogic.ui.sessions import (
    SESSION_COOKIE,
    SESSION_LIFETIME,
    LoginThrottle,
    SignedIn,
    authenticate,
    end_session,
    load_session,
    start_session,
    switch_tenant,
)
from promptlogic.ui.web import (
    HOME,
    RULES_HOME,
    Member,
    flash,
    home_of,
    is_https,
    page,
    redirect,
    rules_only,
    signer_of,
)

router = APIRouter()

LOGIN_CSRF_COOKIE = "promptlogic_login"
_throttle = LoginThrottle()

Text = Annotated[str, Form(max_length=1000)]


def _safe_next(target: str | None) -> str:
    """Only a page of this UI: an open redirect to another site is refused."""
    local = bool(target) and target.startswith("/ui/") and not target.startswith("/ui//")
    if local and not any(char in target for char in "\\\r\n"):
        return target
    return HOME


def _landing(target: str, member: SignedIn | None) -> str:
    """A rule author lands in the rules area, whatever page they asked for: the others
    would refuse them."""
    if member is None or not rules_only(member.role):
        return target
    in_area = target == RULES_HOME or target.startswith((f"{RULES_HOME}/", f"{RULES_HOME}?"))
    return target if in_area else RULES_HOME


async def _signed_in(request: Request, session: SessionDep) -> SignedIn | None:
    cookie = request.cookies.get(SESSION_COOKIE)
    token = signer_of(request).unsign(cookie) if cookie else None
    return await load_session(session, token) if token else None


@router.get("/", include_in_schema=False)
async def home(request: Request, session: SessionDep) -> Response:
    return redirect(_landing(HOME, await _signed_in(request, session)))


def _login_form(
    request: Request,
    next_page: str,
    *,
    error: str | None = None,
    email: str = "",
    status: int = 200,
) -> Response:
    token = secrets.token_urlsafe(32)
    context = {"next": next_page, "error": error, "email": email, "login_token": token}
    response = page(request, "login.html", context, status_code=status)
    response.set_cookie(
        LOGIN_CSRF_COOKIE,
        token,
        httponly=True,
        samesite="strict",
        secure=is_https(request),
        path="/ui/login",
    )
    return response


@router.get("/login")
async def login_page(
    request: Request,
    session: SessionDep,
    next_page: Annotated[str | None, Query(alias="next", max_length=2000)] = None,
) -> Response:
    member = await _signed_in(request, session)
    if member is not None:
        return redirect(_landing(_safe_next(next_page), member))
    return _login_form(request, _safe_next(next_page))


@router.post("/login")
async def login(
    request: Request,
    session: SessionDep,
    email: Text,
    password: Text,
    csrf_token: Text = "",
    next_page: Annotated[str, Form(alias="next", max_length=2000)] = HOME,
) -> Response:
    # Login CSRF: the form's token must match the cookie set with the form (double submit).
    expected = request.cookies.get(LOGIN_CSRF_COOKIE, "")
    if not expected or not hmac.compare_digest(csrf_token.encode(), expected.encode()):
        error = "The sign-in form expired. Please try again."
        return _login_form(request, _safe_next(next_page), error=error, email=email, status=403)
    client = request.client.host if request.client else "unknown"
    keys = (f"email:{email.strip().lower()}", f"client:{client}")
    if (wait := _throttle.retry_after(*keys)) is not None:
        error = f"Too many failed sign-ins. Try again in {math.ceil(wait / 60)} minutes."
        return _login_form(request, _safe_next(next_page), error=error, email=email, status=429)
    user = await authenticate(session, email, password)
    if user is None:
        _throttle.failed(*keys)
        error = "That email and password do not match an account."
        return _login_form(request, _safe_next(next_page), error=error, email=email, status=401)
    _throttle.succeeded(*keys)
    token, _row = await start_session(session, user)
    response = redirect(_landing(_safe_next(next_page), await load_session(session, token)))
    response.set_cookie(
        SESSION_COOKIE,
        signer_of(request).sign(token),
        max_age=int(SESSION_LIFETIME.total_seconds()),
        httponly=True,
        samesite="lax",
        secure=is_https(request),
        path="/ui",
    )
    response.delete_cookie(LOGIN_CSRF_COOKIE, path="/ui/login")
    return response


@router.post("/logout")
async def logout(request: Request, member: Member, session: SessionDep) -> Response:
    await end_session(session, member.session_id)
    response = redirect("/ui/login")
    response.delete_cookie(SESSION_COOKIE, path="/ui")
    return flash(request, response, "You are signed out.")


@router.post("/tenant")
async def switch(request: Request, member: Member, session: SessionDep, tenant: Text) -> Response:
    try:
        choice = await switch_tenant(session, member, tenant)
    except LookupError:
        response = redirect(home_of(member.role))
        return flash(request, response, "You are not a member of that tenant.", "error")
    return flash(request, redirect(home_of(choice.role)), f"Now working in {choice.name}.")
