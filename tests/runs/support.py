"""Helpers of the run tests: a prompt deployed on `production`, the fake as the tenant's
provider, running, reading a run's record back, and reading Server-Sent Events."""

from __future__ import annotations

import json
from typing import Any

API_KEY = "sk-run-test-secret-0123456789"
TICKET = {
    "messages": [
        {"role": "system", "content": "Triage for {{ company }}."},
        {"role": "user", "content": "{{ ticket }}"},
    ],
    "model": {"name": "gpt-4o-mini", "temperature": 0},
}
VARIABLES = {"company": "Acme", "ticket": "Where is my parcel?"}


async def make_prompt(client, admin, name="triage", **content):
    """A chat prompt with `TICKET` (or `content` over it), version 1 on `production`."""
    body = {"name": name, "version": {**TICKET, **content}}
    response = await client.post("/v1/prompts", headers=admin.headers, json=body)
    assert response.status_code == 201, response.text
    moved = await client.put(
        f"/v1/prompts/{name}/labels/production",
        headers=admin.headers,
        json={"version": 1, "expected_version": None},
    )
    assert moved.status_code == 200, moved.text


async def use_fake(client, admin, fake_openai, api_key: str = API_KEY) -> None:
    """The tenant's default provider: the fake server."""
    response = await client.post(
        "/v1/providers",
        headers=admin.headers,
        json={
            "name": "fake",
            "kind": "openai_compatible",
            "base_url": fake_openai.base_url,
            "api_key": api_key,
            "is_default": True,
        },
    )
    assert response.status_code == 201, response.text


async def run(client, key, body, name="triage"):
    return await client.post(f"/v1/prompts/{name}/run", headers=key.headers, json=body)


async def stored(app, client, key, run_id) -> dict[str, Any]:
    """The run's record, once the recorder has written what it holds."""
    await app.state.run_recorder.flush()
    response = await client.get(f"/v1/runs/{run_id}", headers=key.headers)
    assert response.status_code == 200, response.text
    return response.json()


def events_of(text: str) -> list[tuple[str, dict]]:
    """A Server-Sent Events body as (event, data) pairs."""
    found = []
    for block in text.strip().split("\n\n"):
        lines = dict(line.split(": ", 1) for line in block.splitlines())
        found.append((lines["event"], json.loads(lines["data"])))
    return found
