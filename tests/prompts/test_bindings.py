"""Context bindings: a version names the state it needs, and render and run bind it."""

from __future__ import annotations

from sqlalchemy import text

from tests.factories import make_key, make_tenant
from tests.helpers import assert_problem

CUSTOMER = {
    "name": "customer",
    "source": "record",
    "namespace": "customers",
    "key": "{{ customer_id }}",
    "required": True,
}
MESSAGES = [
    {"role": "system", "content": "Plan: {{ customer.plan }}; tier {{ customer['tier'] }}."},
    {"role": "user", "content": "{{ question }}"},
]


async def put_record(client, key, namespace: str, record_key: str, value: dict) -> None:
    answer = await client.put(
        f"/v1/context/{namespace}/{record_key}", headers=key.headers, json={"value": value}
    )
    assert answer.status_code in (200, 201), answer.text


async def make_bound_prompt(client, key, name="advisor", context=None, messages=None, **extra):
    version = {
        "messages": messages or MESSAGES,
        "model": {"name": "gpt-4o-mini"},
        "context": context if context is not None else [CUSTOMER],
        **extra,
    }
    answer = await client.post(
        "/v1/prompts", headers=key.headers, json={"name": name, "version": version}
    )
    return answer


async def render(client, key, variables, name="advisor"):
    return await client.post(
        f"/v1/prompts/{name}/render",
        headers=key.headers,
        json={"variables": variables, "version": 1},
    )


async def test_a_bound_record_is_rendered_and_reported(client, admin):
    await put_record(client, admin, "customers", "c-42", {"plan": "pro", "tier": "gold"})
    assert (await make_bound_prompt(client, admin)).status_code == 201
    answer = await render(client, admin, {"customer_id": "c-42", "question": "Refund?"})
    assert answer.status_code == 200, answer.text
    body = answer.json()
    assert body["messages"][0]["content"] == "Plan: pro; tier gold."
    assert body["bound"] == [
        {
            "name": "customer",
            "source": "record",
            "namespace": "customers",
            "key": "c-42",
            "version": 1,
        }
    ]


async def test_the_input_schema_asks_for_the_key_variables_not_the_bound_names(client, admin):
    await make_bound_prompt(client, admin)
    answer = await render(client, admin, {"question": "Refund?"})
    assert_problem(answer, 422)
    fields = [error["field"] for error in answer.json()["errors"]]
    assert fields == ["variables.customer_id"]


async def test_a_missing_required_record_is_a_422_naming_it(client, admin):
    await make_bound_prompt(client, admin)
    answer = await render(client, admin, {"customer_id": "nobody", "question": "Hi"})
    assert_problem(answer, 422)
    assert answer.json()["errors"] == [
        {
            "field": "context.customer",
            "message": "is required, and there is no record `nobody` in `customers`",
        }
    ]


async def test_a_missing_optional_record_is_none(client, admin):
    optional = {**CUSTOMER, "required": False}
    messages = [
        {
            "role": "system",
            "content": "{% if customer %}Plan {{ customer.plan }}{% else %}No customer{% endif %}",
        }
    ]
    await make_bound_prompt(client, admin, context=[optional], messages=messages)
    answer = await render(client, admin, {"customer_id": "nobody"})
    assert answer.status_code == 200, answer.text
    assert answer.json()["messages"][0]["content"] == "No customer"
    assert answer.json()["bound"][0]["version"] is None


async def test_templated_keys_with_unicode_and_punctuation(client, admin):
    await put_record(client, admin, "customers", "zoë@example.com", {"plan": "free", "tier": "-"})
    context = [{**CUSTOMER, "key": "{{ email | lower }}"}]
    await make_bound_prompt(client, admin, context=context)
    answer = await render(client, admin, {"email": "ZOË@example.com", "question": "?"})
    assert answer.status_code == 200, answer.text
    assert answer.json()["bound"][0]["key"] == "zoë@example.com"


async def test_a_key_that_renders_to_nothing_is_named(client, admin):
    context = [{**CUSTOMER, "key": "{{ customer_id | trim }}"}]
    await make_bound_prompt(client, admin, context=context)
    answer = await render(client, admin, {"customer_id": "   ", "question": "?"})
    assert_problem(answer, 422)
    assert answer.json()["errors"][0]["field"] == "context.customer.key"


async def test_a_change_to_the_record_reaches_the_next_render(client, admin):
    await put_record(client, admin, "customers", "c-1", {"plan": "free", "tier": "bronze"})
    await make_bound_prompt(client, admin)
    first = await render(client, admin, {"customer_id": "c-1", "question": "?"})
    assert first.json()["messages"][0]["content"] == "Plan: free; tier bronze."
    await put_record(client, admin, "customers", "c-1", {"plan": "pro", "tier": "silver"})
    second = await render(client, admin, {"customer_id": "c-1", "question": "?"})
    assert second.json()["messages"][0]["content"] == "Plan: pro; tier silver."
    assert second.json()["bound"][0]["version"] == 2
    deleted = await client.delete("/v1/context/customers/c-1", headers=admin.headers)
    assert deleted.status_code == 204
    third = await render(client, admin, {"customer_id": "c-1", "question": "?"})
    assert_problem(third, 422)


