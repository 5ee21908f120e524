"""Liveness and readiness probes."""

from __future__ import annotations

import asyncio
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse

from promptlogic.db.migrations import current_revision
from promptlogic.errors import problem_response

router = APIRouter(tags=["health"])


@router.get("/healthz")
async def healthz() -> dict[str, str]:
    """The process is up. Says nothing about the database."""
    return {"status": "ok"}


@router.get("/readyz", response_model=None)
async def readyz(request: Request) -> JSONResponse | dict[str, Any]:
    """Ready to serve: database reachable, schema at head, change listener connected."""
    state = request.app.state
    checks: dict[str, str] = {}
    try:
        async with asyncio.timeout(state.settings.db_timeout_seconds):
            async with state.engine.connect() as connection:
                revision = await connection.run_sync(current_revision)
        checks["database"] = "ok"
        checks["migrations"] = "ok" if revision == state.head_revision else "behind head"
    except Exception:
        checks["database"] = "unreachable"
        checks["migrations"] = "unknown"
    checks["change_listener"] = "ok" if state.listener.connected else "disconnected"
    if all(value == "ok" for value in checks.values()):
        return {"status": "ready", "checks": checks}
    failing = ", ".join(f"{name} {value}" for name, value in checks.items() if value != "ok")
    return problem_response(
        503, f"Not ready: {failing}.", slug="not-ready", extra={"checks": checks}
    )
