"""What a version's `context` may declare: the state it needs, bound before rendering.

- `record`: one context record, its key a template over the variables
  (`{"name": "customer", "source": "record", "namespace": "customers",
  "key": "{{ customer_id }}", "required": true}`);
- `search`: chunks of a collection for a query template (`k`, a metadata `filter`);
- `rules`: the live tenant rules of the prompt, or of a set (`docs/rules.md`).

A binding's value reaches the templates under its `name`, so names are identifiers and must not
be variables of the input schema as well.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, StringConstraints

BINDING_NAME_PATTERN = r"^[A-Za-z_][A-Za-z0-9_]{0,63}$"
NAMESPACE_PATTERN = r"^[a-z0-9][a-z0-9._-]{0,99}$"
MAX_BINDINGS = 10
MAX_ARGUMENT_CHARS = 2000  # a key or query template is a line, not a document

BindingName = Annotated[str, StringConstraints(pattern=BINDING_NAME_PATTERN)]
ArgumentTemplate = Annotated[str, StringConstraints(min_length=1, max_length=MAX_ARGUMENT_CHARS)]


class RecordBinding(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: BindingName
    source: Literal["record"]
    namespace: Annotated[str, StringConstraints(pattern=NAMESPACE_PATTERN)]
    key: ArgumentTemplate = Field(description="A template over the variables: `{{ customer_id }}`.")
    required: bool = Field(
        default=False, description="A missing record fails the render (422); else it is none."
    )


class SearchBinding(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: BindingName
    source: Literal["search"]
    collection: Annotated[str, StringConstraints(pattern=NAMESPACE_PATTERN)]
    query: ArgumentTemplate = Field(description="A template over the variables: `{{ question }}`.")
    k: Annotated[int, Field(ge=1, le=50)] = 5
    filter: dict[str, Any] | None = Field(
        default=None, description='Metadata every chunk must have (`{"lang": "en"}`).'
    )


class RulesBinding(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: BindingName
    source: Literal["rules"]
    set: ArgumentTemplate | None = Field(
        default=None, description="A rule set's name, a template (`account-{{ account_id }}`)."
    )


Binding = Annotated[RecordBinding | SearchBinding | RulesBinding, Field(discriminator="source")]
Bindings = Annotated[list[Binding], Field(max_length=MAX_BINDINGS)]


def arguments_of(binding: dict[str, Any]) -> list[tuple[str, str]]:
    """The binding's template arguments as (its field, the template), in a fixed order."""
    source = binding["source"]
    if source == "record":
        return [("key", binding["key"])]
    if source == "search":
        return [("query", binding["query"])]
    if source == "rules" and binding.get("set"):
        return [("set", binding["set"])]
    return []
