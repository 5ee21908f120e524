"""Eval runs in the browser: the list (with a chart of pass rate and cost per version over time
for a prompt), starting an eval, an eval's progress and per-case results, cancelling it, and
comparing two evals case by case.

Everything goes through `evals.service`, as `/v1/evals` does; the work itself runs on the job
queue (`promptlogic worker`). While an eval runs its page polls a small JSON endpoint (from a
static script: the CSP allows no inline one) and reloads when it ends; without JavaScript a
`<noscript>` refresh does the same. The chart is SVG drawn here, styled through classes.
"""

from __future__ import annotations

import json
import math
import uuid
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass
from decimal import Decimal
from typing import Annotated, Any, TypeVar
from urllib.parse import urlencode

from fastapi import APIRouter, Depends, Form, Query, Request
from fastapi.responses import JSONResponse, Response
from pydantic import TypeAdapter, ValidationError
from sqlalchemy.ext.asyncio import AsyncSession

from promptlogic.db.engine import SessionDep
from promptlogic.errors import Conflict, Forbidden, Problem
from promptlogic.evals import service
from promptlogic.evals.eval_schemas import (
    DEFAULT_CONCURRENCY,
    MAX_CONCURRENCY,
    MAX_REPEAT,
    EvalCreate,
)
from promptlogic.evals.models import DatasetCase, EvalResult, EvalRun
from promptlogic.evals.runner import FINISHED
from promptlogic.evals.specs import EvaluatorSpec
from promptlogic.prompts.models import Prompt
from promptlogic.prompts.schemas import NAME_PATTERN
from promptlogic.tenancy.roles import Scope
from promptlogic.ui.routes.datasets import dataset_choices, short
from promptlogic.ui.sessions import SignedIn
from promptlogic.ui.web import Reader, Runner, flash, page, redirect

router = APIRouter()

PAGE_SIZE = 50
CHART_SOURCE = 200  # the newest evals of a prompt the charts are drawn from
CHART_POINTS = 40  # finished evals per chart
CHART_DATASETS = 4  # charts per prompt (one per dataset)
PICKER_SIZE = 100  # evals offered in a comparison's selects
COMPARED_ROWS = 500  # cases listed on the comparison page
DEFAULT_EVALUATORS = '[{"type": "exact"}]'
PromptQuery = Annotated[str | None, Query(pattern=NAME_PATTERN)]
Cursor = Annotated[str | None, Query(max_length=500)]
_SPEC: TypeAdapter[Any] = TypeAdapter(EvaluatorSpec)
T = TypeVar("T")


async def _evaluator(member: Runner) -> SignedIn:
    """Starting or cancelling an eval runs prompts and reads a dataset: `run` and `read`."""
    if not member.can(Scope.READ):
        raise Forbidden(f"Your role ({member.role}) cannot read datasets, so cannot run evals.")
    return member


Evaluator = Annotated[SignedIn, Depends(_evaluator)]


# How figures read


def percent(value: float | None) -> str:
    """A rate as a percentage to a tenth (66.7%), without a trailing `.0` (60%)."""
    return "—" if value is None else f"{value:.1%}".replace(".0%", "%")


def money(value: float | Decimal | None) -> str:
    """Dollars as exact as they were computed, without trailing zeros."""
    if value is None:
        return "—"
    text = f"{float(value):.6f}".rstrip("0").rstrip(".")
    return f"${text}"


def delta(value: float | None, kind: str = "rate") -> str:
    """A signed difference: points of a rate, a score, or dollars."""
    if value is None:
        return "—"
    sign = "+" if value > 0 else "\u2212" if value < 0 else "±"  # a minus sign
    size = abs(value)
    if kind == "rate":
        return f"{sign}{size * 100:.1f} points"
    if kind == "cost":
        return f"{sign}{money(size)}"
    return f"{sign}{size:.4f}".rstrip("0").rstrip(".")


def evaluator_text(spec: dict[str, Any]) -> str:
    """An evaluator as a reader scans it: its type and the parameters not left at default."""
    try:
        model = _SPEC.validate_python(spec)
    except ValidationError:
        return json.dumps(spec, ensure_ascii=False)
    shown = model.model_dump(mode="json", exclude_defaults=True, by_alias=True)
    kind = shown.pop("type", spec.get("type", "?"))
    params = " · ".join(
        f"{name}: {json.dumps(value, ensure_ascii=False)}" for name, value in shown.items()
    )
    return f"{kind} · {params}" if params else str(kind)


