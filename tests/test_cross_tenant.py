"""Tenant isolation over every /v1 route: another tenant's records answer 404 and never leak.

The routes are walked from the app itself, so a new route is checked the day it is added. A route
whose path parameter is not in `RECORD_IDS` (or that takes a body not in `BODIES`) fails the test
until it is described here.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from fastapi.routing import APIRoute, iter_route_contexts
from sqlalchemy import text

from promptlogic.knowledge.ingestion import wait_for_ingestions
from promptlogic.tenancy.models import Tenant
from tests.factories import KeyFixture, make_key, make_run, make_tenant
from tests.helpers import assert_problem


@dataclass
class TenantData:
    """A tenant and one record of every kind, for substituting into paths."""

    tenant: Tenant
    admin: KeyFixture
    app_key: KeyFixture  # a live key that is not the one acting
    revoked_key: KeyFixture
    prompt: str  # a chat prompt whose version 1 is on `production`
    provider: str  # a provider connection, with an API key
    provider_key: str  # that connection's API key
    model: str  # a model priced by this tenant only
    run_id: str  # a run record
    end_user: str  # that run's end user
    context_namespace: str  # a namespace of context records
    context_key: str  # a record in it
    collection: str  # a knowledge collection
    document: str  # a document in it, ingested
    rule_id: str  # a rule of `prompt`, enabled (the tenant also has one in the set `shared`)
    dataset: str = ""  # an eval dataset
    case_id: str = ""  # a case in it
    eval_id: str = ""  # an eval of `prompt` on it, queued (`production` is gated on it)


CONTEXT_VALUE = {"plan": "pro"}
# The same id and content in every tenant's collection; the collection names differ.
KNOWLEDGE_DOCUMENT = {"id": "handbook", "text": "Refund escalation goes to the duty manager."}
DATASET_CASE = {"inputs": {"customer": "Ada"}, "expected": "Hello Ada", "notes": "unchanged"}


def gate_of(dataset: str) -> dict[str, Any]:
    return {"dataset": dataset, "evaluators": [{"type": "exact"}], "min_pass_rate": 0.5}


PROMPT_CONTENT = {
    "messages": [{"role": "user", "content": "Secret logic for {{ customer }}"}],
    "model": {"name": "gpt-4o-mini"},
}

# Path parameter name -> the id of that kind of record of a tenant. Add new kinds here.
RECORD_IDS: dict[str, Callable[[TenantData], str]] = {
    "key_id": lambda data: str(data.app_key.key.id),
    "name": lambda data: data.prompt,
    "number": lambda data: "1",
    "label": lambda data: "production",
    "provider": lambda data: data.provider,
    "model": lambda data: data.model,
    "run_id": lambda data: data.run_id,
    "namespace": lambda data: data.context_namespace,
    "key": lambda data: data.context_key,
    "collection": lambda data: data.collection,
    "document_id": lambda data: data.document,
    "rule_id": lambda data: data.rule_id,
    "dataset": lambda data: data.dataset,
    "case_id": lambda data: data.case_id,
    "eval_id": lambda data: data.eval_id,
}

# (method, path) -> a valid request body, for routes with a path parameter that take one (or
# a function of the tenant's data giving it, for a body that names a record).
# Each would change nothing for the owner: the same content, the label where it is.
BODIES: dict[tuple[str, str], dict[str, Any] | Callable[[TenantData], dict[str, Any]]] = {
    ("PATCH", "/v1/prompts/{name}"): {"description": "unchanged"},
    ("PUT", "/v1/prompts/{name}/rules-policy"): {},
    ("POST", "/v1/prompts/{name}/versions"): PROMPT_CONTENT,
    ("PUT", "/v1/prompts/{name}/labels/{label}"): {"version": 1, "expected_version": 1},
    ("POST", "/v1/prompts/{name}/render"): {"variables": {"customer": "Ada"}},
    ("POST", "/v1/prompts/{name}/run"): {"variables": {"customer": "Ada"}},
    ("PATCH", "/v1/providers/{provider}"): {"timeout_seconds": 30},
    ("PUT", "/v1/models/{model}"): {"input_per_million": 1, "output_per_million": 2},
    ("PUT", "/v1/context/{namespace}/{key}"): {"value": CONTEXT_VALUE},
    # One NDJSON line (sent as application/json, which the upload accepts too).
    ("POST", "/v1/context/{namespace}:bulk"): {"key": "from-bulk", "value": CONTEXT_VALUE},
    # The same document again: 200, nothing re-ingested.
    ("POST", "/v1/collections/{collection}/documents"): KNOWLEDGE_DOCUMENT,
    ("POST", "/v1/collections/{collection}/search"): {"query": "refund escalation", "k": 5},
    ("PATCH", "/v1/rules/{rule_id}"): {"enabled": True},  # as it is: no new revision
    ("PATCH", "/v1/datasets/{dataset}"): {"description": "unchanged"},
    ("POST", "/v1/datasets/{dataset}/cases"): DATASET_CASE,
    # One JSONL line (sent as application/json, which the import accepts too).
    ("POST", "/v1/datasets/{dataset}:import"): DATASET_CASE,
    ("PATCH", "/v1/datasets/{dataset}/cases/{case_id}"): {"notes": "unchanged"},  # no revision
    ("POST", "/v1/datasets/{dataset}/cases:from-run"): lambda data: {"run_id": data.run_id},
    ("PUT", "/v1/prompts/{name}/gates/{label}"): lambda data: gate_of(data.dataset),
    ("POST", "/v1/prompts/{name}/gates/{label}:run"): {"version": 1},
}

# (method, path) -> a valid body naming a tenant's record, for routes without a path parameter
# that find a record by a body field (the OpenAI-compatible endpoint names the prompt in `model`).
BODY_ID_ROUTES: dict[tuple[str, str], Callable[[TenantData], dict[str, Any]]] = {
    ("POST", "/v1/chat/completions"): lambda data: {
        "model": f"prompt:{data.prompt}@production",
        "messages": [{"role": "user", "content": "hello"}],
        "metadata": {"customer": "Ada"},
    },
}

# Routes that write the caller's own record under the name in the path (an upsert): with
# another tenant's name they succeed on the caller's own record. Checked after the 404 walk.
OWN_NAMESPACE: set[tuple[str, str]] = {
    ("PUT", "/v1/models/{model}"),
    # Context namespaces are names, not records: listing or writing one of another tenant's
    # names lists or writes the caller's own records under that name.
    ("GET", "/v1/context/{namespace}"),
    ("POST", "/v1/context/{namespace}:bulk"),
    ("PUT", "/v1/context/{namespace}/{key}"),
}

# (method, path) -> query parameters a route requires (or a function of the tenant's data).
QUERIES: dict[tuple[str, str], dict[str, Any] | Callable[[TenantData], dict[str, Any]]] = {
    ("GET", "/v1/prompts/{name}/diff"): {"from": 1, "to": 1},
    ("GET", "/v1/evals/{eval_id}/compare"): lambda data: {"base": data.eval_id},
}

# Extra query strings to try on list routes (every list is also read without any).
LIST_QUERIES: dict[str, list[dict[str, str]]] = {
    "/v1/api-keys": [{"include_revoked": "true"}],
    "/v1/audit": [{"target_type": "api_key"}, {"action": "api_key.revoke"}],
    "/v1/rules": [{"set": "shared"}, {"prompt": "bravo-corp-logic"}],
}


def v1_routes(app: FastAPI) -> list[tuple[str, str, APIRoute]]:
    routes = []
    for context in iter_route_contexts(app.routes):
        route = context.original_route
        if isinstance(route, APIRoute) and context.path_format.startswith("/v1/"):
            routes.extend((method, context.path_format, route) for method in context.methods)
    return sorted(routes, key=lambda r: (r[1], r[0]))


def path_params(path: str) -> list[str]:
    return re.findall(r"{([^}:]+)", path)


def markers_of(data: TenantData) -> list[str]:
    """Strings that only a response about this tenant's records could contain."""
    found = [str(data.tenant.id), data.tenant.slug]
    for key in (data.admin, data.app_key, data.revoked_key):
        found += [str(key.key.id), key.key.prefix, key.key.name]
    return [
        *found,
        data.prompt,
        "Secret logic",
        data.provider,
        data.provider_key,
        data.model,
        data.run_id,
        data.end_user,
        data.collection,
        data.rule_id,
        data.eval_id,
        data.dataset,
        data.case_id,
    ]


