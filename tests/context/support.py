"""Helpers for the context record tests."""

from __future__ import annotations

from typing import Any
from urllib.parse import quote

import httpx


def record_url(namespace: str, key: str) -> str:
    """The record's URL, its key percent-encoded as a client must (`/` included)."""
    return f"/v1/context/{namespace}/{quote(key, safe='')}"


async def put(
    client: httpx.AsyncClient,
    headers: dict[str, str],
    namespace: str,
    key: str,
    value: dict[str, Any],
    **extra_headers: str,
) -> httpx.Response:
    return await client.put(
        record_url(namespace, key),
        headers={**headers, **extra_headers},
        json={"value": value},
    )


async def bulk(
    client: httpx.AsyncClient,
    headers: dict[str, str],
    namespace: str,
    body: bytes | str,
    content_type: str = "application/x-ndjson",
) -> httpx.Response:
    if isinstance(body, str):
        body = body.encode()
    return await client.post(
        f"/v1/context/{namespace}:bulk",
        headers={**headers, "Content-Type": content_type},
        content=body,
    )
