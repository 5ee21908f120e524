"""Context records over the API: create, read, replace, delete, and optimistic concurrency."""

from __future__ import annotations

import json

import pytest
from sqlalchemy import text

from promptlogic.context.values import MAX_VALUE_BYTES
from tests.context.support import put, record_url
from tests.helpers import assert_names_field, assert_problem

ADA = {"name": "Ada Lovelace", "plan": "pro", "seats": 5, "tags": ["vip"], "address": None}


async def stored(session, namespace: str, key: str) -> tuple[int, dict] | None:
    row = (
        await session.execute(
            text("SELECT version, value FROM context_records WHERE namespace = :n AND key = :k"),
            {"n": namespace, "k": key},
        )
    ).one_or_none()
    return None if row is None else (row.version, row.value)


# Create, read, replace, delete


async def test_a_record_is_created_read_replaced_and_deleted(client, writer, reader):
    created = await put(client, writer.headers, "customers", "c-1", ADA)
    assert created.status_code == 201, created.text
    assert created.headers["etag"] == '"1"'
    body = created.json()
    assert body["namespace"] == "customers"
    assert body["key"] == "c-1"
    assert body["value"] == ADA
    assert body["version"] == 1
    assert body["updated_by"] == "importer"
    assert body["updated_at"] == body["created_at"]

    read = await client.get(record_url("customers", "c-1"), headers=reader.headers)
    assert read.status_code == 200
    assert read.headers["etag"] == '"1"'
    assert read.json() == body

    replaced = await put(
        client, writer.headers, "customers", "c-1", {"name": "Ada", "plan": "team"}
    )
    assert replaced.status_code == 200
    assert replaced.headers["etag"] == '"2"'
    assert replaced.json()["value"] == {"name": "Ada", "plan": "team"}  # replaced whole
    assert replaced.json()["version"] == 2
    assert replaced.json()["created_at"] == body["created_at"]

    deleted = await client.delete(record_url("customers", "c-1"), headers=writer.headers)
    assert deleted.status_code == 204
    missing = await client.get(record_url("customers", "c-1"), headers=reader.headers)
    body = assert_problem(missing, 404)
    assert "customers/c-1" in body["detail"]
    again = await client.delete(record_url("customers", "c-1"), headers=writer.headers)
    assert_problem(again, 404)


async def test_writing_the_same_value_again_changes_nothing(client, writer, session):
    first = await put(client, writer.headers, "customers", "c-1", ADA)
    reordered = dict(reversed(list(ADA.items())))  # the same JSON object
    again = await put(client, writer.headers, "customers", "c-1", reordered)
    assert again.status_code == 200
    assert again.json()["version"] == 1
    assert again.json()["updated_at"] == first.json()["updated_at"]
    events = await session.scalar(
        text("SELECT count(*) FROM audit_events WHERE action = 'context.record.put'")
    )
    assert events == 1


async def test_records_live_apart_by_namespace(client, writer):
    await put(client, writer.headers, "customers", "k", {"kind": "customer"})
    await put(client, writer.headers, "plans", "k", {"kind": "plan"})
    customer = await client.get(record_url("customers", "k"), headers=writer.headers)
    plan = await client.get(record_url("plans", "k"), headers=writer.headers)
    assert customer.json()["value"] == {"kind": "customer"}
    assert plan.json()["value"] == {"kind": "plan"}


async def test_writing_needs_the_write_scope(client, reader, writer):
    refused = await put(client, reader.headers, "customers", "c-1", ADA)
    assert_problem(refused, 403)
    await put(client, writer.headers, "customers", "c-1", ADA)
    refused = await client.delete(record_url("customers", "c-1"), headers=reader.headers)
    assert_problem(refused, 403)
    refused = await client.post(
        "/v1/context/customers:bulk", headers=reader.headers, content=b'{"key":"a","value":{}}'
    )
    assert_problem(refused, 403)