async def make_tenant_data(session, client, slug: str) -> TenantData:
    tenant = await make_tenant(session, slug)
    admin = await make_key(session, tenant, ["admin"], name=f"{slug}-admin")
    app_key = await make_key(session, tenant, ["run", "read"], name=f"{slug}-app")
    revoked = await make_key(session, tenant, ["write"], name=f"{slug}-revoked")
    response = await client.delete(f"/v1/api-keys/{revoked.key.id}", headers=admin.headers)
    assert response.status_code == 204
    prompt = f"{slug}-logic"
    body = {"name": prompt, "description": "unchanged", "version": PROMPT_CONTENT}
    response = await client.post("/v1/prompts", headers=admin.headers, json=body)
    assert response.status_code == 201, response.text
    response = await client.put(
        f"/v1/prompts/{prompt}/labels/production",
        headers=admin.headers,
        json={"version": 1, "expected_version": None},
    )
    assert response.status_code == 200, response.text
    provider, provider_key, model = f"{slug}-llm", f"sk-{slug}-0123456789abcdef", f"{slug}-model"
    body = {"name": provider, "kind": "openai", "api_key": provider_key, "timeout_seconds": 30}
    response = await client.post("/v1/providers", headers=admin.headers, json=body)
    assert response.status_code == 201, response.text
    response = await client.put(
        f"/v1/models/{model}",
        headers=admin.headers,
        json={"input_per_million": 7, "output_per_million": 9},
    )
    assert response.status_code == 200, response.text
    end_user = f"{slug}-customer"
    run = await make_run(session, tenant, prompt=prompt, end_user=end_user)
    namespace, key = f"{slug}-customers", f"{slug}-ada@example.com"
    response = await client.put(
        f"/v1/context/{namespace}/{key}", headers=admin.headers, json={"value": CONTEXT_VALUE}
    )
    assert response.status_code == 201, response.text
    collection = f"{slug}-kb"
    response = await client.post(
        "/v1/collections", headers=admin.headers, json={"name": collection}
    )
    assert response.status_code == 201, response.text
    response = await client.post(
        f"/v1/collections/{collection}/documents", headers=admin.headers, json=KNOWLEDGE_DOCUMENT
    )
    assert response.status_code == 202, response.text
    await wait_for_ingestions()
    rules = []
    for scope in ({"prompt": prompt}, {"set": "shared"}):
        body = {**scope, "text": f"Secret rule of {slug}", "enabled": True}
        response = await client.post("/v1/rules", headers=admin.headers, json=body)
        assert response.status_code == 201, response.text
        rules.append(response.json()["id"])
    dataset = f"{slug}-evalset"
    response = await client.post("/v1/datasets", headers=admin.headers, json={"name": dataset})
    assert response.status_code == 201, response.text
    response = await client.post(
        f"/v1/datasets/{dataset}/cases", headers=admin.headers, json=DATASET_CASE
    )
    assert response.status_code == 201, response.text
    case_id = response.json()["items"][0]["case_id"]
    response = await client.post(
        "/v1/evals",
        headers=admin.headers,
        json={"prompt": prompt, "dataset": dataset, "evaluators": [{"type": "exact"}]},
    )
    assert response.status_code == 202, response.text
    eval_id = response.json()["id"]
    response = await client.put(
        f"/v1/prompts/{prompt}/gates/production", headers=admin.headers, json=gate_of(dataset)
    )
    assert response.status_code == 200, response.text
    return TenantData(
        tenant,
        admin,
        app_key,
        revoked,
        prompt,
        provider,
        provider_key,
        model,
        str(run.id),
        end_user,
        namespace,
        key,
        collection,
        KNOWLEDGE_DOCUMENT["id"],
        rules[0],
        dataset=dataset,
        case_id=case_id,
        eval_id=eval_id,
    )


