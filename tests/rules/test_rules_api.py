"""Tenant rules over the API: create, read, list, edit with revisions, history, reorder, delete."""

from __future__ import annotations

import uuid

import pytest
from sqlalchemy import text

from promptlogic.rules.schemas import MAX_TEXT_CHARS
from promptlogic.rules.service import RULES_TOPIC
from tests.helpers import assert_names_field, assert_problem, walk_pages
from tests.rules.support import create_rule, make_prompt, patch_rule, rule_ids

REFUND = "Tickets that mention a refund above 500 EUR are always priority high."


async def stored_revisions(session, rule_id: str) -> list[int]:
    rows = await session.execute(
        text("SELECT revision FROM rule_revisions WHERE rule_id = :id ORDER BY revision"),
        {"id": uuid.UUID(rule_id)},
    )
    return [row.revision for row in rows]


# Create and read


async def test_a_rule_is_created_and_read_back_with_its_revision_as_etag(
    client, author, reader, prompt
):
    response = await client.post(
        "/v1/rules",
        headers=author.headers,
        json={"prompt": prompt, "text": REFUND, "enabled": True, "priority": 5},
    )
    assert response.status_code == 201, response.text
    assert response.headers["etag"] == '"1"'
    created = response.json()
    assert created["prompt"] == prompt
    assert created["set"] is None
    assert created["text"] == REFUND
    assert created["enabled"] is True
    assert created["status"] == "enabled"
    assert created["check_reason"] is None
    assert created["priority"] == 5
    assert created["revision"] == 1
    assert created["author"] == "rules-editor"
    assert created["updated_at"] == created["created_at"]

    read = await client.get(f"/v1/rules/{created['id']}", headers=reader.headers)
    assert read.status_code == 200
    assert read.headers["etag"] == '"1"'
    assert read.json() == created


async def test_a_rule_not_enabled_is_saved_as_a_draft(client, author, prompt):
    created = await create_rule(client, author.headers, prompt=prompt, text=REFUND)
    assert created["enabled"] is False
    assert created["status"] == "draft"


async def test_a_rule_of_a_set_needs_no_prompt(client, author):
    created = await create_rule(
        client, author.headers, set="account-42", text="Answer in French.", enabled=True
    )
    assert created["set"] == "account-42"
    assert created["prompt"] is None


async def test_text_is_stripped_and_may_take_several_lines(client, author, prompt):
    created = await create_rule(
        client, author.headers, prompt=prompt, text="  First line.\r\n\tSecond line.  "
    )
    assert created["text"] == "First line.\n\tSecond line."


async def test_text_of_the_maximum_length_is_accepted(client, admin, author, prompt):
    allowed = await client.put(
        f"/v1/prompts/{prompt}/rules-policy",
        headers=admin.headers,
        json={"max_chars": MAX_TEXT_CHARS},
    )
    assert allowed.status_code == 200, allowed.text
    created = await create_rule(client, author.headers, prompt=prompt, text="x" * MAX_TEXT_CHARS)
    assert len(created["text"]) == MAX_TEXT_CHARS


async def test_template_syntax_in_a_rule_is_kept_as_written(client, author, prompt):
    rule_text = "Never reveal {{ config }} {% for x in y %}{{ x }}{% endfor %}"
    created = await create_rule(client, author.headers, prompt=prompt, text=rule_text)
    assert created["text"] == rule_text


async def test_without_a_priority_a_new_rule_comes_last_in_its_scope(client, author, prompt):
    first = await create_rule(client, author.headers, prompt=prompt, text="one")
    second = await create_rule(client, author.headers, prompt=prompt, text="two", priority=40)
    third = await create_rule(client, author.headers, prompt=prompt, text="three")
    elsewhere = await create_rule(client, author.headers, set="other", text="elsewhere")
    assert first["priority"] == 1
    assert second["priority"] == 40
    assert third["priority"] == 41
    assert elsewhere["priority"] == 1


async def test_a_rule_for_an_unknown_prompt_answers_404(client, author, session):
    response = await client.post(
        "/v1/rules", headers=author.headers, json={"prompt": "nope", "text": REFUND}
    )
    body = assert_problem(response, 404)
    assert "nope" in body["detail"]
    assert await session.scalar(text("SELECT count(*) FROM rules")) == 0


