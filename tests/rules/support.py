"""Helpers for the rule tests."""

from __future__ import annotations

from typing import Any

import httpx


async def make_prompt(client: httpx.AsyncClient, headers: dict[str, str], name: str) -> str:
    response = await client.post("/v1/prompts", headers=headers, json={"name": name})
    assert response.status_code == 201, response.text
    return name


async def create_rule(
    client: httpx.AsyncClient, headers: dict[str, str], **body: Any
) -> dict[str, Any]:
    """A rule made through the API (201); `body` holds `prompt` or `set`, and `text`."""
    response = await client.post("/v1/rules", headers=headers, json=body)
    assert response.status_code == 201, response.text
    return response.json()


async def patch_rule(
    client: httpx.AsyncClient,
    headers: dict[str, str],
    rule_id: str,
    *,
    if_match: str | None = None,
    **body: Any,
) -> httpx.Response:
    extra = {} if if_match is None else {"If-Match": if_match}
    return await client.patch(f"/v1/rules/{rule_id}", headers={**headers, **extra}, json=body)


async def rule_ids(client: httpx.AsyncClient, headers: dict[str, str], **filters: str) -> list:
    """The ids of a list that fits on one page, in its order."""
    response = await client.get("/v1/rules", headers=headers, params=filters)
    assert response.status_code == 200, response.text
    assert response.json()["next_cursor"] is None
    return [item["id"] for item in response.json()["items"]]
