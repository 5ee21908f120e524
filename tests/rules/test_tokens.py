"""Rule-set tokens: minted by a key with the `rules` scope, they manage one set's rules and
reach nothing else; they expire, die with their key, and refuse any tampering."""

from __future__ import annotations

import logging
import re
import time
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest
from itsdangerous import URLSafeSerializer
from sqlalchemy import text

from promptlogic.errors import NotFound
from promptlogic.rules import tokens
from promptlogic.rules.tokens import RuleToken, RuleTokens, confine
from promptlogic.tenancy import auth
from promptlogic.tenancy.principal import Principal
from promptlogic.tenancy.roles import Scope
from promptlogic.ui.sessions import SESSION_COOKIE
from tests.conftest import TEST_SECRET
from tests.factories import make_key, make_tenant
from tests.helpers import assert_names_field, assert_problem, assert_unauthorized
from tests.rules.support import create_rule, patch_rule, rule_ids
from tests.test_cross_tenant import path_params, v1_routes

SET = "account-42"
OTHER_SET = "account-43"
SUBJECT = "customer-42"
MINTS = "SELECT count(*) FROM audit_events WHERE action = 'rule_token.create'"

# The rules routes a token may use, each confined to its set (tested below). The route walk
# fails for any other route that lets a token in, until it is listed here or below, with a test
# of its confinement.
TOKEN_ROUTES = {
    ("POST", "/v1/rules"),
    ("GET", "/v1/rules"),
    ("POST", "/v1/rules:reorder"),
    ("GET", "/v1/rules/{rule_id}"),
    ("PATCH", "/v1/rules/{rule_id}"),
    ("DELETE", "/v1/rules/{rule_id}"),
    ("GET", "/v1/rules/{rule_id}/history"),
}
# Routes of other modules that let a token in and confine it with `tokens.confine` themselves
# (their own tests cover that): walked here with an empty body, they refuse it and change nothing.
CONFINED_ELSEWHERE = {("POST", "/v1/rules/check")}


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


async def mint(client: httpx.AsyncClient, headers: dict[str, str], **body: Any) -> str:
    response = await client.post("/v1/rules/tokens", headers=headers, json={"set": SET, **body})
    assert response.status_code == 201, response.text
    return response.json()["token"]


async def rules_table(session) -> list[tuple[Any, ...]]:
    rows = await session.execute(
        text("SELECT id, tenant_id, revision, priority, enabled, text, author FROM rules")
    )
    return sorted(map(tuple, rows))


def flipped(token: str, index: int) -> str:
    """`token` with the character at `index` changed (a middle one: every bit of it counts)."""
    replacement = "A" if token[index] != "A" else "B"
    return token[:index] + replacement + token[index + 1 :]


def token_principal(rule_set: str | None) -> Principal:
    return Principal(
        tenant_id=uuid.uuid4(),
        tenant_slug="acme",
        tenant_name="Acme",
        key_id=uuid.uuid4(),
        key_name=SUBJECT,
        scopes=frozenset({Scope.RULES}),
        kind="rules_token" if rule_set is not None else "api_key",
        rule_set=rule_set,
    )


# --- minting ---------------------------------------------------------------------------------


async def test_minting_answers_a_token_for_the_set_valid_for_the_minutes_asked(
    client, author, caplog
):
    caplog.set_level(logging.DEBUG)
    before = datetime.now(UTC)
    response = await client.post(
        "/v1/rules/tokens",
        headers=author.headers,
        json={"set": SET, "minutes": 30, "subject": SUBJECT},
    )
    assert response.status_code == 201, response.text
    body = response.json()
    assert set(body) == {"token", "set", "expires_at"}
    assert body["token"].startswith("plr_")
    assert body["set"] == SET
    expires_at = datetime.fromisoformat(body["expires_at"])
    assert before + timedelta(minutes=30) - timedelta(seconds=2) <= expires_at
    assert expires_at <= datetime.now(UTC) + timedelta(minutes=30)
    assert response.headers["cache-control"] == "no-store"
    assert body["token"] not in caplog.text


async def test_minting_lasts_fifteen_minutes_by_default(client, author):
    response = await client.post("/v1/rules/tokens", headers=author.headers, json={"set": SET})
    assert response.status_code == 201, response.text
    left = datetime.fromisoformat(response.json()["expires_at"]) - datetime.now(UTC)
    assert timedelta(minutes=14) < left <= timedelta(minutes=15)


