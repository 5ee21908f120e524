"""Evaluators as data: what an eval asks of each case's output, as the API receives it.

`EvaluatorSpec` is a union discriminated on `type`; every member carries a `weight` (how much
it counts in the case's mean score, default 1) and a `threshold` (the score it needs to pass:
default 1, since every evaluator but the judge scores 0 or 1; a judge's default is 0.5).
Each member is checked as it arrives (a bad regex, schema or path is a 422 naming the field),
so that an eval run never fails halfway through on a spec it could have refused at once.

Types are strict: `"true"` is not a boolean and `"3"` not a number, so a typo in a stored
eval surfaces instead of being guessed at.
"""

from __future__ import annotations

import json
from typing import Annotated, Any, Literal

import regex
from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    StringConstraints,
    ValidationInfo,
    field_validator,
)

from promptlogic.evals.paths import parse_path
from promptlogic.prompts.schemas import LABEL_PATTERN, NAME_PATTERN, VersionNumber
from promptlogic.rendering.schema import check_schema

MAX_PATTERN_CHARS = 1_000
MAX_SCHEMA_BYTES = 50 * 1024
MAX_VALUE_CHARS = 10_000
MAX_EVALUATORS = 20
DEFAULT_JUDGE_LABEL = "production"
REGEX_FLAGS = {"i": regex.IGNORECASE, "m": regex.MULTILINE, "s": regex.DOTALL}

Weight = Annotated[float, Field(gt=0, le=1000, allow_inf_nan=False)]
Threshold = Annotated[float, Field(ge=0, le=1, allow_inf_nan=False)]
Amount = Annotated[float, Field(ge=0, allow_inf_nan=False)]


def _parses(text: str) -> str:
    parse_path(text)  # a PathError is a ValueError: pydantic reports it on the field
    return text


FieldPath = Annotated[str, AfterValidator(_parses)]


class _Evaluator(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True, frozen=True)

    weight: Weight = 1.0
    threshold: Threshold = 1.0


class ExactSpec(_Evaluator):
    """The output equals the expected value: as text, or as JSON when the expected value is
    JSON (an object, list, number or boolean) and the output parses as JSON."""

    type: Literal["exact"]
    case_sensitive: bool = True
    trim: bool = Field(default=True, description="Ignore whitespace around both texts.")


class ContainsSpec(_Evaluator):
    """The output contains `value` (by default the case's expected text, or a JSON expected
    value's JSON text)."""

    type: Literal["contains"]
    value: Annotated[str, StringConstraints(min_length=1, max_length=MAX_VALUE_CHARS)] | None = None
    case_sensitive: bool = False


class RegexSpec(_Evaluator):
    """The pattern matches somewhere in the output (the `regex` package's syntax, under a time
    limit; `flags`: `i` ignore case, `m` multi-line anchors, `s` dot matches newlines)."""

    type: Literal["regex"]
    pattern: Annotated[str, StringConstraints(max_length=MAX_PATTERN_CHARS)]
    flags: Annotated[list[Literal["i", "m", "s"]], Field(max_length=3)] = []

    @field_validator("pattern")
    @classmethod
    def _compiles(cls, pattern: str) -> str:
        try:
            regex.compile(pattern)
        except (regex.error, OverflowError, RecursionError) as error:
            raise ValueError(f"is not a valid regular expression: {error}") from None
        return pattern

    @property
    def flag_bits(self) -> int:
        bits = 0
        for flag in self.flags:
            bits |= REGEX_FLAGS[flag]
        return bits


class JsonSchemaSpec(_Evaluator):
    """The output is JSON satisfying `schema` (Draft 2020-12, local `$ref`s only)."""

    model_config = ConfigDict(populate_by_name=False, serialize_by_alias=True)

    type: Literal["json_schema"]
    # Named `schema` in JSON; `schema_` here, as `schema` would shadow a BaseModel attribute.
    schema_: dict[str, Any] = Field(alias="schema")

    @field_validator("schema_")
    @classmethod
    def _usable(cls, schema: dict[str, Any]) -> dict[str, Any]:
        try:
            size = len(json.dumps(schema, separators=(",", ":")).encode())
        except RecursionError:
            raise ValueError("nests too deeply") from None
        if size > MAX_SCHEMA_BYTES:
            raise ValueError(f"is {size} bytes as JSON; the most is {MAX_SCHEMA_BYTES}")
        problems = check_schema(schema)
        if problems:
            raise ValueError(f"is not a valid JSON Schema: {'; '.join(problems[:3])}")
        return schema


class JsonFieldSpec(_Evaluator):
    """The output's field at `path` equals the expected value's field at the same path (or the
    expected value itself, when it is not a container the path walks into)."""

    type: Literal["json_field"]
    path: FieldPath


class NumericSpec(_Evaluator):
    """The output (or its field at `path`) is a number within `tolerance` of the expected one;
    with `relative`, the tolerance is a fraction of |expected|."""

    type: Literal["numeric"]
    path: FieldPath | None = None
    tolerance: Amount = 0.0
    relative: bool = False


class LatencySpec(_Evaluator):
    """The run took at most `max_ms` milliseconds."""

    type: Literal["latency"]
    max_ms: Annotated[float, Field(gt=0, allow_inf_nan=False)]


class CostSpec(_Evaluator):
    """The run cost at most `max_usd`; an unknown cost fails."""

    type: Literal["cost"]
    max_usd: Amount


class JudgeSpec(_Evaluator):
    """A managed prompt grades the output: it is given `inputs`, `output` and `expected` and
    answers `{"score": 0..1, "reason": "..."}`. Its threshold defaults to 0.5, not 1: a judge's
    score is a grade, and demanding a perfect grade by default would fail most cases."""

    type: Literal["judge"]
    threshold: Threshold = 0.5
    prompt: Annotated[str, StringConstraints(pattern=NAME_PATTERN)]
    label: Annotated[str, StringConstraints(pattern=LABEL_PATTERN)] | None = None
    version: VersionNumber | None = None

    @field_validator("version")
    @classmethod
    def _not_with_label(cls, version: int | None, info: ValidationInfo) -> int | None:
        if version is not None and info.data.get("label") is not None:
            raise ValueError("give a `label` or a `version`, not both")
        return version

    @property
    def selector(self) -> tuple[str, str | int]:
        """How the judge prompt's version is chosen: the version, else the label."""
        if self.version is not None:
            return ("version", self.version)
        return ("label", self.label or DEFAULT_JUDGE_LABEL)


EvaluatorSpec = Annotated[
    ExactSpec
    | ContainsSpec
    | RegexSpec
    | JsonSchemaSpec
    | JsonFieldSpec
    | NumericSpec
    | LatencySpec
    | CostSpec
    | JudgeSpec,
    Field(discriminator="type"),
]
# The evaluators of one eval or gate, as a request body field.
EvaluatorSpecs = Annotated[list[EvaluatorSpec], Field(min_length=1, max_length=MAX_EVALUATORS)]
