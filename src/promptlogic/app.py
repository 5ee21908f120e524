"""The FastAPI application: routers, error handlers, and the resources its lifespan owns."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from contextlib import AsyncExitStack, asynccontextmanager

from fastapi import FastAPI
from fastapi.middleware.cors import CORSMiddleware

from promptlogic import __version__
from promptlogic.audit.router import router as audit_router
from promptlogic.context.router import router as context_router
from promptlogic.db.engine import create_engine, create_sessionmaker
from promptlogic.db.migrations import ensure_at_head, head_revision
from promptlogic.db.notify import LISTENER_KEY, ChangeListener
from promptlogic.errors import install_error_handlers
from promptlogic.evals.dataset_router import router as datasets_router
from promptlogic.evals.gate_router import router as gates_router
from promptlogic.evals.router import router as evals_router
from promptlogic.gc_tuning import tune_for_serving
from promptlogic.health import router as health_router
from promptlogic.knowledge.router import router as knowledge_router
from promptlogic.limits import BodySizeLimit
from promptlogic.prompts.router import router as prompts_router
from promptlogic.providers.clients import ProviderRegistry
from promptlogic.providers.router import models_router
from promptlogic.providers.router import router as providers_router
from promptlogic.providers.secrets import SecretBox
from promptlogic.providers.service import PROVIDER_TOPIC
from promptlogic.rules.authoring_router import router as rules_authoring_router
from promptlogic.rules.router import router as rules_router
from promptlogic.rules.token_router import router as rule_tokens_router
from promptlogic.rules.tokens import RuleTokens
from promptlogic.runs.openai_compat import OpenAIErrorBodies
from promptlogic.runs.openai_compat import router as openai_router
from promptlogic.runs.router import prompt_runs
from promptlogic.runs.router import router as runs_router
from promptlogic.runs.services import open_run_services
from promptlogic.runtime import resolve_settings
from promptlogic.settings import Settings
from promptlogic.tenancy.auth import API_KEY_TOPIC, ApiKeyGate, Authenticator
from promptlogic.tenancy.key_cache import ApiKeyCache
from promptlogic.tenancy.router import router as tenancy_router
from promptlogic.tenancy.usage import KeyUsageRecorder
from promptlogic.ui import create_ui
from promptlogic.usage.router import router as limits_router

log = logging.getLogger(__name__)


def create_app(settings: Settings) -> FastAPI:
    """Build the app for `settings`, whose database must already be resolved (see runtime)."""
    if settings.database_url is None:
        raise ValueError("create_app needs a database URL; call resolve_settings first")

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        async with AsyncExitStack() as resources:
            engine = create_engine(settings)
            resources.push_async_callback(engine.dispose)
            await ensure_at_head(engine)
            listener = ChangeListener(settings.database_url or "")
            sessionmaker = create_sessionmaker(engine, info={LISTENER_KEY: listener})
            usage = KeyUsageRecorder(sessionmaker, settings.usage_flush_seconds)
            live = lambda: listener.connected  # noqa: E731 - caches store only while notified
            rule_tokens = RuleTokens(settings.resolved_secret_key())
            authenticator = Authenticator(
                sessionmaker,
                ApiKeyCache(settings.api_key_cache_size, is_live=live),
                usage,
                rule_tokens=rule_tokens,
            )
            secret_box = SecretBox(settings.resolved_secret_key())
            providers = ProviderRegistry(sessionmaker, secret_box, settings, is_live=live)
            resources.push_async_callback(providers.aclose)
            # Each change topic drops what it invalidates; a reconnect drops everything.
            listener.subscribe(API_KEY_TOPIC, authenticator.on_key_changed)
            listener.on_reset(authenticator.cache.clear)
            listener.subscribe(PROVIDER_TOPIC, providers.on_provider_changed)
            listener.on_reset(providers.clear)
            # Its recorder stops (writing what it holds) before the engine is disposed: the
            # stack unwinds in reverse.
            services = await resources.enter_async_context(
                open_run_services(settings, sessionmaker, listener, providers)
            )
            app.state.engine = engine
            app.state.sessionmaker = sessionmaker
            app.state.listener = listener
            app.state.authenticator = authenticator
            app.state.rule_tokens = rule_tokens
            app.state.secret_box = secret_box
            app.state.providers = providers
            app.state.plan_cache = services.plans
            app.state.renderer = services.renderer
            app.state.prices = services.prices
            app.state.usage_limiter = services.limits
            app.state.binder = services.binder
            app.state.run_recorder = services.recorder
            app.state.head_revision = head_revision()
            await listener.start()
            resources.push_async_callback(listener.stop)
            await usage.start()
            resources.push_async_callback(usage.stop)
            tune_for_serving()
            yield

    app = FastAPI(
        title="promptlogic",
        version=__version__,
        summary="Business logic as data: versioned prompts, labels and runs.",
        lifespan=lifespan,
    )
    app.state.settings = settings
    install_error_handlers(app)
    # The last added runs first: refuse unauthenticated API calls before reading any body.
    app.add_middleware(BodySizeLimit, max_bytes=settings.max_body_bytes)
    app.add_middleware(ApiKeyGate, prefix="/v1/")
    app.add_middleware(OpenAIErrorBodies, path="/v1/chat/completions")
    if settings.cors_origins:  # outermost: a preflight carries no API key to check
        app.add_middleware(
            CORSMiddleware,
            allow_origins=settings.cors_origins,
            allow_methods=["GET", "POST", "PATCH", "DELETE"],
            allow_headers=["Authorization", "Content-Type", "If-Match"],
            expose_headers=["ETag"],
            max_age=600,
        )
    app.include_router(prompt_runs)  # first: routes match in order, and this is the hot path
    app.include_router(health_router)
    app.include_router(tenancy_router)
    app.include_router(audit_router)
    app.include_router(prompts_router)
    app.include_router(providers_router)
    app.include_router(models_router)
    app.include_router(runs_router)
    app.include_router(openai_router)
    app.include_router(limits_router)
    app.include_router(context_router)
    app.include_router(rule_tokens_router)  # before `/v1/rules/{rule_id}`, to be plain
    app.include_router(rules_authoring_router)
    app.include_router(rules_router)
    app.include_router(knowledge_router)
    app.include_router(datasets_router)
    app.include_router(evals_router)
    app.include_router(gates_router)
    app.mount("/ui", create_ui(app.state, settings))
    return app


def create_app_from_env() -> FastAPI:
    """Factory for `uvicorn --factory`: settings from the environment, embedded DB if unset."""
    return create_app(resolve_settings())