async def test_a_token_never_outlives_the_key_that_minted_it(client, session, tenant):
    key_expiry = datetime.now(UTC) + timedelta(minutes=5)
    short_lived = await make_key(session, tenant, ["rules"], expires_at=key_expiry)
    response = await client.post(
        "/v1/rules/tokens", headers=short_lived.headers, json={"set": SET, "minutes": 60}
    )
    assert response.status_code == 201, response.text
    assert datetime.fromisoformat(response.json()["expires_at"]) <= key_expiry


async def test_minting_is_audited_without_the_token(client, session, author, admin):
    token = await mint(client, author.headers, subject=SUBJECT)
    response = await client.get(
        "/v1/audit", headers=admin.headers, params={"action": "rule_token.create"}
    )
    assert response.status_code == 200, response.text
    [event] = response.json()["items"]
    assert event["actor"] == {"type": "api_key", "id": str(author.key.id), "name": "rules-editor"}
    assert (event["target_type"], event["target_id"]) == ("rule_scope", f"set:{SET}")
    assert event["after"]["set"] == SET
    assert event["after"]["subject"] == SUBJECT
    assert event["after"]["minutes"] == tokens.DEFAULT_MINUTES
    signature = token.rsplit(".", 1)[1]
    stored = await session.scalar(text("SELECT string_agg(e::text, ' ') FROM audit_events e"))
    assert token not in stored
    assert signature not in stored


@pytest.mark.parametrize("scopes", [["admin"], ["write"], ["rules"]])
async def test_keys_that_write_rules_mint_tokens(client, session, tenant, scopes):
    key = await make_key(session, tenant, scopes, name="minter")
    await mint(client, key.headers)


@pytest.mark.parametrize("scopes", [["read"], ["run"], ["read", "run"]])
async def test_a_key_that_cannot_write_rules_cannot_mint(client, session, tenant, scopes):
    key = await make_key(session, tenant, scopes, name="minter")
    response = await client.post("/v1/rules/tokens", headers=key.headers, json={"set": SET})
    problem = assert_problem(response, 403)
    assert "`rules`" in problem["detail"]
    assert await session.scalar(text(MINTS)) == 0


async def test_a_token_cannot_mint_a_token(client, session, author):
    token = await mint(client, author.headers)
    for body in ({"set": SET, "minutes": 1440}, {"set": OTHER_SET}, {"bad": True}):
        response = await client.post("/v1/rules/tokens", headers=bearer(token), json=body)
        problem = assert_problem(response, 403, where=str(body))
        assert "API key" in problem["detail"]
    assert await session.scalar(text(MINTS)) == 1


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"set": SET, "minutes": 0}, "body.minutes"),
        ({"set": SET, "minutes": 1441}, "body.minutes"),
        ({"set": SET, "minutes": "5"}, "body.minutes"),
        ({"set": SET, "minutes": 5.0}, "body.minutes"),
        ({"set": SET, "minutes": True}, "body.minutes"),
        ({"set": SET, "minutes": None}, "body.minutes"),
        ({}, "body.set"),
        ({"set": ""}, "body.set"),
        ({"set": " padded"}, "body.set"),
        ({"set": "a\x00b"}, "body.set"),
        ({"set": "x" * 201}, "body.set"),
        ({"set": SET, "subject": ""}, "body.subject"),
        ({"set": SET, "subject": "line\nbreak"}, "body.subject"),
        ({"set": SET, "subject": " customer"}, "body.subject"),
        ({"set": SET, "subject": "x" * 201}, "body.subject"),
        ({"set": SET, "prompt": "triage"}, "body.prompt"),
        ({"set": SET, "expires_at": "2030-01-01T00:00:00Z"}, "body.expires_at"),
    ],
)
async def test_a_bad_mint_body_is_a_422_naming_the_field(client, session, author, body, field):
    response = await client.post("/v1/rules/tokens", headers=author.headers, json=body)
    assert_names_field(assert_problem(response, 422, where=str(body)), field)
    assert await session.scalar(text(MINTS)) == 0


async def test_the_longest_subject_and_lifetime_are_accepted(client, author):
    await mint(client, author.headers, minutes=1440, subject="é" * 200)


