"""Input schemas: JSON Schema (Draft 2020-12) for a version's variables.

`format` is not enforced (it is an annotation in 2020-12) and only local `$ref`s are allowed:
the validator never fetches anything. Messages are written here rather than taken from
jsonschema, whose messages repeat the offending value (a megabyte, for a large input).

`pattern` runs Python regular expressions written by tenant users against request data; a
catastrophic pattern can take seconds. `Renderer.validate_variables` runs this module in a
worker under the render deadline; the functions here run in the calling thread.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Iterator
from functools import lru_cache
from typing import Any

from jsonschema import Draft202012Validator
from jsonschema.exceptions import SchemaError, UnknownType, ValidationError
from referencing.exceptions import Unresolvable

MAX_PROBLEMS = 50
MAX_MESSAGE = 300


def default_schema(variables: Iterable[str]) -> dict[str, Any]:
    """The schema of a version without one: every variable its templates use, a required string."""
    names = sorted(set(variables))
    return {
        "type": "object",
        "properties": {name: {"type": "string"} for name in names},
        "required": names,
    }


OUTPUT_FIELD = "output"


def output_schema(schema: dict[str, Any] | bool) -> dict[str, Any]:
    """`schema` as the property `output` of an object, for validating a model's output where
    variables are validated (objects). The `$id` makes it a resource of its own, so its local
    `$ref`s (`#/$defs/x`) resolve against it rather than against the wrapper."""
    inner: dict[str, Any] | bool = schema
    if isinstance(schema, dict):
        inner = {"$id": "urn:promptlogic:output", **schema}
    return {"type": "object", "properties": {OUTPUT_FIELD: inner}, "required": [OUTPUT_FIELD]}


@lru_cache(maxsize=1)
def _metaschema() -> Draft202012Validator:
    return Draft202012Validator(
        Draft202012Validator.META_SCHEMA, format_checker=Draft202012Validator.FORMAT_CHECKER
    )


def _walk(value: Any) -> Iterator[dict[str, Any]]:
    stack = [value]
    while stack:
        item = stack.pop()
        if isinstance(item, dict):
            yield item
            stack.extend(item.values())
        elif isinstance(item, list):
            stack.extend(item)


def _remote_refs(schema: Any) -> list[str]:
    nodes = list(_walk(schema))
    ids = {node["$id"].split("#")[0] for node in nodes if isinstance(node.get("$id"), str)}
    problems = []
    for node in nodes:
        for keyword in ("$ref", "$dynamicRef"):
            ref = node.get(keyword)
            if isinstance(ref, str) and not ref.startswith("#") and ref.split("#")[0] not in ids:
                problems.append(f"only local references are supported: `{ref[:100]}`")
    return problems


def _path(error: ValidationError) -> str:
    return "/".join(str(part) for part in error.absolute_path)


def check_schema(schema: Any) -> list[str]:
    """Every reason `schema` is not a usable JSON Schema (Draft 2020-12); empty when it is."""
    if not isinstance(schema, dict | bool):
        return ["must be a JSON Schema (an object)"]
    try:
        errors = sorted(_metaschema().iter_errors(schema), key=_path)
        problems = [
            f"at `/{_path(error)}`: {error.message[:MAX_MESSAGE]}"
            if error.absolute_path
            else error.message[:MAX_MESSAGE]
            for error in errors[:MAX_PROBLEMS]
        ]
        return problems + _remote_refs(schema)
    except RecursionError:
        return ["the schema nests too deeply"]


@lru_cache(maxsize=256)
def _validator(canonical: str) -> Draft202012Validator:
    return Draft202012Validator(json.loads(canonical))


def _message(error: ValidationError) -> str:
    keyword, expected = error.validator, error.validator_value
    shown = json.dumps(expected, ensure_ascii=False, default=str)[:MAX_MESSAGE]
    messages = {
        "type": f"must be of type {shown}",
        "enum": f"must be one of {shown}",
        "const": f"must be {shown}",
        "minLength": f"must have at least {shown} characters",
        "maxLength": f"must have at most {shown} characters",
        "minimum": f"must be at least {shown}",
        "maximum": f"must be at most {shown}",
        "exclusiveMinimum": f"must be greater than {shown}",
        "exclusiveMaximum": f"must be less than {shown}",
        "multipleOf": f"must be a multiple of {shown}",
        "pattern": f"must match the pattern {shown}",
        "minItems": f"must have at least {shown} items",
        "maxItems": f"must have at most {shown} items",
        "uniqueItems": "must not repeat items",
        "minProperties": f"must have at least {shown} properties",
        "maxProperties": f"must have at most {shown} properties",
    }
    return messages.get(str(keyword), error.message[:MAX_MESSAGE])


def _problems(error: ValidationError, field: str) -> Iterator[dict[str, str]]:
    where = ".".join([field, *(str(part) for part in error.absolute_path)])
    if error.validator == "required" and isinstance(error.instance, dict):
        for name in error.validator_value:
            if name not in error.instance:
                yield {"field": f"{where}.{name}", "message": "is required"}
    else:
        yield {"field": where, "message": _message(error)}


def canonical(schema: dict[str, Any] | bool) -> str:
    """The schema as sorted JSON: the key of every cache of compiled schemas."""
    return json.dumps(schema, sort_keys=True)


def validate_variables(
    schema: dict[str, Any] | bool, variables: Any, field: str = "variables"
) -> list[dict[str, str]]:
    """Each problem of `variables` against `schema`, as `{"field": "variables.x", "message"}`."""
    return validate_canonical(canonical(schema), variables, field)


def validate_canonical(
    schema_json: str, variables: Any, field: str = "variables"
) -> list[dict[str, str]]:
    """`validate_variables` for a schema given as `canonical(schema)`."""
    try:
        validator = _validator(schema_json)
        found: dict[tuple[str, str], None] = {}
        for error in validator.iter_errors(variables):
            for problem in _problems(error, field):
                found[(problem["field"], problem["message"])] = None
            if len(found) >= MAX_PROBLEMS:
                break
    except Unresolvable as exc:
        message = f"the input schema has a reference that cannot be resolved: {exc}"
        return [{"field": field, "message": message[:MAX_MESSAGE]}]
    except (SchemaError, UnknownType) as exc:
        message = f"the input schema is not valid: {exc}"
        return [{"field": field, "message": message[:MAX_MESSAGE]}]
    except RecursionError:
        return [{"field": field, "message": "the variables nest too deeply to validate"}]
    return [{"field": where, "message": message} for where, message in sorted(found)]


# Keywords whose check costs at most about one step per (schema node, data node) pair: no
# regular expression (`pattern`, `patternProperties`), no reference (which can recurse), no
# `uniqueItems` (quadratic) and no `unevaluated*` (which re-walks subschemas). Annotations and
# `format` (not enforced) cost nothing.
_SUBSCHEMA = frozenset(
    {"items", "contains", "not", "if", "then", "else", "additionalProperties", "propertyNames"}
)
_SUBSCHEMA_LISTS = frozenset({"prefixItems", "anyOf", "oneOf", "allOf"})
_SUBSCHEMA_MAPS = frozenset({"properties", "dependentSchemas"})
_VALUES = frozenset({"enum", "const", "default", "examples"})
_SCALARS = frozenset(
    {
        "type", "required", "minItems", "maxItems", "minLength", "maxLength", "minimum",
        "maximum", "exclusiveMinimum", "exclusiveMaximum", "multipleOf", "minProperties",
        "maxProperties", "minContains", "maxContains", "dependentRequired", "title",
        "description", "$comment", "$schema", "$id", "format", "deprecated", "readOnly",
        "writeOnly", "contentMediaType", "contentEncoding",
    }
)  # fmt: skip


def _value_count(value: Any) -> int:
    return sum(1 for _ in _walk_values(value))


def _walk_values(value: Any) -> Iterator[Any]:
    stack = [value]
    while stack:
        item = stack.pop()
        yield item
        if isinstance(item, dict):
            stack.extend(item.values())
        elif isinstance(item, list):
            stack.extend(item)


@lru_cache(maxsize=256)
def linear_cost(canonical: str) -> int | None:
    """How many nodes the schema has when only keywords of linear cost appear in it (see
    above), else None: validating data of n nodes then takes about cost * n steps."""
    cost = 0
    stack: list[Any] = [json.loads(canonical)]
    while stack:
        schema = stack.pop()
        cost += 1
        if isinstance(schema, bool):
            continue
        if not isinstance(schema, dict):
            return None
        for keyword, value in schema.items():
            if keyword in _SUBSCHEMA:
                stack.append(value)
            elif keyword in _SUBSCHEMA_LISTS and isinstance(value, list):
                stack.extend(value)
            elif keyword in _SUBSCHEMA_MAPS and isinstance(value, dict):
                stack.extend(value.values())
            elif keyword in _VALUES or keyword in _SCALARS:
                cost += _value_count(value)
            else:
                return None
    return cost
