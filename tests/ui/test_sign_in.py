"""Signing in and out of the UI, sessions, CSRF and the tenant switcher, over HTTP."""

from __future__ import annotations

from types import SimpleNamespace

from sqlalchemy import text

from promptlogic.ui.sessions import SESSION_COOKIE
from tests.conftest import client_for
from tests.factories import make_tenant
from tests.ui.support import PASSWORD, csrf_of, make_member, sign_in


async def test_pages_need_a_session_and_send_the_browser_to_sign_in(app, clean):
    async with client_for(app) as client:
        answer = await client.get("/ui/prompts?q=x")
    assert answer.status_code == 303
    assert answer.headers["location"] == "/ui/login?next=%2Fui%2Fprompts%3Fq%3Dx"


async def test_sign_in_sets_a_hardened_cookie_and_signing_out_ends_the_session(app, owner, session):
    async with client_for(app) as client:
        form = await client.get("/ui/login")
        answer = await client.post(
            "/ui/login",
            data={
                "email": owner.email.upper(),
                "password": owner.password,
                "csrf_token": csrf_of(form.text),
                "next": "/ui/runs",
            },
        )
        assert answer.status_code == 303
        assert answer.headers["location"] == "/ui/runs"
        cookie = next(
            value
            for name, value in answer.headers.multi_items()
            if name == "set-cookie" and value.startswith(SESSION_COOKIE)
        )
        assert "HttpOnly" in cookie
        assert "SameSite=lax" in cookie
        assert "Path=/ui" in cookie
        stolen = client.cookies[SESSION_COOKIE]
        home = await client.get("/ui/prompts")
        assert home.status_code == 200
        assert owner.email in home.text
        out = await client.post("/ui/logout", data={"csrf_token": csrf_of(home.text)})
        assert out.status_code == 303
    rows = await session.scalar(text("SELECT count(*) FROM web_sessions"))
    assert rows == 0
    # The old cookie, replayed after signing out, is worth nothing.
    async with client_for(app) as replay:
        replay.cookies.set(SESSION_COOKIE, stolen, path="/ui")
        assert (await replay.get("/ui/prompts")).status_code == 303


async def test_wrong_password_and_unknown_email_answer_the_same(app, owner):
    async with client_for(app) as client:
        answers = []
        for email, password in ((owner.email, "wrong password"), ("nobody@x.example", PASSWORD)):
            form = await client.get("/ui/login")
            answer = await client.post(
                "/ui/login",
                data={"email": email, "password": password, "csrf_token": csrf_of(form.text)},
            )
            answers.append((answer.status_code, "do not match an account" in answer.text))
    assert answers == [(401, True), (401, True)]


async def test_sign_in_form_without_its_token_is_refused(app, owner):
    async with client_for(app) as client:
        answer = await client.post(
            "/ui/login", data={"email": owner.email, "password": owner.password}
        )
    assert answer.status_code == 403
    assert SESSION_COOKIE not in answer.headers.get("set-cookie", "")


async def test_a_forged_or_tampered_cookie_is_not_a_session(app, owner):
    async with client_for(app) as client:
        await sign_in(client, owner)
        real = client.cookies[SESSION_COOKIE]
        client.cookies.set(
            SESSION_COOKIE, real[:-2] + ("AA" if real[-2:] != "AA" else "BB"), path="/ui"
        )
        assert (await client.get("/ui/prompts")).status_code == 303


async def test_next_never_leaves_the_ui(app, owner):
    for target in ("https://evil.example/", "//evil.example/ui/", "/v1/me", "/ui//evil.example"):
        async with client_for(app) as client:
            form = await client.get("/ui/login")
            answer = await client.post(
                "/ui/login",
                data={
                    "email": owner.email,
                    "password": owner.password,
                    "csrf_token": csrf_of(form.text),
                    "next": target,
                },
            )
            assert answer.headers["location"] == "/ui/prompts", target


async def test_repeated_failures_are_throttled(app, owner, monkeypatch):
    from promptlogic.ui.routes import account

    monkeypatch.setattr(account, "_throttle", account.LoginThrottle(attempts=3))
    async with client_for(app) as client:
        statuses = []
        for password in ("a", "b", "c", owner.password):
            form = await client.get("/ui/login")
            answer = await client.post(
                "/ui/login",
                data={"email": owner.email, "password": password, "csrf_token": csrf_of(form.text)},
            )
            statuses.append(answer.status_code)
    assert statuses == [401, 401, 401, 429]


def test_the_throttle_forgets_what_expired_and_keeps_what_did_not(monkeypatch):
    """A spray of sign-ins with ever new emails must not grow the throttle for ever, and a
    sweep must not forget an email still being guessed."""
    from promptlogic.ui import sessions

    clock = [1000.0]
    monkeypatch.setattr(sessions, "time", SimpleNamespace(monotonic=lambda: clock[0]))
    throttle = sessions.LoginThrottle(attempts=3, window=60, sweep_above=100)
    for n in range(99):
        throttle.failed(f"email:spray-{n}@example.com", "client:203.0.113.9")
    assert len(throttle) == 100

    clock[0] = 1070.0  # the spray has expired
    for _ in range(3):
        throttle.failed("email:target@example.com", "client:198.51.100.7")
    assert len(throttle) == 2
    assert throttle.retry_after("email:target@example.com") is not None

    clock[0] = 1080.0
    for n in range(120):
        throttle.failed(f"email:more-{n}@example.com")
    assert len(throttle) == 122  # nothing had expired: the sweep kept every key
    assert throttle.retry_after("email:target@example.com") is not None
    clock[0] = 1131.0
    assert throttle.retry_after("email:target@example.com") is None


async def test_state_changing_requests_need_the_csrf_token(app, owner):
    async with client_for(app) as client:
        csrf = await sign_in(client, owner)
        assert (await client.post("/ui/logout")).status_code == 403
        assert (await client.post("/ui/logout", data={"csrf_token": "x" * 43})).status_code == 403
        other_site = await client.post(
            "/ui/logout", data={"csrf_token": csrf}, headers={"Origin": "https://evil.example"}
        )
        assert other_site.status_code == 403
        # Still signed in: none of the refused posts did anything.
        assert (await client.get("/ui/prompts")).status_code == 200
        assert (await client.post("/ui/logout", headers={"X-CSRF-Token": csrf})).status_code == 303


async def test_pages_carry_a_strict_content_security_policy(as_owner):
    client, _ = as_owner
    answer = await client.get("/ui/prompts")
    assert "script-src 'self'" in answer.headers["content-security-policy"]
    assert answer.headers["x-frame-options"] == "DENY"
    assert answer.headers["cache-control"] == "no-store"


async def test_a_member_of_two_tenants_switches_between_them(app, session, tenant, owner):
    other = await make_tenant(session, "globex")
    await make_member(session, other, "viewer", email=owner.email)
    async with client_for(app) as client:
        csrf = await sign_in(client, owner)
        page = await client.get("/ui/prompts")
        assert 'name="tenant"' in page.text
        assert "globex" in page.text
        moved = await client.post("/ui/tenant", data={"csrf_token": csrf, "tenant": "globex"})
        assert moved.status_code == 303
        page = await client.get("/ui/prompts")
        assert '<span class="role">viewer</span>' in page.text
        refused = await client.post("/ui/tenant", data={"csrf_token": csrf, "tenant": "initech"})
        assert refused.status_code == 303
        page = await client.get("/ui/prompts")
        assert '<span class="role">viewer</span>' in page.text