# --- what a token does -----------------------------------------------------------------------


async def test_a_token_manages_the_rules_of_its_set(client, session, author, admin, caplog):
    caplog.set_level(logging.DEBUG)
    token = await mint(client, author.headers, subject=SUBJECT)
    headers = bearer(token)
    await create_rule(client, admin.headers, set=OTHER_SET, text="Not theirs.")

    first = await create_rule(client, headers, set=SET, text="Answer in French.")
    second = await create_rule(client, headers, set=SET, text="Sign with the shop's name.")
    assert first["author"] == SUBJECT
    assert await rule_ids(client, headers) == [first["id"], second["id"]]
    assert await rule_ids(client, headers, set=SET) == [first["id"], second["id"]]

    response = await client.get(f"/v1/rules/{first['id']}", headers=headers)
    assert response.status_code == 200, response.text
    assert response.headers["etag"] == '"1"'
    response = await patch_rule(
        client, headers, first["id"], if_match='"1"', text="Answer in German."
    )
    assert response.status_code == 200, response.text
    assert (response.json()["text"], response.json()["author"]) == ("Answer in German.", SUBJECT)
    history = await client.get(f"/v1/rules/{first['id']}/history", headers=headers)
    assert [r["revision"] for r in history.json()["items"]] == [2, 1]

    order = [second["id"], first["id"]]
    response = await client.post(
        "/v1/rules:reorder", headers=headers, json={"set": SET, "ids": order}
    )
    assert response.status_code == 200, response.text
    assert [r["id"] for r in response.json()["items"]] == order
    assert await rule_ids(client, headers) == order

    response = await client.delete(f"/v1/rules/{second['id']}", headers=headers)
    assert response.status_code == 204, response.text
    assert await rule_ids(client, headers) == [first["id"]]
    assert token not in caplog.text


async def test_changes_made_with_a_token_are_audited_in_the_subjects_name(client, author, admin):
    token = await mint(client, author.headers, subject=SUBJECT)
    rule = await create_rule(client, bearer(token), set=SET, text="Be kind.")
    response = await client.get(
        "/v1/audit", headers=admin.headers, params={"action": "rule.create"}
    )
    [event] = response.json()["items"]
    assert event["target_id"] == rule["id"]
    assert event["actor"] == {"type": "rules_token", "id": str(author.key.id), "name": SUBJECT}


async def test_without_a_subject_the_author_is_the_key_named_as_a_token(client, author):
    token = await mint(client, author.headers)
    rule = await create_rule(client, bearer(token), set=SET, text="Be kind.")
    assert rule["author"] == "rules-editor (token)"


async def test_other_scopes_and_other_tenants_rules_are_unknown_to_a_token(
    client, session, author, admin, prompt
):
    other_tenant = await make_tenant(session, "globex")
    other_admin = await make_key(session, other_tenant, ["admin"], name="globex-admin")
    theirs = await create_rule(client, other_admin.headers, set=SET, text="Globex's own.")
    other_set = await create_rule(client, admin.headers, set=OTHER_SET, text="Another account.")
    for_prompt = await create_rule(client, admin.headers, prompt=prompt, text="For the prompt.")
    token = await mint(client, author.headers, subject=SUBJECT)
    headers = bearer(token)
    before = await rules_table(session)

    for rule in (theirs, other_set, for_prompt):
        url = f"/v1/rules/{rule['id']}"
        answers = [
            await client.get(url, headers=headers),
            await patch_rule(client, headers, rule["id"], text="Hijacked."),
            await client.delete(url, headers=headers),
            await client.get(f"{url}/history", headers=headers),
        ]
        for response in answers:
            where = f"{response.request.method} {rule['text']}"
            problem = assert_problem(response, 404, where=where)
            # Word for word what an unknown rule (or another tenant's) answers.
            assert problem["detail"] == f"No rule `{rule['id']}`.", where
            assert "globex" not in response.text.lower()

    refused = [
        await client.post("/v1/rules", headers=headers, json={"set": OTHER_SET, "text": "Hi."}),
        await client.post("/v1/rules", headers=headers, json={"prompt": prompt, "text": "Hi."}),
        await client.post("/v1/rules", headers=headers, json={"text": "No scope."}),
        await client.get("/v1/rules", headers=headers, params={"set": OTHER_SET}),
        await client.get("/v1/rules", headers=headers, params={"prompt": prompt}),
        await client.get("/v1/rules", headers=headers, params={"prompt": prompt, "set": SET}),
        await client.post(
            "/v1/rules:reorder", headers=headers, json={"set": OTHER_SET, "ids": [other_set["id"]]}
        ),
        await client.post(
            "/v1/rules:reorder", headers=headers, json={"prompt": prompt, "ids": [for_prompt["id"]]}
        ),
    ]
    for response in refused:
        assert_problem(response, 404, where=f"{response.request.method} {response.request.url}")
    # The set's own list is empty: the other tenant's rule of the same set name is not in it.
    assert await rule_ids(client, headers) == []
    response = await client.post("/v1/rules:reorder", headers=headers, json={"set": SET, "ids": []})
    assert response.status_code == 200, response.text
    response = await client.post(
        "/v1/rules:reorder", headers=headers, json={"set": SET, "ids": [theirs["id"]]}
    )
    assert_names_field(assert_problem(response, 422), "body.ids")
    assert await rules_table(session) == before


