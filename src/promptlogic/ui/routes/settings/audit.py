"""The audit log: the tenant's recorded changes, newest first, filtered by action and target."""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import Response

from promptlogic.audit import service as audit
from promptlogic.db.engine import SessionDep
from promptlogic.ui.routes.settings.common import PAGE_SIZE, Cursor, Filter
from promptlogic.ui.web import Admin, page

router = APIRouter()

# Offered as suggestions in the action filter; any action may still be typed.
KNOWN_ACTIONS = (
    "api_key.create",
    "api_key.revoke",
    "membership.create",
    "membership.delete",
    "membership.update",
    "model_price.remove",
    "model_price.set",
    "prompt.archive",
    "prompt.create",
    "prompt.label.move",
    "prompt.update",
    "prompt.version.create",
    "provider.create",
    "provider.delete",
    "provider.update",
    "usage_limits.set",
)


@router.get("/settings/audit")
async def audit_log(
    request: Request,
    member: Admin,
    session: SessionDep,
    cursor: Cursor = None,
    action: Filter = "",
    target_type: Filter = "",
    target_id: Filter = "",
) -> Response:
    filters = {
        "action": action.strip(),
        "target_type": target_type.strip(),
        "target_id": target_id.strip(),
    }
    events, next_cursor = await audit.list_events(
        session,
        tenant_id=member.tenant.id,
        limit=PAGE_SIZE,
        cursor=cursor,
        **{name: value or None for name, value in filters.items()},
    )
    context = {
        "events": events,
        "next_cursor": next_cursor,
        "filters": filters,
        "known_actions": KNOWN_ACTIONS,
    }
    return page(request, "settings/audit.html", context)
