"""Model prices: the model catalog, with the tenant's own per-million-token prices set over
the catalog's, or removed so the catalog's apply again."""

from __future__ import annotations

import re
from typing import Annotated

from fastapi import APIRouter, Query, Request
from fastapi.responses import Response
from pydantic import ValidationError
from sqlalchemy.ext.asyncio import AsyncSession

from promptlogic.db.engine import SessionDep
from promptlogic.errors import InvalidInput, Problem
from promptlogic.providers import catalog
from promptlogic.providers.schemas import MODEL_PATTERN, PriceIn
from promptlogic.ui.routes.settings.common import Cursor, Errors, Filter, Text, failed, usd
from promptlogic.ui.sessions import SignedIn
from promptlogic.ui.web import Admin, flash, page, redirect

router = APIRouter()

MODEL_PAGE_SIZE = 100


async def _models_page(
    request: Request,
    member: SignedIn,
    session: AsyncSession,
    *,
    cursor: str | None,
    values: dict[str, str],
    errors: Errors,
    status: int = 200,
) -> Response:
    entries, next_cursor = await catalog.list_models(
        session, tenant_id=member.tenant.id, limit=MODEL_PAGE_SIZE, cursor=cursor
    )
    context = {
        "entries": entries,
        "next_cursor": next_cursor,
        "values": values,
        "errors": errors,
        "usd": usd,
    }
    return page(request, "settings/models.html", context, status_code=status)


@router.get("/settings/models")
async def models(
    request: Request,
    member: Admin,
    session: SessionDep,
    cursor: Cursor = None,
    model: Filter = "",
    input_price: Annotated[str, Query(alias="input", max_length=50)] = "",
    output_price: Annotated[str, Query(alias="output", max_length=50)] = "",
) -> Response:
    """The catalog; `model`, `input` and `output` fill the price form (the rows' "Set price")."""
    values = {"model": model, "input_per_million": input_price, "output_per_million": output_price}
    return await _models_page(request, member, session, cursor=cursor, values=values, errors={})


def _model_name(text: str) -> str:
    name = text.strip()
    if not re.fullmatch(MODEL_PATTERN, name):
        raise InvalidInput.field(
            "model", "use up to 200 letters, digits and . _ : / @ + -, starting with a letter"
        )
    return name


@router.post("/settings/models")
async def set_model_price(
    request: Request,
    member: Admin,
    session: SessionDep,
    model: Text = "",
    input_per_million: Text = "",
    output_per_million: Text = "",
) -> Response:
    values = {
        "model": model,
        "input_per_million": input_per_million,
        "output_per_million": output_per_million,
    }
    try:
        body = PriceIn.model_validate(
            {
                "input_per_million": input_per_million.strip(),
                "output_per_million": output_per_million.strip(),
            }
        )
        entry = await catalog.set_price(
            session,
            tenant_id=member.tenant.id,
            model=_model_name(model),
            input_per_million=body.input_per_million,
            output_per_million=body.output_per_million,
            actor=member.actor,
        )
    except (ValidationError, Problem) as exc:
        errors, status = await failed(session, exc, "model")
        return await _models_page(
            request, member, session, cursor=None, values=values, errors=errors, status=status
        )
    message = (
        f"Priced {entry.name} at ${entry.input_per_million} in and "
        f"${entry.output_per_million} out per million tokens."
    )
    return flash(request, redirect("/ui/settings/models"), message)


@router.post("/settings/models/remove")
async def remove_model_price(
    request: Request, member: Admin, session: SessionDep, model: Text = ""
) -> Response:
    await catalog.remove_price(
        session, tenant_id=member.tenant.id, model=_model_name(model), actor=member.actor
    )
    message = f"Removed your price for {model.strip()}; the catalog's applies again, if any."
    return flash(request, redirect("/ui/settings/models"), message)
