"""The service as the run path and caches use it: get_records, change notifications, audit."""

from __future__ import annotations

import json

from sqlalchemy import event, text

from promptlogic.context import service
from promptlogic.context.service import CONTEXT_TOPIC, NOTIFY_MAX_BYTES
from tests.context.support import bulk, put, record_url
from tests.factories import make_key, make_tenant


async def test_get_records_returns_the_requested_pairs_in_one_query(
    app, client, session, writer, tenant
):
    for namespace, key in [("customers", "ada"), ("customers", "bob"), ("plans", "ada")]:
        await put(client, writer.headers, namespace, key, {"of": f"{namespace}/{key}"})
    other = await make_tenant(session, "globex")
    their = await make_key(session, other, ["admin"], name="globex-admin")
    await put(client, their.headers, "customers", "zed", {"of": "globex"})
    await put(client, their.headers, "customers", "cy", {"of": "globex"})

    wanted = [("customers", "ada"), ("plans", "ada"), ("customers", "zed"), ("plans", "bob")]
    statements: list[str] = []
    listener = lambda *args: statements.append(args[2])  # noqa: E731
    async with app.state.sessionmaker() as db:
        sync_engine = app.state.engine.sync_engine
        event.listen(sync_engine, "before_cursor_execute", listener)
        try:
            found = await service.get_records(db, tenant_id=tenant.id, keys=wanted)
            none = await service.get_records(db, tenant_id=tenant.id, keys=[])
        finally:
            event.remove(sync_engine, "before_cursor_execute", listener)
    assert len(statements) == 1
    assert set(found) == {("customers", "ada"), ("plans", "ada")}  # not globex's `zed`
    assert found[("plans", "ada")].value == {"of": "plans/ada"}
    assert found[("customers", "ada")].version == 1
    assert none == {}


async def test_get_records_tolerates_repeated_pairs(app, client, writer, tenant):
    await put(client, writer.headers, "customers", "ada", {})
    async with app.state.sessionmaker() as db:
        found = await service.get_records(db, tenant_id=tenant.id, keys=[("customers", "ada")] * 3)
    assert list(found) == [("customers", "ada")]


async def test_each_change_is_announced_once_committed(client, writer, tenant, notifications):
    await put(client, writer.headers, "customers", "ada", {"v": 1})
    await put(client, writer.headers, "customers", "ada", {"v": 1})  # unchanged: no message
    stale = await put(client, writer.headers, "customers", "ada", {"v": 2}, **{"If-Match": '"9"'})
    assert stale.status_code == 409  # refused: no message
    await client.delete(record_url("customers", "ada"), headers=writer.headers)
    messages = await notifications.wait_for(CONTEXT_TOPIC, 2)
    expected = {
        "topic": CONTEXT_TOPIC,
        "tenant_id": str(tenant.id),
        "namespace": "customers",
        "key": "ada",
    }
    assert messages == [expected, expected]


async def test_a_bulk_upload_announces_its_changed_keys_in_one_message(
    client, writer, tenant, notifications
):
    await put(client, writer.headers, "customers", "same", {})
    upload = "\n".join(
        json.dumps({"key": key, "value": {}}) for key in ["same", "b", "a", "ada@example.com"]
    )
    await bulk(client, writer.headers, "customers", upload)
    messages = await notifications.wait_for(CONTEXT_TOPIC, 2)
    assert messages[1] == {
        "topic": CONTEXT_TOPIC,
        "tenant_id": str(tenant.id),
        "namespace": "customers",
        "keys": ["a", "ada@example.com", "b"],
    }


async def test_a_bulk_upload_too_large_to_name_announces_its_namespace(
    client, writer, tenant, notifications
):
    count = NOTIFY_MAX_BYTES // 10  # keys of 15 characters and more
    upload = "\n".join(json.dumps({"key": f"customer-{n:06}", "value": {}}) for n in range(count))
    assert (await bulk(client, writer.headers, "customers", upload)).json()["created"] == count
    (message,) = await notifications.wait_for(CONTEXT_TOPIC)
    assert message == {
        "topic": CONTEXT_TOPIC,
        "tenant_id": str(tenant.id),
        "namespace": "customers",
    }


async def test_puts_and_deletes_are_audited_without_values(client, writer, session):
    await put(client, writer.headers, "customers", "ada@example.com", {"secret": "s3cr3t"})
    await put(client, writer.headers, "customers", "ada@example.com", {"secret": "changed"})
    await client.delete(record_url("customers", "ada@example.com"), headers=writer.headers)
    rows = (
        await session.execute(
            text(
                "SELECT action, actor_name, target_type, target_id, before, after "
                "FROM audit_events WHERE action LIKE 'context.%' ORDER BY id"
            )
        )
    ).all()
    record = {"namespace": "customers", "key": "ada@example.com"}
    assert [tuple(row) for row in rows] == [
        (
            "context.record.put",
            "importer",
            "context_record",
            "ada@example.com",
            None,
            {**record, "version": 1, "bytes": len('{"secret":"s3cr3t"}')},
        ),
        (
            "context.record.put",
            "importer",
            "context_record",
            "ada@example.com",
            {**record, "version": 1},
            {**record, "version": 2, "bytes": len('{"secret":"changed"}')},
        ),
        (
            "context.record.delete",
            "importer",
            "context_record",
            "ada@example.com",
            {**record, "version": 2},
            None,
        ),
    ]


async def test_the_audit_api_finds_record_events(client, writer, admin):
    await put(client, writer.headers, "customers", "ada", {})
    response = await client.get(
        "/v1/audit",
        headers=admin.headers,
        params={"target_type": "context_record", "target_id": "ada"},
    )
    assert [event["action"] for event in response.json()["items"]] == ["context.record.put"]


async def test_a_deleted_tenant_takes_its_records_along(client, writer, session, tenant):
    await put(client, writer.headers, "customers", "ada", {})
    await session.execute(text("DELETE FROM tenants WHERE id = :t"), {"t": tenant.id})
    await session.commit()
    assert await session.scalar(text("SELECT count(*) FROM context_records")) == 0
