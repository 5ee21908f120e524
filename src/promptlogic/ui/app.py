"""The UI as its own ASGI app mounted at `/ui`: its own error pages (HTML, not problem+json,
except for the page scripts' JSON calls), its own security headers, the API's state."""

from __future__ import annotations

import logging
from pathlib import Path

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import Response
from fastapi.staticfiles import StaticFiles
from starlette.datastructures import State
from starlette.exceptions import HTTPException as StarletteHTTPException

from promptlogic.errors import Problem, problem_response
from promptlogic.settings import Settings
from promptlogic.ui.routes import (
    account,
    context,
    datasets,
    editor,
    evals,
    knowledge,
    playground,
    prompts,
    rules,
    runs,
    settings,
)
from promptlogic.ui.sessions import CookieSigner
from promptlogic.ui.web import NotSignedIn, SecurityHeaders, login_redirect, page, wants_json

log = logging.getLogger(__name__)

STATIC_DIR = Path(__file__).parent / "static"


def create_ui(state: State, app_settings: Settings) -> FastAPI:
    """The UI app, sharing `state` (engine, caches, renderer, recorder) with the API app."""
    ui = FastAPI(docs_url=None, redoc_url=None, openapi_url=None)
    ui.state = state
    state.cookie_signer = CookieSigner(app_settings.resolved_secret_key())
    ui.add_middleware(SecurityHeaders)
    ui.mount("/static", StaticFiles(directory=STATIC_DIR), name="static")
    modules = (
        account,
        prompts,
        editor,
        playground,
        runs,
        evals,
        datasets,
        context,
        knowledge,
        rules,
        settings,
    )
    for module in modules:
        ui.include_router(module.router)
    ui.add_exception_handler(NotSignedIn, _not_signed_in)
    ui.add_exception_handler(Problem, _problem)
    ui.add_exception_handler(RequestValidationError, _invalid)
    ui.add_exception_handler(StarletteHTTPException, _http)
    ui.add_exception_handler(Exception, _unexpected)
    return ui


async def _not_signed_in(request: Request, exc: Exception) -> Response:
    if wants_json(request) or request.method != "GET":
        return problem_response(401, "Sign in again: your session has ended.")
    return login_redirect(request)


def _error_page(request: Request, status: int, title: str, detail: str) -> Response:
    context = {"status": status, "title": title, "detail": detail}
    return page(request, "error.html", context, status_code=status)


async def _problem(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, Problem)
    if wants_json(request):
        return problem_response(
            exc.status, exc.detail, slug=exc.slug, errors=exc.errors, headers=exc.headers
        )
    titles = {403: "Not allowed", 404: "Not found", 409: "Conflict"}
    return _error_page(request, exc.status, titles.get(exc.status, "Cannot do that"), exc.detail)


async def _invalid(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, RequestValidationError)
    fields = [
        {"field": ".".join(str(part) for part in error["loc"]), "message": error["msg"]}
        for error in exc.errors()
    ]
    if wants_json(request):
        return problem_response(422, "The request is not valid.", errors=fields)
    # A malformed address (a version that is not a number) is a page that does not exist.
    if any(field["field"].startswith("path") for field in fields):
        return _error_page(request, 404, "Not found", "There is no such page.")
    detail = "; ".join(f"{field['field']}: {field['message']}" for field in fields)
    return _error_page(request, 422, "Cannot do that", detail)


async def _http(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, StarletteHTTPException)
    if wants_json(request):
        return problem_response(exc.status_code, str(exc.detail))
    if exc.status_code == 404:
        return _error_page(request, 404, "Not found", "There is no such page.")
    return _error_page(request, exc.status_code, "Cannot do that", str(exc.detail))


async def _unexpected(request: Request, exc: Exception) -> Response:
    log.exception("unexpected error on %s %s", request.method, request.url.path, exc_info=exc)
    if wants_json(request):
        return problem_response(500, "Something went wrong on our side; it has been logged.")
    return _error_page(request, 500, "Something went wrong", "It has been logged.")