@pytest.mark.parametrize(
    ("body", "field"),
    [
        pytest.param({"text": REFUND}, "body.prompt", id="no-scope"),
        pytest.param({"text": REFUND, "prompt": None, "set": None}, "body.set", id="null-scopes"),
        pytest.param({"prompt": "triage", "set": "a", "text": REFUND}, "body.set", id="both"),
        pytest.param({"prompt": "Not A Name", "text": REFUND}, "body.prompt", id="bad-prompt"),
        pytest.param({"set": "", "text": REFUND}, "body.set", id="empty-set"),
        pytest.param({"set": " a", "text": REFUND}, "body.set", id="set-with-space"),
        pytest.param({"set": "a\nb", "text": REFUND}, "body.set", id="set-with-newline"),
        pytest.param({"set": "s" * 201, "text": REFUND}, "body.set", id="set-too-long"),
        pytest.param({"prompt": "triage"}, "body.text", id="no-text"),
        pytest.param({"prompt": "triage", "text": ""}, "body.text", id="empty-text"),
        pytest.param({"prompt": "triage", "text": " \n\t "}, "body.text", id="blank-text"),
        pytest.param(
            {"prompt": "triage", "text": "x" * (MAX_TEXT_CHARS + 1)}, "body.text", id="too-long"
        ),
        pytest.param({"prompt": "triage", "text": "a\x07b"}, "body.text", id="control-char"),
        pytest.param({"prompt": "triage", "text": 5}, "body.text", id="text-not-a-string"),
        pytest.param({"prompt": "triage", "text": "t", "priority": -1}, "body.priority", id="p<0"),
        pytest.param(
            {"prompt": "triage", "text": "t", "priority": 10**7}, "body.priority", id="p-too-big"
        ),
        pytest.param(
            {"prompt": "triage", "text": "t", "priority": "high"}, "body.priority", id="p-word"
        ),
        pytest.param(
            {"prompt": "triage", "text": "t", "priority": 1.5}, "body.priority", id="p-1.5"
        ),
        pytest.param(
            {"prompt": "triage", "text": "t", "priority": True}, "body.priority", id="p-bool"
        ),
        pytest.param(
            {"prompt": "triage", "text": "t", "enabled": "yes"}, "body.enabled", id="enabled-word"
        ),
        pytest.param({"prompt": "triage", "text": "t", "author": "me"}, "body.author", id="extra"),
    ],
)
async def test_bad_input_answers_422_naming_the_field_and_saves_nothing(
    client, session, author, prompt, body, field
):
    response = await client.post("/v1/rules", headers=author.headers, json=body)
    problem = assert_problem(response, 422)
    assert_names_field(problem, field)
    assert await session.scalar(text("SELECT count(*) FROM rules")) == 0


# Listing


async def test_the_list_is_in_priority_order_and_filters_by_prompt_and_set(
    client, admin, author, reader, prompt
):
    other = await make_prompt(client, admin.headers, "billing")
    late = await create_rule(client, author.headers, prompt=prompt, text="late", priority=9)
    early = await create_rule(client, author.headers, prompt=prompt, text="early", priority=2)
    billing = await create_rule(client, author.headers, prompt=other, text="billing")
    account = await create_rule(client, author.headers, set="account-42", text="account")

    everything = await rule_ids(client, reader.headers)
    assert sorted(everything) == sorted(r["id"] for r in (late, early, billing, account))
    assert await rule_ids(client, reader.headers, prompt=prompt) == [early["id"], late["id"]]
    assert await rule_ids(client, reader.headers, prompt=other) == [billing["id"]]
    assert await rule_ids(client, reader.headers, set="account-42") == [account["id"]]
    assert await rule_ids(client, reader.headers, set="account-43") == []
    assert await rule_ids(client, reader.headers, prompt="unknown") == []


async def test_the_list_is_paginated_without_gaps_or_repeats(client, author, reader, prompt):
    created = []
    for n in range(7):  # priorities with ties, broken by age
        rule = await create_rule(
            client, author.headers, prompt=prompt, text=f"rule {n}", priority=n // 3
        )
        created.append(rule["id"])
    items, pages = await walk_pages(
        client, "/v1/rules", reader.headers, limit=2, params={"prompt": prompt}
    )
    assert [item["id"] for item in items] == created
    assert pages == 4


