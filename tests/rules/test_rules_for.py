"""`rules_for`: the live rules of a scope as plain data, in the order they apply."""

from __future__ import annotations

from promptlogic.rules.service import rules_for
from tests.rules.support import create_rule, patch_rule


async def test_only_enabled_rules_come_in_priority_then_age_order(
    client, session, tenant, author, prompt
):
    second = await create_rule(client, author.headers, prompt=prompt, text="b", enabled=True)
    await create_rule(client, author.headers, prompt=prompt, text="draft", priority=0)
    first = await create_rule(
        client, author.headers, prompt=prompt, text="a", enabled=True, priority=0
    )
    tie = await create_rule(
        client, author.headers, prompt=prompt, text="tie", enabled=True, priority=1
    )
    disabled = await create_rule(client, author.headers, prompt=prompt, text="off", enabled=True)
    await patch_rule(client, author.headers, disabled["id"], enabled=False)
    edited = await create_rule(client, author.headers, prompt=prompt, text="old", enabled=True)
    await patch_rule(client, author.headers, edited["id"], text="new")

    rules = await rules_for(session, tenant.id, prompt=prompt, set=None)

    assert rules == [
        {"id": first["id"], "text": "a", "priority": 0, "revision": 1},
        {"id": second["id"], "text": "b", "priority": 1, "revision": 1},
        {"id": tie["id"], "text": "tie", "priority": 1, "revision": 1},
        {"id": edited["id"], "text": "new", "priority": edited["priority"], "revision": 2},
    ]


async def test_a_set_takes_the_rules_of_that_set_only(client, session, tenant, author, prompt):
    await create_rule(client, author.headers, prompt=prompt, text="prompt rule", enabled=True)
    mine = await create_rule(client, author.headers, set="account-42", text="42", enabled=True)
    await create_rule(client, author.headers, set="account-43", text="43", enabled=True)

    rules = await rules_for(session, tenant.id, prompt=prompt, set="account-42")
    assert [r["id"] for r in rules] == [mine["id"]]
    assert await rules_for(session, tenant.id, prompt=None, set="account-44") == []
    assert await rules_for(session, tenant.id, prompt=None, set=None) == []
    assert await rules_for(session, tenant.id, prompt="unknown", set=None) == []