FORMATTERS = {
    "percent": percent,
    "money": money,
    "delta": delta,
    "evaluator_text": evaluator_text,
    "short": short,
}


# The chart


@dataclass(frozen=True, slots=True)
class ChartPoint:
    x: float
    y: float
    cost_y: float | None
    run: EvalRun
    pass_rate: float
    cost: float | None
    labelled: bool  # its version is written under the axis (not when it would crowd)


@dataclass(frozen=True, slots=True)
class Chart:
    """One dataset's finished evals of a prompt, oldest first, as SVG coordinates."""

    dataset: str
    revisions: tuple[int, int]
    width: int
    height: int
    left: int
    right: int
    top: int
    bottom: int
    points: list[ChartPoint]
    pass_line: str
    cost_line: str
    rate_ticks: list[tuple[float, str]]
    cost_ticks: list[tuple[float, str]]


WIDTH, HEIGHT = 760, 260
MARGIN_LEFT, MARGIN_RIGHT, MARGIN_TOP, MARGIN_BOTTOM = 52, 76, 16, 44
LABEL_SPACING = 28  # the least room between two versions written under the axis


def _nice_ceiling(value: float) -> float:
    """A round top for an axis: the least of 1, 2, 2.5 or 5 times a power of ten >= `value`."""
    scale = 10 ** math.floor(math.log10(value))
    for step in (1, 2, 2.5, 5):
        if value <= step * scale * (1 + 1e-9):
            return step * scale
    return 10 * scale


def build_chart(dataset: str, runs: list[EvalRun]) -> Chart:
    """Points for `runs` (finished, with a pass rate) spaced evenly in the order they finished:
    the pass rate on the left axis (0 to 100%), the cost on the right (0 to a round top)."""
    ordered = sorted(runs, key=lambda run: (run.finished_at or run.created_at, run.created_at))
    ordered = ordered[-CHART_POINTS:]
    plot_width = WIDTH - MARGIN_LEFT - MARGIN_RIGHT
    plot_height = HEIGHT - MARGIN_TOP - MARGIN_BOTTOM
    bottom = MARGIN_TOP + plot_height
    costs = [(run.summary or {}).get("cost") for run in ordered]
    known = [float(cost) for cost in costs if cost is not None]
    top_cost = _nice_ceiling(max(known)) if known and max(known) > 0 else None
    step = plot_width / len(ordered)
    points: list[ChartPoint] = []
    last_label = -LABEL_SPACING
    for index, (run, cost) in enumerate(zip(ordered, costs, strict=True)):
        rate = float((run.summary or {})["pass_rate"])
        cost_y = None
        if cost is not None and top_cost is not None:
            cost_y = round(bottom - plot_height * float(cost) / top_cost, 1)
        x = round(MARGIN_LEFT + step * (index + 0.5), 1)
        y = round(bottom - plot_height * rate, 1)
        # A version is written where it starts, if there is room since the last one written.
        new_version = not points or points[-1].run.version != run.version
        labelled = new_version and x - last_label >= LABEL_SPACING
        last_label = x if labelled else last_label
        known_cost = None if cost is None else float(cost)
        points.append(ChartPoint(x, y, cost_y, run, rate, known_cost, labelled))
    rate_ticks = [(round(bottom - plot_height * f, 1), f"{f:.0%}") for f in (0, 0.25, 0.5, 0.75, 1)]
    cost_ticks = []
    if top_cost is not None:
        cost_ticks = [
            (round(bottom - plot_height * f, 1), money(top_cost * f)) for f in (0, 0.5, 1)
        ]
    return Chart(
        dataset=dataset,
        revisions=(
            min(run.dataset_revision for run in ordered),
            max(run.dataset_revision for run in ordered),
        ),
        width=WIDTH,
        height=HEIGHT,
        left=MARGIN_LEFT,
        right=WIDTH - MARGIN_RIGHT,
        top=MARGIN_TOP,
        bottom=bottom,
        points=points,
        pass_line=" ".join(f"{p.x},{p.y}" for p in points),
        cost_line=" ".join(f"{p.x},{p.cost_y}" for p in points if p.cost_y is not None),
        rate_ticks=rate_ticks,
        cost_ticks=cost_ticks,
    )