@pytest.mark.parametrize(
    ("params", "field"),
    [
        ({"cursor": "not-a-cursor"}, "query.cursor"),
        ({"prompt": "Not A Name"}, "query.prompt"),
        ({"set": " padded"}, "query.set"),
        ({"limit": 0}, "query.limit"),
    ],
)
async def test_bad_list_parameters_answer_422_naming_them(client, reader, params, field):
    response = await client.get("/v1/rules", headers=reader.headers, params=params)
    assert_names_field(assert_problem(response, 422), field)


# Editing, revisions and history


async def test_an_edit_makes_a_new_revision_and_a_stale_if_match_conflicts(
    client, session, author, reader, prompt
):
    rule = await create_rule(client, author.headers, prompt=prompt, text=REFUND, enabled=True)

    edited = await patch_rule(
        client, author.headers, rule["id"], if_match='"1"', text="Refunds are priority high."
    )
    assert edited.status_code == 200, edited.text
    assert edited.headers["etag"] == '"2"'
    assert edited.json()["revision"] == 2
    assert edited.json()["text"] == "Refunds are priority high."
    assert edited.json()["created_at"] == rule["created_at"]

    stale = await patch_rule(client, author.headers, rule["id"], if_match='"1"', text="Lost.")
    problem = assert_problem(stale, 409)
    assert "revision 2" in problem["detail"]
    current = await client.get(f"/v1/rules/{rule['id']}", headers=reader.headers)
    assert current.json()["text"] == "Refunds are priority high."
    assert current.headers["etag"] == '"2"'
    assert await stored_revisions(session, rule["id"]) == [1, 2]

    weak = await patch_rule(client, author.headers, rule["id"], if_match='W/"2"', priority=3)
    assert weak.status_code == 200, weak.text
    assert weak.json()["revision"] == 3
    unconditional = await patch_rule(client, author.headers, rule["id"], enabled=False)
    assert unconditional.status_code == 200, unconditional.text
    assert unconditional.json()["revision"] == 4
    anything = await patch_rule(client, author.headers, rule["id"], if_match="*", enabled=True)
    assert anything.json()["revision"] == 5


async def test_an_edit_that_changes_nothing_makes_no_revision(client, session, author, prompt):
    rule = await create_rule(client, author.headers, prompt=prompt, text=REFUND, enabled=True)
    for body in ({}, {"text": REFUND}, {"enabled": True, "priority": rule["priority"]}):
        response = await patch_rule(client, author.headers, rule["id"], **body)
        assert response.status_code == 200, response.text
        assert response.json()["revision"] == 1
        assert response.headers["etag"] == '"1"'
    assert await stored_revisions(session, rule["id"]) == [1]


@pytest.mark.parametrize(
    ("body", "headers", "field"),
    [
        ({"text": ""}, {}, "body.text"),
        ({"priority": -3}, {}, "body.priority"),
        ({"enabled": "no"}, {}, "body.enabled"),
        ({"prompt": "other"}, {}, "body.prompt"),  # the scope is fixed
        ({"text": "x"}, {"If-Match": "one"}, "header.If-Match"),
        ({"text": "x"}, {"If-Match": '"0"'}, "header.If-Match"),
    ],
)
async def test_a_bad_edit_answers_422_naming_the_field(
    client, session, author, prompt, body, headers, field
):
    rule = await create_rule(client, author.headers, prompt=prompt, text=REFUND)
    response = await client.patch(
        f"/v1/rules/{rule['id']}", headers={**author.headers, **headers}, json=body
    )
    assert_names_field(assert_problem(response, 422), field)
    assert await stored_revisions(session, rule["id"]) == [1]


async def test_enabling_and_disabling_moves_the_status(client, author, prompt):
    rule = await create_rule(client, author.headers, prompt=prompt, text=REFUND)
    assert rule["status"] == "draft"
    enabled = await patch_rule(client, author.headers, rule["id"], enabled=True)
    assert enabled.json()["status"] == "enabled"
    disabled = await patch_rule(client, author.headers, rule["id"], enabled=False)
    assert disabled.json()["status"] == "disabled"
    assert disabled.json()["enabled"] is False