@pytest.fixture
async def alpha(client, session) -> TenantData:
    return await make_tenant_data(session, client, "alpha-corp")


@pytest.fixture
async def bravo(client, session) -> TenantData:
    return await make_tenant_data(session, client, "bravo-corp")


async def snapshot(session) -> dict[str, Any]:
    keys = (await session.execute(text("SELECT id, revoked_at FROM api_keys"))).all()
    events = await session.scalar(text("SELECT count(*) FROM audit_events"))
    prompts = await session.execute(
        text("SELECT name, description, archived, latest_version FROM prompts")
    )
    labels = await session.execute(text("SELECT prompt_id, name, version FROM prompt_labels"))
    providers = await session.execute(
        text("SELECT id, kind, timeout_seconds, api_key_encrypted FROM provider_connections")
    )
    prices = await session.execute(
        text("SELECT tenant_id, model, input_per_million, output_per_million FROM model_prices")
    )
    records = await session.execute(
        text("SELECT tenant_id, namespace, key, version, value::text FROM context_records")
    )
    collections = await session.execute(
        text("SELECT id, name, dimensions FROM knowledge_collections")
    )
    documents = await session.execute(
        text("SELECT id, generation, status, content_hash FROM knowledge_documents")
    )
    chunks = await session.execute(text("SELECT id, document_id FROM knowledge_chunks"))
    rules = await session.execute(
        text("SELECT id, tenant_id, revision, priority, enabled, status, text FROM rules")
    )
    revisions = await session.scalar(text("SELECT count(*) FROM rule_revisions"))
    datasets = await session.execute(text("SELECT id, name, description, revision FROM datasets"))
    cases = await session.execute(
        text("SELECT id, case_id, notes, added_revision, removed_revision FROM dataset_cases")
    )
    evals = await session.execute(text("SELECT id, status, completed FROM eval_runs"))
    gates = await session.execute(
        text("SELECT id, label, dataset_id, min_pass_rate, evaluators::text FROM prompt_gates")
    )
    return {
        "rules": sorted(map(tuple, rules)),
        "rule_revisions": revisions,
        "datasets": sorted(map(tuple, datasets)),
        "dataset_cases": sorted(map(tuple, cases)),
        "evals": sorted(map(tuple, evals)),
        "gates": sorted(map(tuple, gates)),
        "collections": sorted(map(tuple, collections)),
        "documents": sorted(map(tuple, documents)),
        "chunks": sorted(map(tuple, chunks)),
        "records": sorted(map(tuple, records)),
        "keys": sorted(map(tuple, keys)),
        "events": events,
        "prompts": sorted(map(tuple, prompts)),
        "labels": sorted(map(tuple, labels)),
        "providers": sorted(map(tuple, providers)),
        "prices": sorted(map(tuple, prices), key=repr),
    }