def charts_of(runs: Iterable[EvalRun]) -> list[Chart]:
    """A chart per dataset of the finished evals in `runs`, the most recently used first."""
    by_dataset: dict[str, list[EvalRun]] = defaultdict(list)
    for run in runs:  # newest first
        if run.status == "succeeded" and (run.summary or {}).get("pass_rate") is not None:
            by_dataset[run.dataset_name].append(run)
    names = list(by_dataset)[:CHART_DATASETS]
    return [build_chart(name, by_dataset[name]) for name in names]


# Reading


async def _prompt_names(session: AsyncSession, tenant_id: uuid.UUID) -> list[str]:
    rows = await session.scalars(
        Prompt.for_tenant(tenant_id, Prompt.name)
        .where(Prompt.kind == "chat", Prompt.archived.is_(False))
        .order_by(Prompt.name)
        .limit(500)
    )
    return list(rows)


async def cases_of(
    session: AsyncSession, tenant_id: uuid.UUID, run: EvalRun, case_ids: Iterable[uuid.UUID]
) -> dict[uuid.UUID, DatasetCase]:
    """The cases an eval ran, as they were at its dataset revision (none once it is deleted)."""
    wanted = list(set(case_ids))
    if run.dataset_id is None or not wanted:
        return {}
    rows = await session.scalars(
        DatasetCase.for_tenant(tenant_id).where(
            DatasetCase.dataset_id == run.dataset_id,
            DatasetCase.at_revision(run.dataset_revision),
            DatasetCase.case_id.in_(wanted),
        )
    )
    return {row.case_id: row for row in rows}


async def _first_attempts(
    session: AsyncSession, tenant_id: uuid.UUID, eval_id: uuid.UUID, case_ids: list[uuid.UUID]
) -> dict[uuid.UUID, EvalResult]:
    """Each case's first attempt in an eval: the output a comparison shows."""
    if not case_ids:
        return {}
    rows = await session.scalars(
        EvalResult.for_tenant(tenant_id).where(
            EvalResult.eval_id == eval_id,
            EvalResult.attempt == 0,
            EvalResult.case_id.in_(case_ids),
        )
    )
    return {row.case_id: row for row in rows}


async def _recent(
    session: AsyncSession, tenant_id: uuid.UUID, prompt: str | None = None
) -> list[EvalRun]:
    """Evals to pick from for a comparison: the newest that have results."""
    runs, _ = await service.list_evals(
        session, tenant_id=tenant_id, limit=PICKER_SIZE, prompt=prompt
    )
    return [run for run in runs if run.completed > 0]


# The list and the charts


@router.get("/evals")
async def evals_list(
    request: Request,
    member: Reader,
    session: SessionDep,
    prompt: PromptQuery = None,
    cursor: Cursor = None,
) -> Response:
    """The tenant's evals, newest first; for one prompt, its charts and a comparison form."""
    runs, next_cursor = await service.list_evals(
        session, tenant_id=member.tenant.id, limit=PAGE_SIZE, cursor=cursor, prompt=prompt
    )
    charts: list[Chart] = []
    pickable: list[EvalRun] = []
    if prompt is not None:
        source, _ = await service.list_evals(
            session, tenant_id=member.tenant.id, limit=CHART_SOURCE, prompt=prompt
        )
        charts = charts_of(source)
        pickable = [run for run in source if run.completed > 0][:PICKER_SIZE]
    context = {
        "runs": runs,
        "next_cursor": next_cursor,
        "prompt": prompt,
        "prompt_names": await _prompt_names(session, member.tenant.id),
        "charts": charts,
        "pickable": pickable,
        **FORMATTERS,
    }
    return page(request, "evals/list.html", context)


# Starting one


def _form_values(**given: str) -> dict[str, str]:
    defaults = {
        "prompt": "",
        "target": "production",
        "dataset": "",
        "evaluators": DEFAULT_EVALUATORS,
        "repeat": "1",
        "concurrency": str(DEFAULT_CONCURRENCY),
    }
    return {**defaults, **{name: value for name, value in given.items() if value}}


async def _new_page(
    request: Request,
    member: SignedIn,
    session: AsyncSession,
    values: dict[str, str],
    errors: dict[str, str] | None = None,
    status_code: int = 200,
) -> Response:
    context = {
        "values": values,
        "errors": errors or {},
        "prompt_names": await _prompt_names(session, member.tenant.id),
        "dataset_names": await dataset_choices(session, member.tenant.id),
        "max_repeat": MAX_REPEAT,
        "max_concurrency": MAX_CONCURRENCY,
    }
    return page(request, "evals/new.html", context, status_code=status_code)