async def test_a_record_created_after_a_miss_is_found(client, admin):
    await make_bound_prompt(client, admin)
    missing = await render(client, admin, {"customer_id": "late", "question": "?"})
    assert_problem(missing, 422)
    await put_record(client, admin, "customers", "late", {"plan": "pro", "tier": "x"})
    found = await render(client, admin, {"customer_id": "late", "question": "?"})
    assert found.status_code == 200, found.text


async def test_a_binding_never_reads_another_tenants_record(client, admin, session):
    other = await make_tenant(session, "globex")
    their_key = await make_key(session, other, ["admin"], name="globex-admin")
    await put_record(client, their_key, "customers", "c-42", {"plan": "secret", "tier": "x"})
    await make_bound_prompt(client, admin)
    answer = await render(client, admin, {"customer_id": "c-42", "question": "?"})
    assert_problem(answer, 422)
    assert "secret" not in answer.text


async def test_a_run_records_what_was_bound(app, client, admin):
    await put_record(client, admin, "customers", "c-7", {"plan": "pro", "tier": "gold"})
    await make_bound_prompt(client, admin)
    answer = await client.post(
        "/v1/prompts/advisor/run",
        headers=admin.headers,
        json={"variables": {"customer_id": "c-7", "question": "Refund?"}, "version": 1},
    )
    assert answer.status_code == 200, answer.text
    result = answer.json()
    assert result["bound"][0]["key"] == "c-7"
    assert result["provider"] == "offline"
    await app.state.run_recorder.flush()
    stored = await client.get(f"/v1/runs/{result['id']}", headers=admin.headers)
    assert stored.json()["bound"] == result["bound"]
    assert "Plan: pro; tier gold." in stored.json()["messages"][0]["content"]


async def test_a_version_without_arguments_still_checks_its_variables(client, admin):
    rules = {"name": "rules", "source": "rules"}
    messages = [{"role": "system", "content": "{{ topic }}: {{ rules | length }}"}]
    await make_bound_prompt(client, admin, context=[rules], messages=messages)
    answer = await render(client, admin, {})
    assert_problem(answer, 422)
    assert answer.json()["errors"][0]["field"] == "variables.topic"


async def test_bindings_are_checked_when_saved(client, admin, session):
    cases = [
        ([CUSTOMER, {**CUSTOMER, "namespace": "other"}], "version.context.1.name"),
        ([{**CUSTOMER, "key": "{% include 'policy' %}"}], "version.context.0.key"),
        ([{**CUSTOMER, "key": "{{ customer.id }}"}], "version.context.0.key"),
        ([{**CUSTOMER, "key": "{{ unclosed"}], "version.context.0.key"),
        ([{**CUSTOMER, "name": "not a name"}], "body.version.context.0.record.name"),
        ([{**CUSTOMER, "source": "sql"}], "body.version.context.0"),
        ([{**CUSTOMER, "namespace": "Bad Space"}], "body.version.context.0.record.namespace"),
    ]
    for index, (context, field) in enumerate(cases):
        answer = await make_bound_prompt(client, admin, name=f"p{index}", context=context)
        assert_problem(answer, 422)
        fields = [error["field"] for error in answer.json()["errors"]]
        assert any(f.startswith(field) for f in fields), (context, fields)
    assert await session.scalar(text("SELECT count(*) FROM prompts")) == 0


async def test_a_bound_name_cannot_also_be_an_input_variable(client, admin):
    schema = {
        "type": "object",
        "properties": {"customer_id": {"type": "string"}, "customer": {"type": "string"}},
    }
    answer = await make_bound_prompt(client, admin, input_schema=schema)
    assert_problem(answer, 422)
    assert "version.context.0.name" in [e["field"] for e in answer.json()["errors"]]


async def test_a_context_template_has_no_bindings(client, admin):
    body = {
        "name": "policy",
        "kind": "context",
        "version": {"template": "Policy", "context": [CUSTOMER]},
    }
    answer = await client.post("/v1/prompts", headers=admin.headers, json=body)
    assert_problem(answer, 422)
    assert answer.json()["errors"][0]["field"] == "version.context"