async def test_a_record_without_a_key_answers_401(client):
    response = await client.get(record_url("customers", "c-1"))
    assert_problem(response, 401)


# Optimistic concurrency


async def test_if_match_with_the_current_version_replaces(client, writer):
    await put(client, writer.headers, "customers", "c-1", ADA)
    response = await put(
        client, writer.headers, "customers", "c-1", {"v": 2}, **{"If-Match": '"1"'}
    )
    assert response.status_code == 200, response.text
    assert response.headers["etag"] == '"2"'
    weak = await put(client, writer.headers, "customers", "c-1", {"v": 3}, **{"If-Match": 'W/"2"'})
    assert weak.status_code == 200
    assert weak.json()["version"] == 3


async def test_a_stale_if_match_is_a_conflict_and_changes_nothing(client, writer, session):
    await put(client, writer.headers, "customers", "c-1", ADA)
    await put(client, writer.headers, "customers", "c-1", {"by": "someone else"})
    stale = await put(
        client, writer.headers, "customers", "c-1", {"by": "me"}, **{"If-Match": '"1"'}
    )
    body = assert_problem(stale, 409)
    assert "is at version 2, but you expected version 1" in body["detail"]
    assert await stored(session, "customers", "c-1") == (2, {"by": "someone else"})


async def test_if_match_on_a_missing_record_is_a_conflict_and_creates_nothing(
    client, writer, session
):
    for if_match in ('"1"', "*"):
        response = await put(
            client, writer.headers, "customers", "c-9", ADA, **{"If-Match": if_match}
        )
        assert_problem(response, 409)
    assert await stored(session, "customers", "c-9") is None


async def test_if_match_star_replaces_an_existing_record(client, writer):
    await put(client, writer.headers, "customers", "c-1", ADA)
    response = await put(client, writer.headers, "customers", "c-1", {"v": 2}, **{"If-Match": "*"})
    assert response.status_code == 200
    assert response.json()["version"] == 2


async def test_if_match_with_the_current_version_and_the_same_value_changes_nothing(client, writer):
    await put(client, writer.headers, "customers", "c-1", ADA)
    response = await put(client, writer.headers, "customers", "c-1", ADA, **{"If-Match": '"1"'})
    assert response.status_code == 200
    assert response.json()["version"] == 1


@pytest.mark.parametrize("if_match", ["3", '"abc"', '"0"', '"99999999999"', '"-1"'])
async def test_a_malformed_if_match_is_refused(client, writer, if_match):
    await put(client, writer.headers, "customers", "c-1", ADA)
    response = await put(client, writer.headers, "customers", "c-1", {}, **{"If-Match": if_match})
    if if_match == "3":  # unquoted, but a version: taken as the ETag it means
        assert_problem(response, 409)
        return
    body = assert_problem(response, 422)
    assert_names_field(body, "header.If-Match")


async def test_if_none_match_star_only_creates(client, writer, session):
    created = await put(client, writer.headers, "customers", "c-1", ADA, **{"If-None-Match": "*"})
    assert created.status_code == 201
    again = await put(
        client, writer.headers, "customers", "c-1", {"other": 1}, **{"If-None-Match": "*"}
    )
    body = assert_problem(again, 409)
    assert "already exists" in body["detail"]
    assert await stored(session, "customers", "c-1") == (1, ADA)


async def test_if_none_match_with_an_etag_or_with_if_match_is_refused(client, writer):
    response = await put(
        client, writer.headers, "customers", "c-1", ADA, **{"If-None-Match": '"1"'}
    )
    assert_names_field(assert_problem(response, 422), "header.If-None-Match")
    both = {"If-None-Match": "*", "If-Match": '"1"'}
    response = await put(client, writer.headers, "customers", "c-1", ADA, **both)
    assert_names_field(assert_problem(response, 422), "header.If-None-Match")


