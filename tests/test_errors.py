"""Errors as problem+json: routing, authentication, malformed and oversized bodies, crashes."""

from __future__ import annotations

import json
import re
from collections.abc import AsyncIterator

import pytest
from fastapi.routing import APIRoute, iter_route_contexts

from promptlogic.app import create_app
from promptlogic.tenancy import keys
from tests.conftest import client_for, running
from tests.helpers import assert_names_field, assert_problem, assert_unauthorized, count_keys

LIMIT = 1024 * 1024  # the default max_body_bytes


def padded_key_request(size: int) -> bytes:
    """A valid key-creation body of exactly `size` bytes (JSON allows trailing whitespace)."""
    body = json.dumps({"name": "big", "scopes": ["read"]}).encode()
    return body + b" " * (size - len(body))


async def in_chunks(content: bytes, size: int) -> AsyncIterator[bytes]:
    """`content` streamed in pieces of `size` bytes, so that no Content-Length is sent."""
    for start in range(0, len(content), size):
        yield content[start : start + size]


# Routing


@pytest.mark.parametrize("path", ["/nope", "/v1/nope", "/v1/api-keys/x/y"])
async def test_unknown_route_answers_404_problem(client, admin, path):
    body = assert_problem(await client.get(path, headers=admin.headers), 404)
    assert path in body["detail"]


@pytest.mark.parametrize("path", ["/v1/nope", "/v1/api-keys/x/y"])
async def test_unknown_api_route_without_a_key_answers_401_revealing_nothing(client, path):
    body = assert_unauthorized(await client.get(path))
    assert path not in body["detail"]


async def test_wrong_method_answers_405_problem_with_allow(client, admin):
    response = await client.put("/v1/api-keys", headers=admin.headers, json={})
    assert_problem(response, 405)
    assert "GET" in response.headers["allow"]
    response = await client.get(
        "/v1/api-keys/00000000-0000-0000-0000-000000000000", headers=admin.headers
    )
    assert_problem(response, 405)
    assert response.headers["allow"] == "DELETE"


async def test_405_allow_header_lists_every_method_of_the_resource(client, admin):
    response = await client.put("/v1/api-keys", json={}, headers=admin.headers)
    assert_problem(response, 405)
    assert set(response.headers["allow"].replace(" ", "").split(",")) == {"GET", "POST"}


async def test_openapi_lists_the_v1_routes(client):
    response = await client.get("/openapi.json")
    assert response.status_code == 200
    paths = response.json()["paths"]
    assert "get" in paths["/v1/me"]
    assert {"get", "post"} <= set(paths["/v1/api-keys"])


# Malformed bodies


async def test_malformed_json_answers_422_naming_the_body(client, session, admin):
    response = await client.post(
        "/v1/api-keys",
        headers={**admin.headers, "Content-Type": "application/json"},
        content=b'{"name": "ci", "scopes": ["read"',
    )
    body = assert_problem(response, 422)
    assert body["errors"]
    assert all(e["field"].startswith("body") for e in body["errors"])
    assert "not valid JSON" in body["errors"][0]["message"]
    assert await count_keys(session) == 1


async def test_json_that_is_not_an_object_answers_422_naming_the_body(client, admin):
    response = await client.post("/v1/api-keys", headers=admin.headers, json=["ci"])
    body = assert_problem(response, 422)
    assert [e["field"] for e in body["errors"]] == ["body"]


# Authentication


async def test_request_without_a_key_answers_401_even_with_malformed_json(client):
    response = await client.post(
        "/v1/api-keys", headers={"Content-Type": "application/json"}, content=b"{bad"
    )
    assert_unauthorized(response)


async def test_every_v1_route_without_a_key_answers_401(app, client):
    routes = [
        (method, context.path_format)
        for context in iter_route_contexts(app.routes)
        if isinstance(context.original_route, APIRoute) and context.path_format.startswith("/v1/")
        for method in context.methods
    ]
    assert ("GET", "/v1/me") in routes
    for method, path in routes:
        url = re.sub(r"{[^}]+}", "00000000-0000-0000-0000-000000000000", path)
        response = await client.request(method, url)
        assert response.status_code == 401, f"{method} {path}: {response.status_code}"
        assert_unauthorized(response)


def well_formed_token() -> str:
    return keys.generate().plaintext


