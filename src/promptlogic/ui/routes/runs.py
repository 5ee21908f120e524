"""The runs pages: the tenant's runs with filters, and one run in full.

Both read through the same service as `/v1/runs`, scoped to the member's tenant, so another
tenant's run is simply not found. The list's filters come from a plain GET form: a value that
does not parse re-renders the form with that field named (422) instead of an error page.
"""

from __future__ import annotations

import re
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any
from urllib.parse import urlencode

from fastapi import APIRouter, Request
from fastapi.responses import Response
from sqlalchemy.ext.asyncio import AsyncSession

from promptlogic.db.engine import SessionDep
from promptlogic.errors import InvalidInput
from promptlogic.prompts.models import Prompt
from promptlogic.prompts.schemas import LABEL_PATTERN, NAME_PATTERN
from promptlogic.runs import service
from promptlogic.runs.models import STATUSES, Run
from promptlogic.runs.service import RunFilters
from promptlogic.ui.web import Reader, page

router = APIRouter()

PAGE_SIZE = 50
MAX_VALUE = 500  # no filter value is longer; a longer one is a mistake, not a query
FILTER_FIELDS = ("prompt", "version", "label", "status", "created_after", "created_before")
PRINCIPAL_KINDS = {"api_key": "API key", "user": "user"}


def cost_text(cost: Decimal | None) -> str:
    """A run's cost in dollars, as exact as it was computed (no rounding to cents)."""
    if cost is None:
        return "—"
    return f"${format(cost.normalize(), 'f')}"


def started_text(when: datetime) -> str:
    """A run's start in the list: UTC to the second (runs seconds apart tell apart)."""
    return when.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S")


def principal_kind(kind: str) -> str:
    return PRINCIPAL_KINDS.get(kind, kind)


def _when_value(raw: str) -> datetime:
    """A `datetime-local` value (or ISO 8601): without a time zone it is UTC."""
    when = datetime.fromisoformat(raw)
    return when.replace(tzinfo=UTC) if when.tzinfo is None else when.astimezone(UTC)


@dataclass
class ParsedFilters:
    filters: RunFilters
    errors: dict[str, str]


def parse_filters(values: dict[str, str]) -> ParsedFilters:
    """The filter form's values as `RunFilters`, and a message per field that does not parse."""
    errors: dict[str, str] = {}
    parsed: dict[str, Any] = {}
    for name in FILTER_FIELDS:
        raw = values[name]
        if not raw:
            continue
        if len(raw) > MAX_VALUE:
            errors[name] = "is too long"
        elif name == "prompt" and not re.fullmatch(NAME_PATTERN, raw):
            errors[name] = "is not a prompt name (lowercase letters, digits, . _ -)"
        elif name == "label" and not re.fullmatch(LABEL_PATTERN, raw):
            errors[name] = "is not a label name (lowercase letters, digits, . _ -)"
        elif name == "status" and raw not in STATUSES:
            errors[name] = f"must be one of {', '.join(STATUSES)}"
        elif name == "version":
            if not re.fullmatch(r"[0-9]{1,10}", raw) or not 1 <= int(raw) < 2**31:
                errors[name] = "must be a version number (1 or more)"
            else:
                parsed[name] = int(raw)
        elif name.startswith("created_"):
            try:
                parsed[name] = _when_value(raw)
            except (ValueError, OverflowError):
                errors[name] = "is not a date and time (YYYY-MM-DDTHH:MM, in UTC)"
        else:
            parsed[name] = raw
    return ParsedFilters(RunFilters(**parsed), errors)


async def _prompt_names(session: AsyncSession, tenant_id: uuid.UUID) -> list[str]:
    """Names to suggest in the prompt filter: the tenant's chat prompts."""
    rows = await session.scalars(
        Prompt.for_tenant(tenant_id, Prompt.name)
        .where(Prompt.kind == "chat")
        .order_by(Prompt.name)
        .limit(500)
    )
    return list(rows)


@router.get("/runs")
async def runs_list(request: Request, member: Reader, session: SessionDep) -> Response:
    query = request.query_params
    values = {name: query.get(name, "").strip() for name in FILTER_FIELDS}
    cursor = query.get("cursor") or None
    parsed = parse_filters(values)
    runs: list[Run] = []
    next_cursor = None
    if not parsed.errors:
        try:
            runs, next_cursor = await service.list_runs(
                session,
                tenant_id=member.tenant.id,
                filters=parsed.filters,
                limit=PAGE_SIZE,
                cursor=cursor[:MAX_VALUE] if cursor else None,
            )
        except InvalidInput as problem:  # a cursor that is not one of ours
            parsed.errors["cursor"] = (problem.errors or [{}])[0].get("message", problem.detail)
    filled = {name: value for name, value in values.items() if value}
    context = {
        "runs": runs,
        "values": values,
        "errors": parsed.errors,
        "filtered": bool(filled),
        "statuses": STATUSES,
        "prompt_names": await _prompt_names(session, member.tenant.id),
        "older_url": (
            f"/ui/runs?{urlencode({**filled, 'cursor': next_cursor})}" if next_cursor else None
        ),
        "cost_text": cost_text,
        "principal_kind": principal_kind,
        "started_text": started_text,
    }
    return page(request, "runs/list.html", context, status_code=422 if parsed.errors else 200)


def _messages_of(run: Run) -> list[dict[str, str]] | None:
    """The rendered messages as role and text, whatever shape a record holds."""
    if run.messages is None:
        return None
    shown = []
    for message in run.messages:
        if isinstance(message, dict):
            content = message.get("content", "")
            shown.append(
                {
                    "role": str(message.get("role", "")),
                    "content": content if isinstance(content, str) else str(content),
                }
            )
        else:
            shown.append({"role": "", "content": str(message)})
    return shown


def _versions_used_of(run: Run) -> list[dict[str, Any]]:
    return [
        used
        for used in run.versions_used
        if isinstance(used, dict)
        and isinstance(used.get("prompt"), str)
        and re.fullmatch(NAME_PATTERN, used["prompt"])
        and isinstance(used.get("version"), int)
    ]


@router.get("/runs/{run_id}")
async def run_page(
    request: Request, member: Reader, session: SessionDep, run_id: uuid.UUID
) -> Response:
    run = await service.get_run(session, tenant_id=member.tenant.id, run_id=run_id)
    prompt_kind = await session.scalar(
        Prompt.for_tenant(member.tenant.id, Prompt.kind).where(Prompt.name == run.prompt)
    )
    context = {
        "run": run,
        "messages": _messages_of(run),
        "versions_used": _versions_used_of(run),
        "arm": run.arm if run.arm and re.fullmatch(r"[0-9]{1,10}", run.arm) else None,
        "runnable": prompt_kind == "chat" and run.version is not None,
        "cost_text": cost_text,
        "principal_kind": principal_kind,
    }
    return page(request, "runs/detail.html", context)
