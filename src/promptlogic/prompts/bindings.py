"""Binding a version's context: the state its templates operate on, fetched before rendering.

The bindings' arguments (a record's key, a search's query, a rule set's name) are templates
over the variables, so they render in the sandbox like any template; that render also checks
the variables against the input schema. Then every binding resolves at once (the records in
one cached read, each search and rule scope concurrently) and the messages render with the
variables and the bound values. What was bound (record keys and versions, chunk ids and
scores, rule ids and revisions) is returned for the response and the run record, so an output
is traceable to the state behind it.

Rules reach templates as data (a list of `{"id", "text", "priority"}`), never as template
source: `{{ config }}` in a rule's text is printed as written.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import Any

from promptlogic import rendering
from promptlogic.context.cache import RecordCache
from promptlogic.errors import InvalidInput
from promptlogic.prompts.binding_schemas import arguments_of
from promptlogic.rules.cache import RuleSource, Scope
from promptlogic.rules.run_limits import NO_POLICY, RunLimits

# (tenant, the search binding, its rendered query) → (the chunks as template data, what to
# report for each). Supplied by the collections package.
Searcher = Callable[
    [uuid.UUID, dict[str, Any], str], Awaitable[tuple[list[dict[str, Any]], list[dict[str, Any]]]]
]
MAX_KEY_CHARS = 200


@dataclass(frozen=True, slots=True)
class Bound:
    values: dict[str, Any]  # binding name → what the templates see
    report: list[dict[str, Any]]  # what was bound, for responses and run records


@dataclass(frozen=True, slots=True)
class Binder:
    """What bindings read from: records and rules through their caches, and searches."""

    records: RecordCache
    searcher: Searcher | None = None
    rules: RuleSource | None = None


def _field(binding: dict[str, Any], argument: str) -> str:
    return f"context.{binding['name']}.{argument}"


async def _arguments(
    renderer: rendering.Renderer,
    bindings: Sequence[dict[str, Any]],
    input_schema: dict[str, Any],
    variables: dict[str, Any],
) -> dict[str, str]:
    """Every binding argument rendered with the variables (checked against the input schema)."""
    fields: list[str] = []
    templates: list[str] = []
    for binding in bindings:
        for argument, template in arguments_of(binding):
            fields.append(_field(binding, argument))
            templates.append(template)
    if not templates:
        problems = await renderer.validate_variables(input_schema, variables)
        if problems:
            detail = "; ".join(f"{p['field']}: {p['message']}" for p in problems)
            raise InvalidInput(detail, errors=problems)
        return {}
    rendered = await renderer.render(
        templates, variables=variables, schema=input_schema, fields=fields
    )
    return {field: text.strip() for field, text in zip(fields, rendered, strict=True)}


def _record_key(binding: dict[str, Any], arguments: dict[str, str]) -> str:
    key = arguments[_field(binding, "key")]
    if not key or len(key) > MAX_KEY_CHARS or not key.isprintable():
        raise InvalidInput.field(
            _field(binding, "key"),
            f"renders to {key[:60]!r}, which cannot be a record key (1 to {MAX_KEY_CHARS} "
            "printable characters)",
        )
    return key


def _rule_scope(binding: dict[str, Any], arguments: dict[str, str], prompt: str) -> Scope:
    """The set the binding names (rendered), else the prompt's own rules."""
    if not binding.get("set"):
        return ("prompt", prompt)
    name = arguments[_field(binding, "set")]
    if not name or len(name) > MAX_KEY_CHARS or not name.isprintable():
        raise InvalidInput.field(
            _field(binding, "set"),
            f"renders to {name[:60]!r}, which cannot be a rule set's name (1 to "
            f"{MAX_KEY_CHARS} printable characters)",
        )
    return ("set", name)


def _taken(rule_limits: RunLimits, scope: Scope) -> bool:
    kind, name = scope
    return rule_limits.allowed and (kind == "prompt" or rule_limits.takes_set(name))


async def bind(
    binder: Binder,
    renderer: rendering.Renderer,
    tenant_id: uuid.UUID,
    bindings: Sequence[dict[str, Any]],
    input_schema: dict[str, Any],
    variables: dict[str, Any],
    *,
    prompt: str,
    rule_limits: RunLimits = NO_POLICY,
) -> Bound:
    """Resolve `bindings` of `prompt` for `variables` (checked against `input_schema`); a
    missing required record is a 422 naming it. Rules are bound as far as the prompt's policy
    (`rule_limits`) lets them: none when rules are not allowed or the set is not one it
    takes, and never more or longer rules than it allows."""
    arguments = await _arguments(renderer, bindings, input_schema, variables)
    records = [b for b in bindings if b["source"] == "record"]
    searches = [b for b in bindings if b["source"] == "search"]
    rule_bindings = [b for b in bindings if b["source"] == "rules"]
    keys = [(b["namespace"], _record_key(b, arguments)) for b in records]
    scopes = [_rule_scope(b, arguments, prompt) for b in rule_bindings]
    if searches and binder.searcher is None:
        raise InvalidInput.field(_field(searches[0], "collection"), "search is not available")
    if rule_bindings and binder.rules is None:
        raise RuntimeError("a version with a rules binding needs the rules cache")
    searcher, rules = binder.searcher, binder.rules
    found, *fetched = await asyncio.gather(
        binder.records.get_many(tenant_id, keys),
        *(
            searcher(tenant_id, b, arguments[_field(b, "query")])  # type: ignore[misc]
            for b in searches
        ),
        *(
            rules.get(tenant_id, scope)  # type: ignore[union-attr]
            for scope in scopes
            if _taken(rule_limits, scope)
        ),
    )
    searched, taken = fetched[: len(searches)], iter(fetched[len(searches) :])
    applied = [
        rule_limits.apply(next(taken)) if _taken(rule_limits, scope) else () for scope in scopes
    ]
    values: dict[str, Any] = {}
    report: dict[str, dict[str, Any]] = {}
    for binding, (namespace, key) in zip(records, keys, strict=True):
        record = found[(namespace, key)]
        if record is None and binding.get("required"):
            raise InvalidInput.field(
                f"context.{binding['name']}",
                f"is required, and there is no record `{key}` in `{namespace}`",
            )
        values[binding["name"]] = None if record is None else record.value
        report[binding["name"]] = {
            "name": binding["name"],
            "source": "record",
            "namespace": namespace,
            "key": key,
            "version": None if record is None else record.version,
        }
    for binding, (chunks, hits) in zip(searches, searched, strict=True):
        values[binding["name"]] = chunks
        report[binding["name"]] = {
            "name": binding["name"],
            "source": "search",
            "collection": binding["collection"],
            "query": arguments[_field(binding, "query")],
            "chunks": hits,
        }
    for binding, (kind, name), found_rules in zip(rule_bindings, scopes, applied, strict=True):
        values[binding["name"]] = [
            {"id": rule["id"], "text": rule["text"], "priority": rule["priority"]}
            for rule in found_rules
        ]
        report[binding["name"]] = {
            "name": binding["name"],
            "source": "rules",
            kind: name,
            "rules": [{"id": rule["id"], "revision": rule["revision"]} for rule in found_rules],
        }
    return Bound(values, [report[b["name"]] for b in bindings])