@router.get("/evals-new")
async def new_eval(
    request: Request,
    member: Evaluator,
    session: SessionDep,
    prompt: Annotated[str, Query(max_length=100)] = "",
    target: Annotated[str, Query(max_length=50)] = "",
    dataset: Annotated[str, Query(max_length=100)] = "",
    evaluators: Annotated[str, Query(max_length=100_000)] = "",
) -> Response:
    """The form to start an eval, filled in from the query (a gate's missing eval links here)."""
    values = _form_values(prompt=prompt, target=target, dataset=dataset, evaluators=evaluators)
    return await _new_page(request, member, session, values)


def _whole_number(errors: dict[str, str], name: str, raw: str) -> int:
    text = raw.strip()
    if not text.isdigit() or len(text) > 6:
        errors[name] = "must be a whole number"
        return 1
    return int(text)


def _create_errors(exc: ValidationError) -> dict[str, str]:
    """Pydantic's errors as the form's fields: a version or label is the `target`."""
    errors: dict[str, str] = {}
    for error in exc.errors():
        location = [str(part) for part in error["loc"]]
        field = location[0] if location else "form"
        field = "target" if field in ("version", "label") else field
        where = ".".join(location[1:])
        message = f"{where}: {error['msg']}" if where and field == "evaluators" else error["msg"]
        errors.setdefault(field if field in _form_values() else "form", message)
    return errors


def _problem_errors(problem: Problem) -> dict[str, str]:
    """A service's problem as the form's fields (`body.dataset` → `dataset`), else on top."""
    errors: dict[str, str] = {}
    for error in problem.errors or []:
        field = error.get("field", "").removeprefix("body.").split(".")[0]
        errors.setdefault(field if field in _form_values() else "form", error["message"])
    return errors or {"form": problem.detail}


@router.post("/evals-new")
async def start_eval(
    request: Request,
    member: Evaluator,
    session: SessionDep,
    prompt: Annotated[str, Form(max_length=200)] = "",
    target: Annotated[str, Form(max_length=100)] = "",
    dataset: Annotated[str, Form(max_length=200)] = "",
    evaluators: Annotated[str, Form(max_length=100_000)] = "",
    repeat: Annotated[str, Form(max_length=20)] = "1",
    concurrency: Annotated[str, Form(max_length=20)] = "",
) -> Response:
    """Queue an eval of a version (a number) or a label (resolved now) on a dataset's current
    revision; on to its page, which follows its progress."""
    values = {
        "prompt": prompt,
        "target": target,
        "dataset": dataset,
        "evaluators": evaluators,
        "repeat": repeat,
        "concurrency": concurrency or str(DEFAULT_CONCURRENCY),
    }
    errors: dict[str, str] = {}
    specs: Any = None
    try:
        specs = json.loads(evaluators or "null")
    except json.JSONDecodeError as exc:
        errors["evaluators"] = f"not valid JSON: {exc.msg} (line {exc.lineno})"
    if specs is not None and not isinstance(specs, list):
        errors["evaluators"] = 'must be a JSON list of evaluators: [{"type": "exact"}, …]'
    chosen = target.strip()
    selector: dict[str, Any] = {}
    if chosen.isdigit():
        if len(chosen) > 9:
            errors["target"] = "is not a version of the prompt"
        else:
            selector["version"] = int(chosen)
    elif chosen:
        selector["label"] = chosen
    body = {
        "prompt": prompt.strip(),
        "dataset": dataset.strip(),
        "evaluators": specs,
        "repeat": _whole_number(errors, "repeat", repeat),
        "concurrency": _whole_number(errors, "concurrency", values["concurrency"]),
        **selector,
    }
    if errors:
        return await _new_page(request, member, session, values, errors, 422)
    try:
        created = await service.create_eval(session, member.principal, EvalCreate(**body))
    except ValidationError as exc:
        return await _new_page(request, member, session, values, _create_errors(exc), 422)
    except Problem as problem:
        await session.rollback()
        status = 422 if problem.status == 404 else problem.status
        return await _new_page(request, member, session, values, _problem_errors(problem), status)
    message = f"Queued the eval: {created.total} case runs. A worker runs it."
    return flash(request, redirect(f"/ui/evals/{created.id}"), message)


# One eval