async def test_a_caller_cannot_pass_a_bound_value_in_place_of_the_record(client, admin):
    await put_record(client, admin, "customers", "c-42", {"plan": "pro", "tier": "gold"})
    await make_bound_prompt(client, admin)
    forged = {"customer_id": "c-42", "question": "?", "customer": {"plan": "enterprise"}}
    answer = await render(client, admin, forged)
    if answer.status_code == 200:
        assert answer.json()["messages"][0]["content"] == "Plan: pro; tier gold."
    else:
        assert_problem(answer, 422)


async def test_a_search_binding_renders_the_best_chunks_and_reports_them(app, client, admin):
    from promptlogic.knowledge.ingestion import wait_for_ingestions

    made = await client.post("/v1/collections", headers=admin.headers, json={"name": "kb"})
    assert made.status_code == 201, made.text
    documents = [
        ("refunds", "Refunds are paid within 30 days of delivery.", "en"),
        ("shipping", "Parcels ship from Rotterdam every weekday.", "en"),
        ("refunds-de", "Erstattungen werden innerhalb von 30 Tagen bezahlt.", "de"),
    ]
    for doc_id, text_, lang in documents:
        body = {"id": doc_id, "text": text_, "metadata": {"lang": lang}}
        added = await client.post("/v1/collections/kb/documents", headers=admin.headers, json=body)
        assert added.status_code == 202, added.text
    await wait_for_ingestions()
    docs = {
        "name": "docs",
        "source": "search",
        "collection": "kb",
        "query": "{{ question }}",
        "k": 1,
        "filter": {"lang": "en"},
    }
    messages = [
        {
            "role": "system",
            "content": "{% for d in docs %}[{{ d.document_id }}] {{ d.text }}{% endfor %}",
        },
        {"role": "user", "content": "{{ question }}"},
    ]
    await make_bound_prompt(client, admin, context=[docs], messages=messages)
    answer = await render(client, admin, {"question": "When are refunds paid?"})
    assert answer.status_code == 200, answer.text
    body = answer.json()
    assert (
        body["messages"][0]["content"] == "[refunds] Refunds are paid within 30 days of delivery."
    )
    (bound,) = body["bound"]
    assert bound["source"] == "search"
    assert bound["query"] == "When are refunds paid?"
    assert [chunk["document_id"] for chunk in bound["chunks"]] == ["refunds"]
    assert bound["chunks"][0]["score"] > 0


async def test_a_search_of_a_collection_that_does_not_exist_names_the_binding(client, admin):
    docs = {"name": "docs", "source": "search", "collection": "nowhere", "query": "{{ q }}"}
    messages = [{"role": "system", "content": "{{ docs | length }}"}]
    await make_bound_prompt(client, admin, context=[docs], messages=messages)
    answer = await render(client, admin, {"q": "anything"})
    assert_problem(answer, 422)
    assert answer.json()["errors"][0]["field"] == "context.docs.collection"


async def test_a_run_binds_a_customer_and_a_search_and_records_exactly_that(app, client, admin):
    from promptlogic.knowledge.ingestion import wait_for_ingestions

    await put_record(client, admin, "customers", "c-42", {"plan": "pro", "tier": "gold"})
    assert (
        await client.post("/v1/collections", headers=admin.headers, json={"name": "kb"})
    ).status_code == 201
    for doc_id, text_ in (
        ("refunds", "Pro customers get refunds within 14 days."),
        ("shipping", "Parcels ship every weekday."),
    ):
        body = {"id": doc_id, "text": text_}
        added = await client.post("/v1/collections/kb/documents", headers=admin.headers, json=body)
        assert added.status_code == 202, added.text
    await wait_for_ingestions()
    docs = {"name": "docs", "source": "search", "collection": "kb", "query": "{{ question }}"}
    messages = [
        {
            "role": "system",
            "content": "Plan {{ customer.plan }}."
            "{% for d in docs %} [{{ d.document_id }}]{% endfor %}",
        },
        {"role": "user", "content": "{{ question }}"},
    ]
    await make_bound_prompt(client, admin, context=[CUSTOMER, docs], messages=messages)
    variables = {"customer_id": "c-42", "question": "How fast are refunds for pro customers?"}
    ran = await client.post(
        "/v1/prompts/advisor/run",
        headers=admin.headers,
        json={"variables": variables, "version": 1},
    )
    assert ran.status_code == 200, ran.text
    await app.state.run_recorder.flush()
    stored = (await client.get(f"/v1/runs/{ran.json()['id']}", headers=admin.headers)).json()
    customer, found = stored["bound"]
    assert customer == {
        "name": "customer",
        "source": "record",
        "namespace": "customers",
        "key": "c-42",
        "version": 1,
    }
    assert found["source"] == "search"
    assert found["query"] == variables["question"]
    assert found["chunks"][0]["document_id"] == "refunds"
    shown = [f"[{chunk['document_id']}]" for chunk in found["chunks"]]
    assert stored["messages"][0]["content"] == "Plan pro. " + " ".join(shown)
