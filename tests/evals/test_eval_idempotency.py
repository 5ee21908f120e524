"""Idempotency-Key on POST /v1/evals: a repeated start answers the first eval, never a second
one (each would run every case through the model again)."""

from __future__ import annotations

import asyncio

from tests.evals.test_eval_runs import EXACT, dataset, setup
from tests.factories import make_key, make_tenant
from tests.helpers import assert_names_field, assert_problem
from tests.runs.support import make_prompt, use_fake

BODY = {"prompt": "triage", "dataset": "tickets", "evaluators": EXACT}


def keyed(key, idempotency_key: str) -> dict[str, str]:
    return {**key.headers, "Idempotency-Key": idempotency_key}


async def evals(client, key) -> list[dict]:
    page = await client.get("/v1/evals", headers=key.headers)
    assert page.status_code == 200, page.text
    return page.json()["items"]


async def test_a_repeated_start_answers_the_first_eval(client, admin, fake_openai):
    await setup(client, admin, fake_openai)
    first = await client.post("/v1/evals", headers=keyed(admin, "ci-build-41"), json=BODY)
    again = await client.post("/v1/evals", headers=keyed(admin, "ci-build-41"), json=BODY)

    assert (first.status_code, again.status_code) == (202, 202), again.text
    assert again.json() == first.json()
    assert again.headers["Idempotent-Replayed"] == "true"
    assert (
        again.headers["Location"] == first.headers["Location"] == f"/v1/evals/{first.json()['id']}"
    )
    assert "Idempotent-Replayed" not in first.headers
    assert [e["id"] for e in await evals(client, admin)] == [first.json()["id"]]


async def test_concurrent_repeats_start_one_eval(client, admin, fake_openai):
    await setup(client, admin, fake_openai)
    answers = await asyncio.gather(
        *(
            client.post("/v1/evals", headers=keyed(admin, "retry-storm"), json=BODY)
            for _ in range(4)
        )
    )
    assert {a.status_code for a in answers} == {202}, [a.text for a in answers]
    assert len({a.json()["id"] for a in answers}) == 1
    assert len(await evals(client, admin)) == 1


async def test_the_key_with_another_body_is_refused_and_starts_nothing(client, admin, fake_openai):
    await setup(client, admin, fake_openai)
    first = await client.post("/v1/evals", headers=keyed(admin, "k1"), json=BODY)
    other = await client.post("/v1/evals", headers=keyed(admin, "k1"), json={**BODY, "repeat": 2})
    assert first.status_code == 202, first.text
    assert_names_field(assert_problem(other, 422), "header.Idempotency-Key")
    assert len(await evals(client, admin)) == 1


async def test_a_refused_start_leaves_the_key_free(client, admin, fake_openai):
    await setup(client, admin, fake_openai)
    wrong = await client.post(
        "/v1/evals", headers=keyed(admin, "k2"), json={**BODY, "dataset": "nope"}
    )
    assert wrong.status_code == 404, wrong.text
    fixed = await client.post("/v1/evals", headers=keyed(admin, "k2"), json=BODY)
    assert fixed.status_code == 202, fixed.text
    assert "Idempotent-Replayed" not in fixed.headers


async def test_a_blank_key_is_refused(client, admin, fake_openai):
    await setup(client, admin, fake_openai)
    blank = await client.post("/v1/evals", headers=keyed(admin, "   "), json=BODY)
    long = await client.post("/v1/evals", headers=keyed(admin, "k" * 201), json=BODY)
    assert_names_field(assert_problem(blank, 422), "header.Idempotency-Key")
    assert long.status_code == 422, long.text
    assert await evals(client, admin) == []


async def test_keys_are_per_tenant(client, session, admin, fake_openai):
    """Another tenant's key of the same text neither replays nor blocks this tenant's."""
    await setup(client, admin, fake_openai)
    other = await make_key(session, await make_tenant(session), ["admin"])
    await use_fake(client, other, fake_openai)
    await make_prompt(client, other, "triage")
    await dataset(client, other)

    mine = await client.post("/v1/evals", headers=keyed(admin, "shared"), json=BODY)
    theirs = await client.post("/v1/evals", headers=keyed(other, "shared"), json=BODY)

    assert (mine.status_code, theirs.status_code) == (202, 202), theirs.text
    assert theirs.json()["id"] != mine.json()["id"]
    assert "Idempotent-Replayed" not in theirs.headers
    assert [e["id"] for e in await evals(client, other)] == [theirs.json()["id"]]