@router.get("/evals/{eval_id}")
async def eval_page(
    request: Request,
    member: Reader,
    session: SessionDep,
    eval_id: uuid.UUID,
    cursor: Cursor = None,
) -> Response:
    """Status and progress, the summary once finished, and the per-case results."""
    tenant_id = member.tenant.id
    run = await service.get_eval(session, tenant_id=tenant_id, eval_id=eval_id)
    results, next_cursor = await service.list_results(
        session, tenant_id=tenant_id, eval_id=eval_id, limit=PAGE_SIZE, cursor=cursor
    )
    others = [
        other
        for other in await _recent(session, tenant_id, run.prompt)
        if other.id != run.id and other.dataset_id == run.dataset_id
    ]
    context = {
        "run": run,
        "results": results,
        "next_cursor": next_cursor,
        "cases": await cases_of(session, tenant_id, run, (r.case_id for r in results)),
        "finished": run.status in FINISHED,
        "others": others,
        **FORMATTERS,
    }
    return page(request, "evals/eval.html", context)


@router.get("/evals/{eval_id}/progress")
async def eval_progress(member: Reader, session: SessionDep, eval_id: uuid.UUID) -> Response:
    """The eval's status and progress, for the page's poll."""
    run = await service.get_eval(session, tenant_id=member.tenant.id, eval_id=eval_id)
    return JSONResponse(
        {
            "status": run.status,
            "completed": run.completed,
            "total": run.total,
            "finished": run.status in FINISHED,
        }
    )


@router.post("/evals/{eval_id}/cancel")
async def cancel_eval(
    request: Request, member: Evaluator, session: SessionDep, eval_id: uuid.UUID
) -> Response:
    """Stop the eval: cases in flight finish, no new one starts."""
    target = f"/ui/evals/{eval_id}"
    try:
        await service.cancel_eval(session, principal=member.principal, eval_id=eval_id)
    except Conflict as problem:
        await session.rollback()
        return flash(request, redirect(target), problem.detail, "error")
    return flash(request, redirect(target), "Cancelled the eval: the cases in flight finish.")


# Comparing two


def _by_text(found: dict[uuid.UUID, T]) -> dict[str, T]:
    """Keyed as the comparison names cases: by the id's text."""
    return {str(case_id): value for case_id, value in found.items()}


def _picker_url(base: uuid.UUID | None, head: uuid.UUID | None, prompt: str | None) -> str:
    query = {k: str(v) for k, v in (("base", base), ("head", head), ("prompt", prompt)) if v}
    return "/ui/evals-compare" + (f"?{urlencode(query)}" if query else "")


@router.get("/evals-compare")
async def compare_page(
    request: Request,
    member: Reader,
    session: SessionDep,
    base: Annotated[uuid.UUID | None, Query()] = None,
    head: Annotated[uuid.UUID | None, Query()] = None,
    prompt: PromptQuery = None,
) -> Response:
    """Two evals side by side: per case improved, regressed or the same (regressions first),
    and the summary deltas; without both, the form to pick them."""
    tenant_id = member.tenant.id
    context: dict[str, Any] = {
        "base_id": base,
        "head_id": head,
        "prompt": prompt,
        "pickable": await _recent(session, tenant_id, prompt),
        "compared": None,
        **FORMATTERS,
    }
    if base is not None and head is not None:
        compared = await service.compare_evals(
            session, tenant_id=tenant_id, base_id=base, head_id=head
        )
        base_run = await service.get_eval(session, tenant_id=tenant_id, eval_id=base)
        head_run = await service.get_eval(session, tenant_id=tenant_id, eval_id=head)
        order = {"regressed": 0, "improved": 1, "same": 2}
        rows = sorted(compared["cases"], key=lambda case: order[case["change"]])
        shown = rows[:COMPARED_ROWS]
        ids = [uuid.UUID(case["case_id"]) for case in shown]
        context.update(
            compared=compared,
            base_run=base_run,
            head_run=head_run,
            rows=shown,
            hidden_rows=len(rows) - len(shown),
            cases=_by_text(await cases_of(session, tenant_id, head_run, ids)),
            base_outputs=_by_text(await _first_attempts(session, tenant_id, base, ids)),
            head_outputs=_by_text(await _first_attempts(session, tenant_id, head, ids)),
            swap_url=_picker_url(head, base, prompt),
        )
        if prompt is None:
            context["pickable"] = await _recent(session, tenant_id, head_run.prompt)
    return page(request, "evals/compare.html", context)
