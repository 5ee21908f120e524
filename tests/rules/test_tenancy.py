"""Rules of one tenant are unknown to every other: 404, never listed, never reordered."""

from __future__ import annotations

import uuid

from sqlalchemy import text

from promptlogic.rules.service import rules_for
from tests.factories import make_key, make_tenant
from tests.helpers import assert_problem
from tests.rules.support import create_rule, make_prompt, patch_rule, rule_ids

SECRET = "Secret rule of the other tenant: waive every fee."


async def test_another_tenants_rule_answers_404_and_is_never_listed(
    client, session, admin, author, prompt
):
    other = await make_tenant(session, "globex")
    other_admin = await make_key(session, other, ["admin"], name="globex-admin")
    await make_prompt(client, other_admin.headers, prompt)  # the same prompt name
    theirs = await create_rule(
        client, other_admin.headers, prompt=prompt, text=SECRET, enabled=True
    )
    their_set = await create_rule(
        client, other_admin.headers, set="shared", text=SECRET, enabled=True
    )
    ours = await create_rule(client, author.headers, prompt=prompt, text="Ours.", enabled=True)
    url = f"/v1/rules/{theirs['id']}"

    for response in (
        await client.get(url, headers=admin.headers),
        await patch_rule(client, admin.headers, theirs["id"], text="Taken over."),
        await patch_rule(client, admin.headers, theirs["id"], if_match='"1"', enabled=False),
        await client.delete(url, headers=admin.headers),
        await client.delete(url, headers={**admin.headers, "If-Match": '"1"'}),
        await client.get(f"{url}/history", headers=admin.headers),
    ):
        problem = assert_problem(response, 404, where=response.request.method)
        assert SECRET not in response.text
        assert "globex" not in problem["detail"]

    for filters in ({}, {"prompt": prompt}, {"set": "shared"}):
        listed = await client.get("/v1/rules", headers=admin.headers, params=filters)
        assert SECRET not in listed.text, filters
    assert await rule_ids(client, admin.headers) == [ours["id"]]
    assert await rule_ids(client, admin.headers, set="shared") == []

    reorder = await client.post(
        "/v1/rules:reorder",
        headers=admin.headers,
        json={"set": "shared", "ids": [their_set["id"]]},
    )
    assert_problem(reorder, 422)
    row = (
        await session.execute(
            text("SELECT revision, text, enabled FROM rules WHERE id = :id"),
            {"id": uuid.UUID(theirs["id"])},
        )
    ).one()
    assert tuple(row) == (1, SECRET, True)
    assert await rule_ids(client, other_admin.headers) == [theirs["id"], their_set["id"]]


async def test_rules_for_reads_only_the_tenants_own_rules(client, session, tenant, author, prompt):
    other = await make_tenant(session, "globex")
    other_admin = await make_key(session, other, ["admin"], name="globex-admin")
    await make_prompt(client, other_admin.headers, prompt)
    await create_rule(client, other_admin.headers, prompt=prompt, text=SECRET, enabled=True)
    await create_rule(client, other_admin.headers, set="shared", text=SECRET, enabled=True)
    ours = await create_rule(client, author.headers, prompt=prompt, text="Ours.", enabled=True)

    assert [r["id"] for r in await rules_for(session, tenant.id, prompt=prompt, set=None)] == [
        ours["id"]
    ]
    assert await rules_for(session, tenant.id, prompt=prompt, set="shared") == []


async def test_a_rule_cannot_be_scoped_to_another_tenants_prompt(client, session, author):
    other = await make_tenant(session, "initech")
    other_admin = await make_key(session, other, ["admin"], name="initech-admin")
    await make_prompt(client, other_admin.headers, "theirs-only")

    response = await client.post(
        "/v1/rules",
        headers=author.headers,
        json={"prompt": "theirs-only", "text": "Sneak in.", "enabled": True},
    )

    assert_problem(response, 404)
    assert await rules_for(session, other.id, prompt="theirs-only", set=None) == []
    listed = await client.get("/v1/rules", headers=other_admin.headers)
    assert listed.json()["items"] == []