async def test_a_conditional_get_answers_304_while_the_version_is_current(client, writer):
    await put(client, writer.headers, "customers", "c-1", ADA)
    url = record_url("customers", "c-1")
    response = await client.get(url, headers={**writer.headers, "If-None-Match": '"1"'})
    assert response.status_code == 304
    assert response.headers["etag"] == '"1"'
    assert response.content == b""
    await put(client, writer.headers, "customers", "c-1", {"v": 2})
    response = await client.get(url, headers={**writer.headers, "If-None-Match": '"1"'})
    assert response.status_code == 200
    assert response.json()["version"] == 2


async def test_delete_with_a_stale_if_match_keeps_the_record(client, writer, session):
    await put(client, writer.headers, "customers", "c-1", ADA)
    await put(client, writer.headers, "customers", "c-1", {"v": 2})
    url = record_url("customers", "c-1")
    stale = await client.delete(url, headers={**writer.headers, "If-Match": '"1"'})
    assert_problem(stale, 409)
    assert await stored(session, "customers", "c-1") == (2, {"v": 2})
    current = await client.delete(url, headers={**writer.headers, "If-Match": '"2"'})
    assert current.status_code == 204
    assert await stored(session, "customers", "c-1") is None


async def test_concurrent_conditional_writes_let_exactly_one_win(app, client, writer, session):
    import asyncio

    await put(client, writer.headers, "customers", "c-1", {"v": 0})
    results = await asyncio.gather(
        *(
            put(client, writer.headers, "customers", "c-1", {"v": n}, **{"If-Match": '"1"'})
            for n in range(1, 6)
        )
    )
    statuses = sorted(r.status_code for r in results)
    assert statuses == [200, 409, 409, 409, 409], [r.text for r in results]
    winner = next(r for r in results if r.status_code == 200).json()["value"]
    assert await stored(session, "customers", "c-1") == (2, winner)


# Values


async def test_a_value_over_the_size_limit_is_refused_with_the_limit_named(client, writer, session):
    filler = "x" * (MAX_VALUE_BYTES - len('{"blob":""}') + 1)
    response = await put(client, writer.headers, "customers", "big", {"blob": filler})
    body = assert_problem(response, 413)
    assert_names_field(body, "body.value")
    assert str(MAX_VALUE_BYTES) in body["detail"]
    assert await stored(session, "customers", "big") is None
    exactly = await put(client, writer.headers, "customers", "big", {"blob": filler[:-1]})
    assert exactly.status_code == 201, exactly.text


@pytest.mark.parametrize(
    "body",
    [
        {"value": ["not", "an", "object"]},
        {"value": "text"},
        {"name": "Ada"},  # the value without its envelope
        {"value": {}, "namespace": "other"},
    ],
)
async def test_a_body_that_is_not_a_value_envelope_is_refused(client, writer, body):
    response = await client.put(record_url("customers", "c-1"), headers=writer.headers, json=body)
    problem = assert_problem(response, 422)
    assert all(error["field"].startswith("body") for error in problem["errors"])


@pytest.mark.parametrize(
    "raw",
    [
        b'{"value": {"ratio": NaN}}',
        b'{"value": {"ratio": Infinity}}',
        b'{"value": {"ratio": 1e999}}',
        b'{"value": {"deep": ' + b"[" * 70 + b"]" * 70 + b"}}",
        b'{"value": {"text": "a\\u0000b"}}',
    ],
)
async def test_a_value_postgres_could_not_store_is_refused(client, writer, session, raw):
    response = await client.put(
        record_url("customers", "c-1"),
        headers={**writer.headers, "Content-Type": "application/json"},
        content=raw,
    )
    assert_names_field(assert_problem(response, 422), "body.value")
    assert await stored(session, "customers", "c-1") is None