def routes_with_ids(app: FastAPI) -> list[tuple[str, str, APIRoute]]:
    routes = [r for r in v1_routes(app) if path_params(r[1])]
    assert ("DELETE", "/v1/api-keys/{key_id}") in [r[:2] for r in routes], (
        "the route walk found nothing: check how routes are enumerated"
    )
    unknown = sorted(
        f"{method} {path}: `{param}`"
        for method, path, _ in routes
        for param in path_params(path)
        if param not in RECORD_IDS
    )
    if unknown:
        pytest.fail(
            "Routes with path parameters this test cannot fill; add each parameter to "
            "RECORD_IDS in tests/test_cross_tenant.py (and a record of that kind to "
            "make_tenant_data): " + "; ".join(unknown)
        )
    no_body = sorted(
        f"{method} {path}"
        for method, path, route in routes
        if route.dependant.body_params and (method, path) not in BODIES
    )
    if no_body:
        pytest.fail(
            "Routes with a path parameter and a body this test has no valid body for; add one "
            "to BODIES in tests/test_cross_tenant.py: " + "; ".join(no_body)
        )
    return routes


async def call(
    client: httpx.AsyncClient, method: str, path: str, data: TenantData, headers: dict[str, str]
) -> httpx.Response:
    url = path.format(**{param: RECORD_IDS[param](data) for param in path_params(path)})
    body = BODIES.get((method, path))
    if callable(body):
        body = body(data)
    query = QUERIES.get((method, path))
    if callable(query):
        query = query(data)
    return await client.request(method, url, headers=headers, json=body, params=query)


async def test_every_route_answers_404_for_another_tenants_record(
    app, client, session, alpha, bravo
):
    routes = routes_with_ids(app)
    before = await snapshot(session)

    for method, path, _ in routes:
        if (method, path) in OWN_NAMESPACE:
            continue
        response = await call(client, method, path, bravo, alpha.admin.headers)
        where = f"{method} {path} with tenant B's ids"
        assert_problem(response, 404, where=where)
        for marker in markers_of(bravo):  # only the id sent in the URL may be echoed back
            if marker not in response.request.url.path:
                assert marker not in response.text, f"{where} leaked {marker!r}"

    assert await snapshot(session) == before, "a refused request changed something"

    bravo_rows = "SELECT * FROM model_prices WHERE tenant_id = :t"
    bravo_prices = (await session.execute(text(bravo_rows), {"t": bravo.tenant.id})).all()
    for method, path in sorted(OWN_NAMESPACE):
        response = await call(client, method, path, bravo, alpha.admin.headers)
        where = f"{method} {path} with tenant B's ids"
        assert response.status_code < 400, f"{where}: {response.text}"
        for marker in markers_of(bravo):
            if marker not in response.request.url.path:
                assert marker not in response.text, f"{where} leaked {marker!r}"
    after = (await session.execute(text(bravo_rows), {"t": bravo.tenant.id})).all()
    assert after == bravo_prices, "tenant B's prices changed"
    me = await client.get("/v1/me", headers=bravo.app_key.headers)
    assert me.status_code == 200, "tenant B's key stopped working"


