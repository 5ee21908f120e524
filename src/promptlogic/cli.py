"""The `promptlogic` command: serve, migrate, platform operations on tenants, users, keys, and
pushing and pulling a tenant's prompts as YAML files."""

from __future__ import annotations

import asyncio
import json
import os
import re
import signal
import uuid
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated, Any, TypeVar

import typer
from pydantic import ValidationError
from sqlalchemy.exc import DBAPIError
from sqlalchemy.ext.asyncio import AsyncSession

from promptlogic.audit.service import OPERATOR
from promptlogic.db.engine import commit, create_engine, create_sessionmaker
from promptlogic.db.migrations import SchemaBehind, ensure_at_head, upgrade
from promptlogic.demo_prompts import EXAMPLE_VARIABLES
from promptlogic.errors import Problem
from promptlogic.rendering import Renderer
from promptlogic.runtime import resolve_settings
from promptlogic.settings import Settings
from promptlogic.tenancy import service
from promptlogic.tenancy.roles import ROLES, SCOPES

T = TypeVar("T")

app = typer.Typer(
    help="promptlogic: business logic as data. Settings come from PROMPTLOGIC_* variables.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
)
tenants_app = typer.Typer(help="Manage tenants (platform operators).", no_args_is_help=True)
keys_app = typer.Typer(help="Manage API keys.", no_args_is_help=True)
users_app = typer.Typer(help="Manage users and their roles.", no_args_is_help=True)
app.add_typer(tenants_app, name="tenants")
app.add_typer(keys_app, name="keys")
app.add_typer(users_app, name="users")

JsonOption = Annotated[bool, typer.Option("--json", help="Print JSON instead of text.")]


def _settings() -> tuple[Settings, bool]:
    """Settings with a concrete database, and whether that database is the embedded default."""
    try:
        configured = Settings()
    except ValidationError as exc:
        # Name the variables, never echo their values: a URL may carry a password.
        problems = "; ".join(
            f"PROMPTLOGIC_{'.'.join(map(str, e['loc'])).upper()}: {e['msg']}"
            if e["loc"]
            else str(e["msg"])
            for e in exc.errors()
        )
        return _fail(f"invalid settings: {problems}")
    return resolve_settings(configured), configured.embedded


def _fail(message: str) -> Any:
    typer.echo(f"error: {message}", err=True)
    raise typer.Exit(code=1)


def _run(work: Awaitable[T]) -> T:
    """Run a coroutine, turning the failures a user can act on into one line on stderr."""
    try:
        return asyncio.run(work)  # type: ignore[arg-type]
    except Problem as problem:
        return _fail(problem.detail)
    except SchemaBehind as exc:
        return _fail(str(exc))
    except (OSError, DBAPIError) as exc:
        reason = getattr(exc, "orig", None) or exc
        return _fail(f"cannot reach the database ({reason.__class__.__name__}: {reason})")


def _in_transaction(work: Callable[[AsyncSession], Awaitable[T]]) -> T:
    """Run `work` in one committed transaction on a migrated database.

    The embedded default migrates itself; an external database must be migrated on purpose.
    """
    settings, embedded = _settings()

    async def run() -> T:
        engine = create_engine(settings)
        try:
            await (upgrade(engine) if embedded else ensure_at_head(engine))
            async with create_sessionmaker(engine)() as session:
                result = await work(session)
                await commit(session)
                return result
        finally:
            await engine.dispose()

    return _run(run())


def _emit(data: Any, as_json: bool, text: str) -> None:
    typer.echo(json.dumps(data, indent=2, default=str) if as_json else text)


def _scopes(value: str) -> list[str]:
    scopes = [s.strip() for s in value.split(",") if s.strip()]
    if not scopes or set(scopes) - set(SCOPES):
        _fail(f"--scopes takes a comma-separated list from: {', '.join(SCOPES)}")
    return scopes