@pytest.mark.parametrize(
    "authorization",
    [
        pytest.param("Basic dXNlcjpwYXNzd29yZA==", id="basic"),
        pytest.param("Bearer", id="bearer-without-key"),
        pytest.param("Bearer    ", id="bearer-blank"),
        pytest.param("Bearer pl_short", id="malformed-key"),
        pytest.param("Bearer not-a-promptlogic-key", id="foreign-token"),
        pytest.param(f"Bearer {well_formed_token()}", id="unknown-prefix"),
        pytest.param(well_formed_token(), id="key-without-scheme"),
    ],
)
async def test_bad_credentials_answer_401(client, admin, authorization):
    response = await client.get("/v1/me", headers={"Authorization": authorization})
    body = assert_unauthorized(response)
    credential = authorization.removeprefix("Basic ").removeprefix("Bearer").strip()
    if credential:
        assert credential not in response.text
    assert "errors" not in body


async def test_missing_authorization_answers_401_with_bearer_challenge(client, admin):
    body = assert_unauthorized(await client.get("/v1/me"))
    assert "Bearer" in body["detail"]


async def test_bearer_scheme_is_case_insensitive(client, admin):
    token = admin.token
    response = await client.get("/v1/me", headers={"Authorization": f"bearer {token}"})
    assert response.status_code == 200


async def test_wrong_secret_answers_401_without_echoing_the_key(client, admin):
    wrong_secret = keys.generate().plaintext.rsplit("_", 1)[1]
    forged = f"pl_{admin.key.prefix}_{wrong_secret}"
    assert forged != admin.token
    response = await client.get("/v1/me", headers={"Authorization": f"Bearer {forged}"})
    body = assert_unauthorized(response)
    assert forged not in response.text
    assert wrong_secret not in response.text
    assert admin.key.prefix not in response.text
    # indistinguishable from a key that does not exist at all
    unknown = await client.get("/v1/me", headers={"Authorization": f"Bearer {well_formed_token()}"})
    assert unknown.json() == body
    # and the real key still works
    assert (await client.get("/v1/me", headers=admin.headers)).status_code == 200


# Body size


async def test_body_over_the_limit_with_content_length_answers_413(client, session, admin):
    before = await count_keys(session)
    content = padded_key_request(LIMIT + 1)
    response = await client.post(
        "/v1/api-keys",
        headers={**admin.headers, "Content-Type": "application/json"},
        content=content,
    )
    assert response.request.headers["content-length"] == str(LIMIT + 1)
    body = assert_problem(response, 413)
    assert str(LIMIT) in body["detail"]
    assert await count_keys(session) == before


async def test_streamed_body_over_the_limit_without_content_length_answers_413(
    client, session, admin
):
    before = await count_keys(session)
    content = padded_key_request(LIMIT + 1)
    response = await client.post(
        "/v1/api-keys",
        headers={**admin.headers, "Content-Type": "application/json"},
        content=in_chunks(content, 64 * 1024),
    )
    assert "content-length" not in response.request.headers
    assert_problem(response, 413)
    assert await count_keys(session) == before


async def test_body_of_exactly_the_limit_is_accepted(client, session, admin):
    response = await client.post(
        "/v1/api-keys",
        headers={**admin.headers, "Content-Type": "application/json"},
        content=padded_key_request(LIMIT),
    )
    assert response.status_code == 201, response.text
    assert response.json()["name"] == "big"


async def test_streamed_body_under_the_limit_reaches_the_route(client, session, admin):
    content = padded_key_request(200 * 1024)
    response = await client.post(
        "/v1/api-keys",
        headers={**admin.headers, "Content-Type": "application/json"},
        content=in_chunks(content, 16 * 1024),
    )
    assert response.status_code == 201, response.text
    assert await count_keys(session) == 2


# Unexpected errors


async def test_unexpected_error_answers_500_problem_without_internals(settings, clean):
    app = create_app(settings)

    @app.get("/test/boom")
    async def boom() -> None:
        raise RuntimeError("secret-db-password")

    async with running(app), client_for(app, raise_app_exceptions=False) as client:
        response = await client.get("/test/boom")
    body = assert_problem(response, 500)
    assert set(body) == {"type", "title", "status", "detail"}
    for leak in ("secret-db-password", "Traceback", "RuntimeError", "boom", ".py"):
        assert leak not in response.text


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ('{"name": "a\\u0000b", "scopes": ["run"]}', "body.name"),
        ('{"name": "ok", "scopes": ["run"], "x": {"deep": ["\\ud800"]}}', "body.x.deep.0"),
    ],
)
async def test_text_postgres_cannot_store_answers_422_naming_the_field(
    client, admin, session, body, field
):
    before = await count_keys(session)
    response = await client.post(
        "/v1/api-keys",
        headers={**admin.headers, "content-type": "application/json"},
        content=body.encode(),
    )
    assert_names_field(assert_problem(response, 422), field)
    assert await count_keys(session) == before
