"""Helpers for the knowledge tests: collections and documents made over the API."""

from __future__ import annotations

from typing import Any

import httpx

from promptlogic.knowledge.ingestion import wait_for_ingestions


async def make_collection(
    client: httpx.AsyncClient, headers: dict[str, str], name: str = "kb", **body: Any
) -> dict[str, Any]:
    response = await client.post("/v1/collections", headers=headers, json={"name": name, **body})
    assert response.status_code == 201, response.text
    return response.json()


async def add_document(
    client: httpx.AsyncClient,
    headers: dict[str, str],
    collection: str,
    document_id: str,
    text: str | None,
    *,
    expect: int = 202,
    **body: Any,
) -> dict[str, Any]:
    if text is not None:
        body["text"] = text
    response = await client.post(
        f"/v1/collections/{collection}/documents",
        headers=headers,
        json={"id": document_id, **body},
    )
    assert response.status_code == expect, response.text
    return response.json()


async def ingested(
    client: httpx.AsyncClient, headers: dict[str, str], collection: str, document_id: str
) -> dict[str, Any]:
    """The document once every ingestion started in this process has ended."""
    await wait_for_ingestions()
    response = await client.get(
        f"/v1/collections/{collection}/documents/{document_id}", headers=headers
    )
    assert response.status_code == 200, response.text
    return response.json()


async def add_ready(
    client: httpx.AsyncClient,
    headers: dict[str, str],
    collection: str,
    documents: dict[str, str],
    **body: Any,
) -> None:
    """Add each `id: text` and wait until all are ready."""
    for document_id, text in documents.items():
        await add_document(client, headers, collection, document_id, text, **body)
    for document_id in documents:
        document = await ingested(client, headers, collection, document_id)
        assert document["status"] == "ready", document


async def search(
    client: httpx.AsyncClient, headers: dict[str, str], collection: str, **body: Any
) -> list[dict[str, Any]]:
    response = await client.post(f"/v1/collections/{collection}/search", headers=headers, json=body)
    assert response.status_code == 200, response.text
    return response.json()["hits"]