@app.command()
def serve(
    host: Annotated[str | None, typer.Option(help="Address to bind.")] = None,
    port: Annotated[int | None, typer.Option(help="Port to bind.")] = None,
    workers: Annotated[int | None, typer.Option(help="Worker processes.")] = None,
) -> None:
    """Start the HTTP service (embedded Postgres, migrated and seeded, when no URL is set)."""
    import uvicorn

    settings, embedded = _settings()
    host = host or settings.host
    port = port or settings.port
    if embedded:
        credentials = _run(_prepare_embedded(settings))
        _print_banner(settings, host, port, credentials)
    # uvicorn re-raises SIGTERM after its graceful shutdown; exiting through SystemExit instead
    # runs the atexit hooks, which stop the embedded Postgres.
    signal.signal(signal.SIGTERM, _exit_on_sigterm)
    # Workers re-read the environment: hand them the resolved database and secret.
    os.environ["PROMPTLOGIC_DATABASE_URL"] = settings.database_url or ""
    os.environ["PROMPTLOGIC_SECRET_KEY"] = settings.resolved_secret_key()
    uvicorn.run(
        "promptlogic.app:create_app_from_env",
        factory=True,
        host=host,
        port=port,
        workers=workers or settings.workers,
        log_level=settings.log_level,
        proxy_headers=True,
    )


def _exit_on_sigterm(signum: int, _frame: object) -> None:
    raise SystemExit(128 + signum)


async def _prepare_embedded(settings: Settings) -> Any:
    from promptlogic.demo import ensure_demo

    engine = create_engine(settings)
    try:
        await upgrade(engine)
        if not settings.seed_demo:
            return None
        async with create_sessionmaker(engine)() as session, Renderer(workers=1) as renderer:
            credentials = await ensure_demo(session, settings.home_dir, renderer)
            await commit(session)
            return credentials
    finally:
        await engine.dispose()


def _print_banner(settings: Settings, host: str, port: int, credentials: Any) -> None:
    shown_host = "localhost" if host in ("127.0.0.1", "0.0.0.0") else host  # noqa: S104
    url = f"http://{shown_host}:{port}"
    lines = [
        "",
        f"promptlogic is starting at {url}  (embedded Postgres in {settings.home_dir})",
        f"  API docs:   {url}/docs",
    ]
    if credentials is not None:
        lines += [
            f"  Demo login: {credentials.email} / {credentials.password}",
            f"  API key:    {credentials.api_key}",
            f'  Try it:     curl -H "Authorization: Bearer {credentials.api_key}" {url}/v1/me',
            "  Render the demo prompt:",
            f'    curl -H "Authorization: Bearer {credentials.api_key}" '
            f"-H 'Content-Type: application/json' \\\n"
            f"      -d '{json.dumps({'variables': EXAMPLE_VARIABLES})}' \\\n"
            f"      {url}/v1/prompts/support-triage/render",
        ]
    lines.append("")
    typer.echo("\n".join(lines))


@app.command()
def migrate() -> None:
    """Upgrade the database schema to the newest migration."""
    settings, _embedded = _settings()

    async def run() -> None:
        engine = create_engine(settings)
        try:
            await upgrade(engine)
        finally:
            await engine.dispose()

    _run(run())
    typer.echo("database is at head")


@tenants_app.command("create")
def tenants_create(
    slug: Annotated[str, typer.Argument(help="Short unique id, e.g. acme.")],
    name: Annotated[str, typer.Option(help="Display name.")],
    admin_email: Annotated[str, typer.Option(help="Email of the tenant's first owner.")],
    admin_password: Annotated[
        str | None, typer.Option(help="Their password; generated and shown once if omitted.")
    ] = None,
    as_json: JsonOption = False,
) -> None:
    """Create a tenant with an owner and an admin-scoped API key (shown once)."""

    async def work(session: AsyncSession) -> dict[str, Any]:
        tenant = await service.create_tenant(session, slug=slug, name=name)
        owner = await service.add_member(
            session,
            tenant=tenant,
            email=admin_email,
            role="owner",
            password=admin_password,
            actor=OPERATOR,
        )
        created = await service.create_api_key(
            session, tenant_id=tenant.id, name="admin key", scopes=["admin"], actor=OPERATOR
        )
        result = {
            "tenant": {"id": str(tenant.id), "slug": tenant.slug, "name": tenant.name},
            "admin_email": owner.user.email,
            "api_key": created.plaintext,
        }
        if owner.generated_password:
            result["admin_password"] = owner.generated_password
        return result

    result = _in_transaction(work)
    text = f"created tenant {slug}\n  owner:   {result['admin_email']}"
    if "admin_password" in result:
        text += f" (password: {result['admin_password']}; shown only now)"
    text += f"\n  API key: {result['api_key']}  (admin scope; shown only now)"
    _emit(result, as_json, text)


