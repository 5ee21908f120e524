"""Listing a namespace: key order, cursor pages, a literal prefix filter served by the index."""

from __future__ import annotations

import pytest
from sqlalchemy import text

from tests.context.support import bulk, put
from tests.helpers import assert_names_field, assert_problem, cursor_of, only_page, walk_pages

KEYS = ["b", "a", "ab", "a-1", "B", "z", "é", "a_"]


async def seed(client, headers, namespace: str, keys: list[str]) -> None:
    lines = "\n".join(f'{{"key": "{key}", "value": {{"k": "{key}"}}}}' for key in keys)
    response = await bulk(client, headers, namespace, lines)
    assert response.json()["created"] == len(keys), response.text


async def test_pages_walk_every_record_once_in_code_point_order(client, writer):
    await seed(client, writer.headers, "customers", KEYS)
    items, pages = await walk_pages(client, "/v1/context/customers", writer.headers, limit=3)
    assert [item["key"] for item in items] == sorted(KEYS)  # Python sorts by code point too
    assert pages == 3
    assert items[0] == {
        **items[0],
        "namespace": "customers",
        "value": {"k": items[0]["key"]},
        "version": 1,
    }


async def test_an_unknown_namespace_is_an_empty_list(client, writer):
    assert await only_page(client, "/v1/context/nothing-here", writer.headers) == []


async def test_a_prefix_lists_only_keys_starting_with_it(client, writer):
    await seed(client, writer.headers, "customers", KEYS)
    listed = await only_page(client, "/v1/context/customers", writer.headers, prefix="a")
    assert [item["key"] for item in listed] == ["a", "a-1", "a_", "ab"]
    listed = await only_page(client, "/v1/context/customers", writer.headers, prefix="ab")
    assert [item["key"] for item in listed] == ["ab"]
    assert await only_page(client, "/v1/context/customers", writer.headers, prefix="c") == []


@pytest.mark.parametrize(
    ("prefix", "expected"),
    [
        ("100%", ["100%", "100% sure"]),
        ("100_", ["100_"]),
        ("a_", ["a_b"]),
        ("a%", []),
        ("\\", ["\\x"]),
    ],
)
async def test_like_wildcards_in_a_prefix_are_taken_literally(client, writer, prefix, expected):
    keys = ["100%", "100% sure", "100_", "1000", "100x", "a_b", "ab", "axb", "\\x"]
    for key in keys:
        await put(client, writer.headers, "codes", key, {})
    listed = await only_page(client, "/v1/context/codes", writer.headers, prefix=prefix)
    assert [item["key"] for item in listed] == expected


async def test_a_prefix_pages_like_the_whole_list(client, writer):
    keys = [f"user-{n:03}" for n in range(25)] + ["other", "user", "uses"]
    await seed(client, writer.headers, "customers", keys)
    items, _ = await walk_pages(
        client, "/v1/context/customers", writer.headers, limit=10, params={"prefix": "user-"}
    )
    assert [item["key"] for item in items] == [f"user-{n:03}" for n in range(25)]


async def test_a_prefix_at_the_top_of_unicode_is_served(client, writer):
    top = "\U0010ffff"
    await seed(client, writer.headers, "edge", ["z", "\uffff", f"{top}a"])
    await put(client, writer.headers, "edge", f"a{top}{top}b", {})
    listed = await only_page(client, "/v1/context/edge", writer.headers, prefix=top)
    assert [item["key"] for item in listed] == [f"{top}a"]
    listed = await only_page(client, "/v1/context/edge", writer.headers, prefix=f"a{top}")
    assert [item["key"] for item in listed] == [f"a{top}{top}b"]


@pytest.mark.parametrize(
    ("params", "field"),
    [
        ({"cursor": "not-a-cursor"}, "query.cursor"),
        ({"cursor": cursor_of([1])}, "query.cursor"),
        ({"limit": 0}, "query.limit"),
        ({"limit": 201}, "query.limit"),
        ({"prefix": "a\nb"}, "query.prefix"),
        ({"prefix": "p" * 201}, "query.prefix"),
    ],
)
async def test_bad_list_parameters_are_refused_by_name(client, writer, params, field):
    response = await client.get("/v1/context/customers", headers=writer.headers, params=params)
    assert_names_field(assert_problem(response, 422), field)


async def test_listing_reads_a_range_of_the_primary_key(session, tenant):
    """Names are in the "C" collation, so a prefix is an index range on any database."""
    await session.execute(text("SET enable_seqscan = off"))
    rows = await session.execute(
        text(
            "EXPLAIN SELECT * FROM context_records WHERE tenant_id = :t AND namespace = 'n' "
            "AND key >= 'ab' AND key < 'ac' AND key > 'ab1' ORDER BY key LIMIT 51"
        ),
        {"t": tenant.id},
    )
    plan = "\n".join(row[0] for row in rows)
    await session.rollback()
    assert "Index Scan using pk_context_records" in plan, plan
    assert "(key)::text >= 'ab'::text" in plan.partition("Index Cond")[2], plan
    assert "Sort" not in plan