async def test_history_keeps_every_revision_whole_newest_first(
    client, admin, author, reader, prompt
):
    rule = await create_rule(client, author.headers, prompt=prompt, text="v1", priority=4)
    await patch_rule(client, author.headers, rule["id"], text="v2")
    await patch_rule(client, admin.headers, rule["id"], enabled=True)
    await patch_rule(client, author.headers, rule["id"], priority=1)
    await patch_rule(client, author.headers, rule["id"], enabled=False)

    response = await client.get(f"/v1/rules/{rule['id']}/history", headers=reader.headers)
    assert response.status_code == 200, response.text
    history = response.json()["items"]
    assert [
        (h["revision"], h["text"], h["enabled"], h["status"], h["priority"], h["author"])
        for h in history
    ] == [
        (5, "v2", False, "disabled", 1, "rules-editor"),
        (4, "v2", True, "enabled", 1, "rules-editor"),
        (3, "v2", True, "enabled", 4, "deployer"),
        (2, "v2", False, "draft", 4, "rules-editor"),
        (1, "v1", False, "draft", 4, "rules-editor"),
    ]
    assert all(h["at"] and h["check_reason"] is None for h in history)

    paged, pages = await walk_pages(
        client, f"/v1/rules/{rule['id']}/history", reader.headers, limit=2
    )
    assert paged == history
    assert pages == 3


# Reordering


async def test_reorder_sets_priorities_in_the_given_order(client, session, author, reader, prompt):
    a = await create_rule(client, author.headers, prompt=prompt, text="a")
    b = await create_rule(client, author.headers, prompt=prompt, text="b")
    c = await create_rule(client, author.headers, prompt=prompt, text="c")
    untouched = await create_rule(client, author.headers, set="account-1", text="elsewhere")
    assert [a["priority"], b["priority"], c["priority"]] == [1, 2, 3]

    response = await client.post(
        "/v1/rules:reorder",
        headers=author.headers,
        json={"prompt": prompt, "ids": [c["id"], a["id"], b["id"]]},
    )
    assert response.status_code == 200, response.text
    items = response.json()["items"]
    assert [(i["id"], i["priority"]) for i in items] == [(c["id"], 1), (a["id"], 2), (b["id"], 3)]
    assert await rule_ids(client, reader.headers, prompt=prompt) == [c["id"], a["id"], b["id"]]
    # Each rule whose priority changed has a new revision; the others are as they were.
    revisions = {i["id"]: i["revision"] for i in items}
    assert revisions == {c["id"]: 2, a["id"]: 2, b["id"]: 2}
    assert await stored_revisions(session, untouched["id"]) == [1]

    again = await client.post(
        "/v1/rules:reorder",
        headers=author.headers,
        json={"prompt": prompt, "ids": [c["id"], a["id"], b["id"]]},
    )
    assert again.status_code == 200
    assert [i["revision"] for i in again.json()["items"]] == [2, 2, 2]


async def test_reorder_of_a_set(client, author, reader):
    a = await create_rule(client, author.headers, set="account-7", text="a")
    b = await create_rule(client, author.headers, set="account-7", text="b")
    response = await client.post(
        "/v1/rules:reorder",
        headers=author.headers,
        json={"set": "account-7", "ids": [b["id"], a["id"]]},
    )
    assert response.status_code == 200, response.text
    assert await rule_ids(client, reader.headers, set="account-7") == [b["id"], a["id"]]


async def test_reorder_with_ids_that_do_not_match_the_scope_changes_nothing(
    client, session, author, reader, prompt
):
    a = await create_rule(client, author.headers, prompt=prompt, text="a")
    b = await create_rule(client, author.headers, prompt=prompt, text="b")
    other = await create_rule(client, author.headers, set="account-1", text="other")
    stranger = str(uuid.uuid4())
    cases = [
        ({"prompt": prompt, "ids": [b["id"]]}, "body.ids"),  # leaves one out
        ({"prompt": prompt, "ids": [b["id"], a["id"], stranger]}, "body.ids"),
        ({"prompt": prompt, "ids": [b["id"], a["id"], other["id"]]}, "body.ids"),
        ({"prompt": prompt, "ids": [b["id"], a["id"], b["id"]]}, "body.ids"),
        ({"prompt": prompt, "ids": []}, "body.ids"),
        ({"prompt": prompt, "ids": ["not-a-uuid"]}, "body.ids"),
        ({"prompt": prompt}, "body.ids"),
        ({"ids": [b["id"], a["id"]]}, "body.prompt"),
        ({"prompt": prompt, "set": "account-1", "ids": [b["id"], a["id"]]}, "body.set"),
    ]
    for body, field in cases:
        response = await client.post("/v1/rules:reorder", headers=author.headers, json=body)
        problem = assert_problem(response, 422, where=str(body))
        assert_names_field(problem, field)
    assert await rule_ids(client, reader.headers, prompt=prompt) == [a["id"], b["id"]]
    assert await session.scalar(text("SELECT max(revision) FROM rules")) == 1


