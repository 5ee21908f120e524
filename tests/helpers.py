"""Assertions and helpers shared by the API tests."""

from __future__ import annotations

import base64
import json
from typing import Any

import httpx
from sqlalchemy import text

MAX_PAGES = 100  # a walk that goes on longer than this does not end


def assert_problem(response: httpx.Response, status: int, *, where: str = "") -> dict[str, Any]:
    """`response` is a problem+json answer with `status`; returns its body.

    `where` is put in front of every failure message, for assertions made in a loop.
    """
    prefix = f"{where}: " if where else ""
    assert response.status_code == status, f"{prefix}{response.status_code} {response.text}"
    assert response.headers["content-type"] == "application/problem+json", prefix
    body = response.json()
    assert body["status"] == status, f"{prefix}{body}"
    assert body["type"].startswith("https://"), f"{prefix}{body}"
    assert isinstance(body["title"], str), f"{prefix}{body}"
    assert body["title"], f"{prefix}{body}"
    assert isinstance(body["detail"], str), f"{prefix}{body}"
    assert body["detail"], f"{prefix}{body}"
    return body


def assert_unauthorized(response: httpx.Response) -> dict[str, Any]:
    """`response` is a 401 problem with a Bearer challenge; returns its body."""
    body = assert_problem(response, 401)
    assert response.headers["www-authenticate"] == "Bearer"
    return body


def assert_names_field(body: dict[str, Any], field: str) -> None:
    """The 422 lists `field` (or an item of it, e.g. `body.scopes.0`) with a message."""
    fields = [e["field"] for e in body["errors"]]
    assert any(f == field or f.startswith(field + ".") for f in fields), fields
    assert all(isinstance(e["message"], str) and e["message"] for e in body["errors"])


def cursor_of(values: list[Any]) -> str:
    """A cursor as the API encodes one: unpadded URL-safe base64 of a JSON list."""
    return base64.urlsafe_b64encode(json.dumps(values).encode()).decode().rstrip("=")


async def count_keys(session) -> int:
    return await session.scalar(text("SELECT count(*) FROM api_keys"))


async def walk_pages(
    client: httpx.AsyncClient,
    path: str,
    headers: dict[str, str],
    *,
    limit: int,
    params: dict[str, Any] | None = None,
) -> tuple[list[dict[str, Any]], int]:
    """Follow `next_cursor` from the first page until it is null.

    Every page must answer 200 with at most `limit` items. Returns all the items in order and
    the number of pages read.
    """
    items: list[dict[str, Any]] = []
    cursor = None
    pages = 0
    while True:
        query: dict[str, Any] = {**(params or {}), "limit": limit}
        if cursor is not None:
            query["cursor"] = cursor
        response = await client.get(path, headers=headers, params=query)
        assert response.status_code == 200, response.text
        page = response.json()
        assert len(page["items"]) <= limit, page
        items.extend(page["items"])
        pages += 1
        cursor = page["next_cursor"]
        if cursor is None:
            return items, pages
        assert pages < MAX_PAGES, f"{path}: pagination does not end"


async def only_page(
    client: httpx.AsyncClient, path: str, headers: dict[str, str], **params: Any
) -> list[dict[str, Any]]:
    """The items of a list that must fit on one page (its `next_cursor` is null)."""
    response = await client.get(path, headers=headers, params=params)
    assert response.status_code == 200, response.text
    page = response.json()
    assert page["next_cursor"] is None, page
    return page["items"]
