"""Prompt templates in a sandbox: analysis at save time, rendering in worker processes
(or in the web process, for what a worker found straight-line: see `inline`).

    renderer = Renderer()                      # the app's lifespan: await renderer.start()
    info = await renderer.check(source)        # save time: TemplateInfo(variables, includes)
    texts = await renderer.render(             # run time: one text per entry template
        [system, user], includes={"policy": policy_source}, variables={"name": "Ada"}
    )
    problems = validate_variables(schema, variables)     # [{"field", "message"}]
    await renderer.close()                     # the lifespan's way out

Every failure is a `RenderError` (a 422 naming the template, line, variable or limit); an
unavailable pool is a `RendererUnavailable` (503). Bounds are a `RenderLimits`.

Names load on first use (PEP 562): the render workers import this package, and loading the
web side (FastAPI, jsonschema) in every worker would double its start time and its memory.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from promptlogic.rendering.analysis import TemplateInfo
    from promptlogic.rendering.errors import (
        LimitExceeded,
        RenderError,
        RendererUnavailable,
        SandboxViolation,
        TemplateProblem,
        UndefinedVariable,
    )
    from promptlogic.rendering.limits import DEFAULT_LIMITS, RenderLimits
    from promptlogic.rendering.schema import check_schema, default_schema, validate_variables
    from promptlogic.rendering.service import Renderer, analyze
    from promptlogic.rendering.shares import sharing

_EXPORTS = {
    "DEFAULT_LIMITS": "limits",
    "LimitExceeded": "errors",
    "RenderError": "errors",
    "RenderLimits": "limits",
    "Renderer": "service",
    "RendererUnavailable": "errors",
    "SandboxViolation": "errors",
    "TemplateInfo": "analysis",
    "TemplateProblem": "errors",
    "UndefinedVariable": "errors",
    "analyze": "service",
    "check_schema": "schema",
    "default_schema": "schema",
    "validate_variables": "schema",
    "sharing": "shares",
}

__all__ = [
    "DEFAULT_LIMITS",
    "LimitExceeded",
    "RenderError",
    "RenderLimits",
    "Renderer",
    "RendererUnavailable",
    "SandboxViolation",
    "TemplateInfo",
    "TemplateProblem",
    "UndefinedVariable",
    "analyze",
    "check_schema",
    "default_schema",
    "sharing",
    "validate_variables",
]


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(f"{__name__}.{module}"), name)
    globals()[name] = value
    return value