# Deleting


async def test_a_rule_is_deleted_with_its_history_and_a_stale_if_match_conflicts(
    client, session, author, reader, prompt
):
    rule = await create_rule(client, author.headers, prompt=prompt, text=REFUND)
    await patch_rule(client, author.headers, rule["id"], enabled=True)
    url = f"/v1/rules/{rule['id']}"

    stale = await client.delete(url, headers={**author.headers, "If-Match": '"1"'})
    assert_problem(stale, 409)
    assert (await client.get(url, headers=reader.headers)).status_code == 200

    deleted = await client.delete(url, headers={**author.headers, "If-Match": '"2"'})
    assert deleted.status_code == 204
    assert_problem(await client.get(url, headers=reader.headers), 404)
    assert_problem(await client.get(f"{url}/history", headers=reader.headers), 404)
    assert_problem(await client.delete(url, headers=author.headers), 404)
    assert await rule_ids(client, reader.headers) == []
    assert await stored_revisions(session, rule["id"]) == []


async def test_an_unknown_rule_answers_404(client, author, reader):
    url = f"/v1/rules/{uuid.uuid4()}"
    assert_problem(await client.get(url, headers=reader.headers), 404)
    assert_problem(await patch_rule(client, author.headers, url.rsplit("/", 1)[1], text="x"), 404)
    assert_problem(await client.delete(url, headers=author.headers), 404)
    assert_problem(await client.get(f"{url}/history", headers=reader.headers), 404)
    response = await client.get("/v1/rules/not-a-uuid", headers=reader.headers)
    assert_names_field(assert_problem(response, 422), "path.rule_id")


# Change notifications and audit


async def test_every_change_is_announced_with_its_scope(
    client, tenant, author, prompt, notifications
):
    rule = await create_rule(client, author.headers, prompt=prompt, text=REFUND)
    await patch_rule(client, author.headers, rule["id"], enabled=True)
    other = await create_rule(client, author.headers, prompt=prompt, text="second")
    await client.post(
        "/v1/rules:reorder",
        headers=author.headers,
        json={"prompt": prompt, "ids": [other["id"], rule["id"]]},
    )
    await client.delete(f"/v1/rules/{rule['id']}", headers=author.headers)
    in_set = await create_rule(client, author.headers, set="account-9", text="set rule")
    assert in_set["set"] == "account-9"

    messages = await notifications.wait_for(RULES_TOPIC, count=6)
    expected = {"topic": RULES_TOPIC, "tenant_id": str(tenant.id), "prompt": prompt}
    assert messages[:5] == [expected] * 5
    assert messages[5] == {"topic": RULES_TOPIC, "tenant_id": str(tenant.id), "set": "account-9"}


async def test_nothing_is_announced_when_nothing_changed(client, author, prompt, notifications):
    rule = await create_rule(client, author.headers, prompt=prompt, text=REFUND)
    await patch_rule(client, author.headers, rule["id"], text=REFUND)
    await patch_rule(client, author.headers, rule["id"], if_match='"9"', text="stale")
    assert len(await notifications.wait_for(RULES_TOPIC)) == 1


async def test_changes_are_audited_by_whom_without_the_text(client, admin, author, prompt):
    rule = await create_rule(client, author.headers, prompt=prompt, text=REFUND)
    await patch_rule(client, author.headers, rule["id"], enabled=True)
    await client.delete(f"/v1/rules/{rule['id']}", headers=author.headers)
    response = await client.get(
        "/v1/audit", headers=admin.headers, params={"target_id": rule["id"]}
    )
    events = response.json()["items"]
    assert [e["action"] for e in events] == ["rule.delete", "rule.update", "rule.create"]
    assert all(e["actor"]["name"] == "rules-editor" for e in events), events
    assert events[1]["before"]["revision"] == 1
    assert events[1]["after"]["revision"] == 2
    assert events[1]["after"]["prompt"] == prompt
    assert REFUND not in response.text
