"""The `pull` and `push` commands: a tenant's prompts as YAML files in a directory."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Annotated, Any

import typer
from sqlalchemy.ext.asyncio import AsyncSession

from promptlogic.audit.service import OPERATOR
from promptlogic.cli.common import JsonOption, emit, fail, in_transaction
from promptlogic.rendering import Renderer
from promptlogic.tenancy import service


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
        fail(f"--label {label!r} is not a label name (lowercase letters, digits, `.`, `_`, `-`)")
    if label == "latest" and not allow_latest:
        fail("--label latest always means the newest version; it cannot be moved")


DirArgument = Annotated[Path, typer.Argument(metavar="DIR", help="One <name>.yaml per prompt.")]


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

    pulled, skipped = in_transaction(work)
    try:
        files = yaml_files.write_files(directory, pulled)
    except OSError as exc:
        fail(f"cannot write to {directory}: {exc.strerror or exc}")
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
    emit(result, as_json, "\n".join(lines))


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
        fail(f"{directory} is not a directory")
    try:
        documents, problems = yaml_files.read_directory(directory)
    except OSError as exc:
        fail(f"cannot read {directory}: {exc.strerror or exc}")
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
        result = in_transaction(work)
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
    emit(data, as_json, "\n".join(lines))
