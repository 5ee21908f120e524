"""Bulk upsert from NDJSON: good lines written in one go, each bad line reported by number."""

from __future__ import annotations

import json

from sqlalchemy import event, text

from promptlogic.context.bulk import MAX_LINES
from promptlogic.context.values import MAX_VALUE_BYTES
from tests.context.support import bulk, put, record_url
from tests.helpers import assert_names_field, assert_problem


def line(key: str, value: object) -> str:
    return json.dumps({"key": key, "value": value})


async def keys_in(session, namespace: str) -> dict[str, tuple[int, dict]]:
    rows = await session.execute(
        text("SELECT key, version, value FROM context_records WHERE namespace = :n"),
        {"n": namespace},
    )
    return {row.key: (row.version, row.value) for row in rows}


async def test_good_lines_are_written_and_each_bad_line_is_reported(client, writer, session):
    big = {"blob": "x" * MAX_VALUE_BYTES}
    upload = "\n".join(
        [
            line("c-1", {"name": "Ada"}),  # 1
            '{"key": "c-2", "value": {"name": "Bob"}',  # 2: not JSON
            "[1, 2, 3]",  # 3: not an object
            json.dumps({"value": {"name": "Cy"}}),  # 4: no key
            line("c-5", big),  # 5: too big
            "",  # 6: blank, skipped
            line("c-7", ["not", "an", "object"]),  # 7
            line("a/b", {}),  # 8: a key no URL can name
            json.dumps({"key": "c-9", "value": {}, "namespace": "plans"}),  # 9: unknown field
            '{"key": "c-10", "value": {"ratio": NaN}}',  # 10: not storable
            line("c-11", {"name": "Dee"}),  # 11
        ]
    )
    response = await bulk(client, writer.headers, "customers", upload)
    assert response.status_code == 200, response.text
    body = response.json()
    assert {k: body[k] for k in ("written", "created", "updated", "unchanged")} == {
        "written": 2,
        "created": 2,
        "updated": 0,
        "unchanged": 0,
    }
    reported = {error["line"]: error["errors"] for error in body["errors"]}
    assert sorted(reported) == [2, 3, 4, 5, 7, 8, 9, 10]
    assert reported[2][0]["field"] == "line"
    assert "JSON" in reported[2][0]["message"]
    assert reported[3][0]["field"] == "line"
    assert reported[4] == [{"field": "key", "message": "is required"}]
    assert reported[5][0]["field"] == "value"
    assert str(MAX_VALUE_BYTES) in reported[5][0]["message"]
    assert reported[7][0]["field"] == "value"
    assert reported[8] == [{"field": "key", "message": "must not contain `/`"}]
    assert reported[9][0]["field"] == "namespace"
    assert reported[10][0]["field"] == "value"
    stored = await keys_in(session, "customers")
    assert stored == {"c-1": (1, {"name": "Ada"}), "c-11": (1, {"name": "Dee"})}


async def test_counts_tell_created_updated_and_unchanged_apart(client, writer, session):
    await put(client, writer.headers, "customers", "same", {"v": 1})
    await put(client, writer.headers, "customers", "changed", {"v": 1})
    upload = "\n".join(
        [line("same", {"v": 1}), line("changed", {"v": 2}), line("new-1", {}), line("new-2", {})]
    )
    body = (await bulk(client, writer.headers, "customers", upload)).json()
    assert body == {"written": 4, "created": 2, "updated": 1, "unchanged": 1, "errors": []}
    stored = await keys_in(session, "customers")
    assert stored["same"] == (1, {"v": 1})
    assert stored["changed"] == (2, {"v": 2})
    assert stored["new-1"] == (1, {})


async def test_a_key_on_several_lines_is_reported_on_each_and_not_written(client, writer, session):
    await put(client, writer.headers, "customers", "dup", {"v": "before"})
    upload = "\n".join([line("dup", {"v": 1}), line("ok", {}), line("dup", {"v": 2})])
    body = (await bulk(client, writer.headers, "customers", upload)).json()
    assert body["written"] == 1
    assert [error["line"] for error in body["errors"]] == [1, 3]
    assert "lines 1, 3" in body["errors"][0]["errors"][0]["message"]
    assert (await keys_in(session, "customers"))["dup"] == (1, {"v": "before"})


async def test_crlf_line_ends_a_byte_order_mark_and_blank_lines_are_accepted(client, writer):
    upload = b"\xef\xbb\xbf" + b"\r\n".join(
        [line("a", {"n": 1}).encode(), b"", b"   ", line("b", {"n": 2}).encode(), b""]
    )
    body = (await bulk(client, writer.headers, "customers", upload)).json()
    assert body["created"] == 2, body
    assert body["errors"] == []