def _fill(path: str) -> str:
    """A concrete URL: unknown ids, and any name."""
    values = {"number": "1", "label": "production"}
    for param in path_params(path):
        value = str(uuid.uuid4()) if param.endswith("id") else values.get(param, "x")
        path = re.sub(r"\{" + param + r"(:\w+)?\}", value, path)
    return path


@pytest.mark.parametrize("gate", ["on", "off"])
async def test_a_token_reaches_no_route_but_its_sets_rules(
    app, client, session, author, monkeypatch, gate
):
    """Walked from the app, so a new route is covered the day it is added. With the gate off,
    each route's own checks (scopes, `/v1/me`) must refuse the token just the same."""
    if gate == "off":
        monkeypatch.setattr(auth, "_rules_path", lambda path: True)
    token = await mint(client, author.headers)
    routes = {(method, path) for method, path, _ in v1_routes(app)}
    assert routes >= TOKEN_ROUTES | {("POST", "/v1/rules/tokens"), ("GET", "/v1/me")}
    events = "SELECT count(*) FROM audit_events"
    before = (await rules_table(session), await session.scalar(text(events)))

    for method, path in sorted(routes - TOKEN_ROUTES):
        response = await client.request(method, _fill(path), headers=bearer(token), json={})
        where = f"{method} {path}: {response.status_code} {response.text}"
        if (method, path) in CONFINED_ELSEWHERE:
            assert 400 <= response.status_code < 500, where
        else:
            assert response.status_code in (401, 403), where
        assert "acme" not in response.text.lower(), where

    me = await client.get("/v1/me", headers=bearer(token))
    expected = "rules API" if gate == "on" else "rules of its set"  # the gate's, or the route's
    assert expected in assert_problem(me, 403)["detail"]
    assert (await rules_table(session), await session.scalar(text(events))) == before


async def test_a_token_does_not_sign_in_to_the_web_ui(app, client, author):
    token = await mint(client, author.headers)
    for attempt in (
        {"headers": bearer(token)},
        {"cookies": {SESSION_COOKIE: token}},
        {"cookies": {SESSION_COOKIE: token.removeprefix("plr_")}},
    ):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(
            transport=transport, base_url="http://testserver", **attempt
        ) as browser:
            response = await browser.get("/ui/prompts")
        assert response.status_code == 303, attempt
        assert response.headers["location"].startswith("/ui/login?next=")


# --- refused tokens --------------------------------------------------------------------------


async def test_an_expired_token_is_refused(client, author, monkeypatch):
    token = await mint(client, author.headers, minutes=1)
    started = time.time()
    monkeypatch.setattr(tokens, "clock", lambda: started + 55)
    assert (await client.get("/v1/rules", headers=bearer(token))).status_code == 200
    monkeypatch.setattr(tokens, "clock", lambda: started + 61)
    response = await client.get("/v1/rules", headers=bearer(token))
    problem = assert_unauthorized(response)
    assert "expired" in problem["detail"]
    assert token not in response.text


