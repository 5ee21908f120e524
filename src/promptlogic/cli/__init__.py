"""The `promptlogic` command: the typer app assembled from the command modules of this package."""

from __future__ import annotations

import typer

from promptlogic.cli import evals, prompts, serve, tenancy, worker

app = typer.Typer(
    help="promptlogic: business logic as data. Settings come from PROMPTLOGIC_* variables.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
)
app.add_typer(tenancy.tenants_app, name="tenants")
app.add_typer(tenancy.keys_app, name="keys")
app.add_typer(tenancy.users_app, name="users")
app.command()(serve.serve)
app.command()(serve.migrate)
app.command()(worker.worker)
app.command()(prompts.pull)
app.command()(prompts.push)
app.command("eval")(evals.evaluate)


def main() -> None:
    app()