async def test_every_route_finds_the_callers_own_record(app, client, alpha, bravo):
    """The control for the test above: the same calls with tenant A's own ids succeed."""
    # Deletes last, the deepest first: a document before its collection.
    routes = sorted(
        routes_with_ids(app),
        key=lambda route: (
            route[0] == "DELETE",
            -route[1].count("/") if route[0] == "DELETE" else 0,
        ),
    )
    for method, path, _ in routes:
        response = await call(client, method, path, alpha, alpha.admin.headers)
        assert response.status_code < 400, f"{method} {path}: {response.text}"


async def test_lists_never_show_another_tenants_records(app, client, alpha, bravo):
    lists = [
        path for method, path, _ in v1_routes(app) if method == "GET" and not path_params(path)
    ]
    assert {"/v1/me", "/v1/api-keys", "/v1/audit"} <= set(lists)

    for path in lists:
        for params in [{}, *LIST_QUERIES.get(path, [])]:
            response = await client.get(path, headers=alpha.admin.headers, params=params)
            where = f"GET {path} {params}"
            assert response.status_code == 200, f"{where}: {response.text}"
            for marker in markers_of(bravo):
                assert marker not in response.text, f"{where} shows tenant B's {marker!r}"

    keys = await client.get(
        "/v1/api-keys", headers=alpha.admin.headers, params={"include_revoked": "true"}
    )
    assert {item["id"] for item in keys.json()["items"]} == {
        str(alpha.admin.key.id),
        str(alpha.app_key.key.id),
        str(alpha.revoked_key.key.id),
    }


async def test_filtering_the_audit_by_another_tenants_ids_finds_nothing(client, alpha, bravo):
    for target_id in (
        str(bravo.tenant.id),
        str(bravo.app_key.key.id),
        str(bravo.revoked_key.key.id),
    ):
        response = await client.get(
            "/v1/audit", headers=alpha.admin.headers, params={"target_id": target_id}
        )
        assert response.status_code == 200
        assert response.json() == {"items": [], "next_cursor": None}


async def test_revoking_another_tenants_key_answers_404_and_leaves_it_working(
    client, session, alpha, bravo
):
    response = await client.delete(
        f"/v1/api-keys/{bravo.app_key.key.id}", headers=alpha.admin.headers
    )
    assert_problem(response, 404)
    revoked_at = await session.scalar(
        text("SELECT revoked_at FROM api_keys WHERE id = :id"), {"id": bravo.app_key.key.id}
    )
    assert revoked_at is None
    assert (await client.get("/v1/me", headers=bravo.app_key.headers)).status_code == 200
    # a revoked key of the other tenant is just as unknown
    response = await client.delete(
        f"/v1/api-keys/{bravo.revoked_key.key.id}", headers=alpha.admin.headers
    )
    assert_problem(response, 404)


async def test_records_named_in_a_body_answer_404_for_another_tenant_and_are_found_for_the_owner(
    app, client, alpha, bravo
):
    posts = {r[:2] for r in v1_routes(app) if r[0] == "POST" and not path_params(r[1])}
    assert set(BODY_ID_ROUTES) <= posts, "a route in BODY_ID_ROUTES no longer exists"
    for (method, path), body_for in BODY_ID_ROUTES.items():
        where = f"{method} {path} naming tenant B's record"
        response = await client.request(
            method, path, headers=alpha.app_key.headers, json=body_for(bravo)
        )
        assert_problem(response, 404, where=where)
        for marker in markers_of(bravo):
            if marker not in json.dumps(body_for(bravo)):
                assert marker not in response.text, f"{where} leaked {marker!r}"
        own = await client.request(
            method, path, headers=alpha.app_key.headers, json=body_for(alpha)
        )
        assert own.status_code < 400, f"{method} {path}: {own.text}"