@tenants_app.command("list")
def tenants_list(as_json: JsonOption = False) -> None:
    """List every tenant."""
    tenants = _in_transaction(service.list_tenants)
    rows = [
        {"id": str(t.id), "slug": t.slug, "name": t.name, "created_at": t.created_at.isoformat()}
        for t in tenants
    ]
    _emit(rows, as_json, "\n".join(f"{r['slug']}\t{r['name']}\t{r['id']}" for r in rows))


@keys_app.command("create")
def keys_create(
    tenant: Annotated[str, typer.Option(help="Tenant slug.")],
    name: Annotated[str, typer.Option(help="What the key is for.")],
    scopes: Annotated[
        str, typer.Option(help=f"Comma-separated, from: {', '.join(SCOPES)}.")
    ] = "run,read",
    expires_at: Annotated[
        datetime | None, typer.Option(help="Expiry (ISO 8601, UTC when no zone is given).")
    ] = None,
    as_json: JsonOption = False,
) -> None:
    """Create an API key for a tenant; it is printed once and stored only as a hash."""
    scope_list = _scopes(scopes)
    if expires_at is not None and expires_at.tzinfo is None:
        expires_at = expires_at.replace(tzinfo=UTC)

    async def work(session: AsyncSession) -> dict[str, Any]:
        found = await service.get_tenant_by_slug(session, tenant)
        created = await service.create_api_key(
            session,
            tenant_id=found.id,
            name=name,
            scopes=scope_list,
            expires_at=expires_at,
            actor=OPERATOR,
        )
        return {
            "id": str(created.key.id),
            "api_key": created.plaintext,
            "tenant": tenant,
            "name": created.key.name,
            "scopes": created.key.scopes,
        }

    result = _in_transaction(work)
    _emit(result, as_json, f"{result['api_key']}\n(id {result['id']}; shown only now)")


@keys_app.command("revoke")
def keys_revoke(
    key_id: Annotated[str, typer.Argument(metavar="ID", help="The key's id.")],
    as_json: JsonOption = False,
) -> None:
    """Revoke an API key; every running worker refuses it at once."""
    try:
        parsed = uuid.UUID(key_id)
    except ValueError:
        _fail(f"not a key id: {key_id!r}")

    async def work(session: AsyncSession) -> dict[str, Any]:
        tenant_id = await service.tenant_of_api_key(session, parsed)
        key = await service.revoke_api_key(
            session, tenant_id=tenant_id, key_id=parsed, actor=OPERATOR
        )
        return {"id": str(key.id), "revoked_at": key.revoked_at}

    result = _in_transaction(work)
    _emit(result, as_json, f"revoked {result['id']}")


@users_app.command("create")
def users_create(
    tenant: Annotated[str, typer.Option(help="Tenant slug.")],
    email: Annotated[str, typer.Option(help="The user's email.")],
    role: Annotated[str, typer.Option(help=f"One of: {', '.join(ROLES)}.")],
    password: Annotated[
        str | None, typer.Option(help="Password; generated and shown once if omitted.")
    ] = None,
    as_json: JsonOption = False,
) -> None:
    """Add a user to a tenant with a role (creating the user if new)."""
    if role not in ROLES:
        _fail(f"--role must be one of {', '.join(ROLES)}")

    async def work(session: AsyncSession) -> dict[str, Any]:
        found = await service.get_tenant_by_slug(session, tenant)
        member = await service.add_member(
            session, tenant=found, email=email, role=role, password=password, actor=OPERATOR
        )
        result = {"id": str(member.user.id), "email": member.user.email, "tenant": tenant}
        result["role"] = role
        if member.generated_password:
            result["password"] = member.generated_password
        return result

    result = _in_transaction(work)
    text = f"added {result['email']} to {tenant} as {role}"
    if "password" in result:
        text += f" (password: {result['password']}; shown only now)"
    _emit(result, as_json, text)


# Prompts as files


class _RolledBack(Exception):
    """Carries a result out of a transaction that must not be kept (a dry run, a refused push)."""

    def __init__(self, result: Any) -> None:
        super().__init__()
        self.result = result


def _fail_each(problems: list[str]) -> Any:
    for problem in problems:
        typer.echo(f"error: {problem}", err=True)
    raise typer.Exit(code=1)


