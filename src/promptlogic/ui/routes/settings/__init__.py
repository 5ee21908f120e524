"""Settings, for admins only: API keys, provider connections, model prices, usage limits,
members and roles, and the audit log, one module per section.

Each form is a thin layer over the API's services, validated by the API's own body models, so
the browser and the API accept exactly the same values. Secrets go one way: a new API key is
shown once, in the response that created it; a provider's key and header values are never
rendered back, not even into a form that failed.

`router` gathers the sections' routes, so the app includes the settings as one router.
"""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import Response

from promptlogic.ui.routes.settings import api_keys, audit, limits, members, prices, providers
from promptlogic.ui.web import Admin, page

router = APIRouter()


@router.get("/settings")
async def settings_index(request: Request, member: Admin) -> Response:
    return page(request, "settings/index.html")


for section in (api_keys, providers, prices, limits, members, audit):
    router.include_router(section.router)