async def test_unicode_and_big_numbers_are_kept_as_sent(client, writer):
    value = {"name": "Zoë 🎉", "balance": 123456789012345678901234567890, "ratio": 0.1}
    response = await put(client, writer.headers, "customers", "c-1", value)
    read = await client.get(record_url("customers", "c-1"), headers=writer.headers)
    assert response.json()["value"] == value
    assert read.json()["value"] == value
    assert json.loads(read.content)["value"]["balance"] == 123456789012345678901234567890


# Names in the path


@pytest.mark.parametrize("namespace", ["Customers", "-lead", "with space", "a" * 101, "ü"])
async def test_a_bad_namespace_is_refused(client, writer, namespace):
    response = await put(client, writer.headers, namespace, "k", ADA)
    assert_names_field(assert_problem(response, 422), "path.namespace")


@pytest.mark.parametrize(
    "key",
    ["a/b", " lead", "trail ", "tab\there", "nul\x00", "bel\x07", "c1\x85", "k" * 201, "\xa0nbsp"],
)
async def test_a_bad_key_is_refused_naming_path_key(client, writer, session, key):
    response = await put(client, writer.headers, "customers", key, ADA)
    body = assert_problem(response, 422)
    assert_names_field(body, "path.key")
    count = await session.scalar(text("SELECT count(*) FROM context_records"))
    assert count == 0


@pytest.mark.parametrize(
    "key",
    [
        "ada@example.com",
        "Zoë Ångström",
        "key with inner spaces",
        "emoji 🎉 party",
        "100% _sure_",
        "a+b?c#d&e=f",
        "x%2Fy",  # a literal percent sign and digits, not an encoded slash
        "漢字",
        "k" * 200,
    ],
)
async def test_keys_round_trip_through_url_encoding(client, writer, key):
    created = await put(client, writer.headers, "customers", key, {"key": key})
    assert created.status_code == 201, created.text
    assert created.json()["key"] == key
    read = await client.get(record_url("customers", key), headers=writer.headers)
    assert read.status_code == 200
    assert read.json()["key"] == key
    listed = await client.get("/v1/context/customers", headers=writer.headers)
    assert [item["key"] for item in listed.json()["items"]] == [key]
    deleted = await client.delete(record_url("customers", key), headers=writer.headers)
    assert deleted.status_code == 204


async def test_an_empty_key_is_refused(client, writer):
    response = await client.put(
        "/v1/context/customers/", headers=writer.headers, json={"value": {}}
    )
    assert_names_field(assert_problem(response, 422), "path.key")


# Tenants


async def test_another_tenants_record_is_not_found_and_never_listed(client, session, writer):
    from tests.factories import make_key, make_tenant

    other = await make_tenant(session, "globex")
    their = await make_key(session, other, ["admin"], name="globex-admin")
    await put(client, their.headers, "customers", "c-1", {"secret": "globex data"})

    read = await client.get(record_url("customers", "c-1"), headers=writer.headers)
    assert_problem(read, 404)
    assert "globex data" not in read.text
    deleted = await client.delete(record_url("customers", "c-1"), headers=writer.headers)
    assert_problem(deleted, 404)
    stale = await client.delete(
        record_url("customers", "c-1"), headers={**writer.headers, "If-Match": '"1"'}
    )
    assert_problem(stale, 404)
    conditional = await put(
        client, writer.headers, "customers", "c-1", {"mine": 1}, **{"If-Match": '"1"'}
    )
    assert_problem(conditional, 409)  # this tenant has no such record
    assert "globex" not in conditional.text
    listed = await client.get("/v1/context/customers", headers=writer.headers)
    assert listed.json() == {"items": [], "next_cursor": None}

    # the same names are this tenant's own record
    mine = await put(client, writer.headers, "customers", "c-1", {"mine": 1})
    assert mine.status_code == 201
    theirs = await client.get(record_url("customers", "c-1"), headers=their.headers)
    assert theirs.json()["value"] == {"secret": "globex data"}
    assert theirs.json()["version"] == 1