async def test_line_numbers_count_blank_lines(client, writer):
    body = (await bulk(client, writer.headers, "customers", "\n\n{oops}\n")).json()
    assert [error["line"] for error in body["errors"]] == [3]


async def test_an_empty_upload_writes_nothing(client, writer, session):
    for content_type in ("application/x-ndjson", ""):
        response = await bulk(client, writer.headers, "customers", b"", content_type)
        assert response.status_code == 200
        assert response.json() == {
            "written": 0,
            "created": 0,
            "updated": 0,
            "unchanged": 0,
            "errors": [],
        }
    events = await session.scalar(
        text("SELECT count(*) FROM audit_events WHERE action LIKE 'context.%'")
    )
    assert events == 0


async def test_too_many_lines_are_refused_before_anything_is_written(client, writer, session):
    upload = "\n".join(line(f"k{n}", {}) for n in range(MAX_LINES + 1))
    response = await bulk(client, writer.headers, "customers", upload)
    body = assert_problem(response, 413)
    assert str(MAX_LINES) in body["detail"]
    assert await session.scalar(text("SELECT count(*) FROM context_records")) == 0


async def test_a_body_over_the_request_limit_is_refused(client, writer, app):
    limit = app.state.settings.max_body_bytes
    upload = line("k", {"blob": "x" * limit})
    assert_problem(await bulk(client, writer.headers, "customers", upload), 413)


async def test_other_media_types_are_refused(client, writer, session):
    response = await bulk(client, writer.headers, "customers", line("a", {}), "multipart/form-data")
    assert_names_field(assert_problem(response, 415), "header.Content-Type")
    for accepted in ("application/json", "application/jsonl", "text/plain; charset=utf-8"):
        response = await bulk(client, writer.headers, "customers", line("a", {}), accepted)
        assert response.status_code == 200, (accepted, response.text)


async def test_a_bad_namespace_is_refused(client, writer):
    response = await bulk(client, writer.headers, "Bad Name", line("a", {}))
    assert_names_field(assert_problem(response, 422), "path.namespace")


async def test_the_bulk_path_does_not_read_as_a_namespace_or_record(client, writer):
    """`{namespace}:bulk` is routed to the upload for POST and to nothing else."""
    await bulk(client, writer.headers, "customers", line("a", {}))
    listed = await client.get("/v1/context/customers:bulk", headers=writer.headers)
    assert_names_field(assert_problem(listed, 422), "path.namespace")
    wrong = await client.post("/v1/context/customers", headers=writer.headers, content=b"")
    assert_problem(wrong, 405)
    record = await client.get(record_url("customers", "a"), headers=writer.headers)
    assert record.status_code == 200


async def test_many_lines_take_one_statement_per_chunk(app, client, writer, session):
    statements: list[str] = []
    sync_engine = app.state.engine.sync_engine
    listener = lambda *args: statements.append(args[2])  # noqa: E731
    upload = "\n".join(line(f"k{n:05}", {"n": n}) for n in range(2500))
    event.listen(sync_engine, "before_cursor_execute", listener)
    try:
        response = await bulk(client, writer.headers, "customers", upload)
    finally:
        event.remove(sync_engine, "before_cursor_execute", listener)
    assert response.json()["created"] == 2500
    inserts = [s for s in statements if "INSERT INTO context_records" in s]
    assert len(inserts) == 3  # chunks of 1000
    assert len(statements) < 10, statements  # not one per line


async def test_the_bulk_is_audited_with_counts_and_versions_not_values(client, writer, session):
    await put(client, writer.headers, "customers", "old", {"v": 1})
    upload = "\n".join([line("old", {"v": 2}), line("new", {"secret": "s3cr3t"}), "oops"])
    await bulk(client, writer.headers, "customers", upload)
    after = await session.scalar(
        text("SELECT after FROM audit_events WHERE action = 'context.records.bulk'")
    )
    assert after == {
        "namespace": "customers",
        "created": 1,
        "updated": 1,
        "unchanged": 0,
        "rejected": 1,
        "versions": {"new": 1, "old": 2},
        "versions_truncated": False,
    }
    assert "s3cr3t" not in json.dumps(after)
    unchanged = await bulk(client, writer.headers, "customers", line("old", {"v": 2}))
    assert unchanged.json()["unchanged"] == 1
    count = await session.scalar(
        text("SELECT count(*) FROM audit_events WHERE action = 'context.records.bulk'")
    )
    assert count == 1  # nothing changed, nothing audited


async def test_the_upload_is_described_as_ndjson_in_openapi(client):
    spec = (await client.get("/openapi.json")).json()
    upload = spec["paths"]["/v1/context/{namespace}:bulk"]["post"]
    assert "application/x-ndjson" in upload["requestBody"]["content"]
    record = spec["paths"]["/v1/context/{namespace}/{key}"]
    assert set(record) == {"get", "put", "delete"}