def _label_option(label: str | None, *, allow_latest: bool) -> None:
    from promptlogic.prompts.schemas import LABEL_PATTERN

    if label is None:
        return
    if not re.fullmatch(LABEL_PATTERN, label):
        _fail(f"--label {label!r} is not a label name (lowercase letters, digits, `.`, `_`, `-`)")
    if label == "latest" and not allow_latest:
        _fail("--label latest always means the newest version; it cannot be moved")


DirArgument = Annotated[Path, typer.Argument(metavar="DIR", help="One <name>.yaml per prompt.")]


@app.command()
def pull(
    directory: DirArgument,
    tenant: Annotated[str, typer.Option(help="Tenant slug.")],
    label: Annotated[
        str | None,
        typer.Option(help="Write the version this label points at; skip prompts without it."),
    ] = None,
    as_json: JsonOption = False,
) -> None:
    """Write each active prompt of a tenant to DIR/<name>.yaml: its latest version, or --label."""
    from promptlogic.prompts import gitops, yaml_files

    _label_option(label, allow_latest=True)

    async def work(session: AsyncSession) -> Any:
        found = await service.get_tenant_by_slug(session, tenant)
        return await gitops.pull(session, tenant_id=found.id, label=label)

    pulled, skipped = _in_transaction(work)
    try:
        files = yaml_files.write_files(directory, pulled)
    except OSError as exc:
        _fail(f"cannot write to {directory}: {exc.strerror or exc}")
    result = {
        "tenant": tenant,
        "directory": str(directory),
        "label": label,
        "files": files,
        "skipped": skipped,
    }
    lines = [
        f"{'wrote' if f['written'] else 'unchanged'} {f['file']} ({f['name']}@{f['version']})"
        for f in files
    ]
    lines += [f"skipped {s['name']}: {s['reason']}" for s in skipped]
    lines.append(f"{len(files)} prompts in {directory}, {sum(f['written'] for f in files)} written")
    _emit(result, as_json, "\n".join(lines))


@app.command()
def push(
    directory: DirArgument,
    tenant: Annotated[str, typer.Option(help="Tenant slug.")],
    label: Annotated[
        str | None,
        typer.Option(help="Move this label (even a protected one) to each pushed version."),
    ] = None,
    dry_run: Annotated[
        bool, typer.Option("--dry-run", help="Print what would change; change nothing.")
    ] = False,
    message: Annotated[
        str,
        typer.Option("--message", "-m", help="Commit message of new versions (a file's own wins)."),
    ] = "",
    as_json: JsonOption = False,
) -> None:
    """Push DIR/*.yaml to a tenant in one transaction: new prompts, new versions where the
    content differs, printed as a diff. Any problem changes nothing."""
    from promptlogic.prompts import gitops, yaml_files

    _label_option(label, allow_latest=False)
    if not directory.is_dir():
        _fail(f"{directory} is not a directory")
    try:
        documents, problems = yaml_files.read_directory(directory)
    except OSError as exc:
        _fail(f"cannot read {directory}: {exc.strerror or exc}")
    if problems:
        _fail_each(problems)

    async def work(session: AsyncSession) -> gitops.PushResult:
        found = await service.get_tenant_by_slug(session, tenant)
        async with Renderer(workers=1) as renderer:
            result = await gitops.push(
                session,
                tenant_id=found.id,
                documents=documents,
                label=label,
                message=message,
                actor=OPERATOR,
                renderer=renderer,
            )
        if dry_run or result.problems:
            raise _RolledBack(result)
        return result

    try:
        result = _in_transaction(work)
    except _RolledBack as rolled_back:
        result = rolled_back.result
    if result.problems:
        _fail_each(result.problems)
    counts = gitops.summary(result.changes)
    data = {
        "tenant": tenant,
        "directory": str(directory),
        "dry_run": dry_run,
        "label": label,
        "prompts": [change.as_json() for change in result.changes],
        "summary": counts,
    }
    lines = [line for change in result.changes for line in gitops.describe(change)]
    total = f"{len(result.changes)} prompts: {counts['created']} created, "
    total += f"{counts['new_version']} with a new version, {counts['unchanged']} unchanged"
    if label is not None:
        total += f"; label {label} moved on {counts['labels_moved']}"
    lines.append(f"dry run, nothing changed. {total}" if dry_run else total)
    _emit(data, as_json, "\n".join(lines))


def main() -> None:
    app()