@pytest.mark.parametrize("part", ["payload", "signature"])
async def test_a_tampered_token_is_refused(client, session, author, part):
    token = await mint(client, author.headers, subject=SUBJECT)
    payload_end = token.rindex(".")
    index = (4 + payload_end) // 2 if part == "payload" else (payload_end + len(token)) // 2
    tampered = flipped(token, index)
    response = await client.post(
        "/v1/rules", headers=bearer(tampered), json={"set": SET, "text": "Forged."}
    )
    problem = assert_unauthorized(response)
    assert "not valid" in problem["detail"]
    assert tampered[4:payload_end] not in response.text
    assert await session.scalar(text("SELECT count(*) FROM rules")) == 0


@pytest.mark.parametrize(
    "garbage",
    ["plr_", "plr_.", "plr_abc", "plr_abc.def", "plr_" + "A" * 5000, "plr_ü.x", "PLR_abc.def"],
)
async def test_a_malformed_token_is_refused(client, garbage):
    headers = {"Authorization": f"Bearer {garbage}".encode("latin-1")}  # as a browser may send
    response = await client.get("/v1/rules", headers=headers)
    assert_unauthorized(response)
    if len(garbage) > 8:
        assert garbage[4:] not in response.text


def _claims_of(author, tenant_id: uuid.UUID | None = None) -> RuleToken:
    return RuleToken(
        tenant_id=tenant_id or author.key.tenant_id,
        rule_set=SET,
        expires_at=int(time.time()) + 600,
        key_prefix=author.key.prefix,
    )


async def test_a_token_signed_with_another_secret_or_salt_is_refused(client, author):
    forged = [
        RuleTokens("another-secret-key-that-is-long-enough-0123").sign(_claims_of(author)),
        "plr_"
        + URLSafeSerializer(TEST_SECRET, salt="ui.flash").dumps(
            {
                "t": str(author.key.tenant_id),
                "s": SET,
                "e": int(time.time()) + 600,
                "k": author.key.prefix,
            }
        ),
    ]
    for token in forged:
        response = await client.get("/v1/rules", headers=bearer(token))
        assert "not valid" in assert_unauthorized(response)["detail"]


async def test_a_token_naming_another_tenant_than_its_keys_is_refused(app, client, author):
    """Only we can sign one, but the key's own tenant is what counts."""
    token = app.state.rule_tokens.sign(_claims_of(author, tenant_id=uuid.uuid4()))
    assert_unauthorized(await client.get("/v1/rules", headers=bearer(token)))


async def test_revoking_the_minting_key_kills_its_tokens(client, author, admin):
    token = await mint(client, author.headers)
    assert (await client.get("/v1/rules", headers=bearer(token))).status_code == 200
    response = await client.delete(f"/v1/api-keys/{author.key.id}", headers=admin.headers)
    assert response.status_code == 204
    response = await client.get("/v1/rules", headers=bearer(token))
    assert "revoked" in assert_unauthorized(response)["detail"]


async def test_a_token_dies_when_its_key_expires(app, client, session, author):
    token = await mint(client, author.headers)
    assert (await client.get("/v1/rules", headers=bearer(token))).status_code == 200
    await session.execute(
        text("UPDATE api_keys SET expires_at = now() - interval '1 second' WHERE id = :id"),
        {"id": author.key.id},
    )
    await session.commit()
    app.state.authenticator.cache.clear()  # as the key's change would be announced
    response = await client.get("/v1/rules", headers=bearer(token))
    assert "expired" in assert_unauthorized(response)["detail"]


# --- the pieces ------------------------------------------------------------------------------


def test_verify_takes_the_time_to_check_expiry_against():
    signer = RuleTokens(TEST_SECRET)
    claims = RuleToken(uuid.uuid4(), SET, 1_000_000, "0123456789ab", SUBJECT)
    token = signer.sign(claims)
    assert signer.verify(token, now=999_999) == claims
    with pytest.raises(Exception, match="expired"):
        signer.verify(token, now=1_000_000)


def test_confine_lets_a_token_reach_exactly_its_set():
    principal = token_principal(SET)
    confine(principal, prompt=None, rule_set=SET)
    for prompt, rule_set in ((None, OTHER_SET), ("triage", None), ("triage", SET), (None, None)):
        with pytest.raises(NotFound):
            confine(principal, prompt=prompt, rule_set=rule_set)


def test_confine_leaves_other_principals_alone():
    principal = token_principal(None)
    for prompt, rule_set in ((None, OTHER_SET), ("triage", None), (None, None)):
        confine(principal, prompt=prompt, rule_set=rule_set)
