"""`council ci init`: write the GitHub workflow that runs the council on a feature request.

The template and its checks live in infra/ci_workflow.py, imported inside the command so that
`council --help` does not load jinja2 and yaml.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

ci_app = typer.Typer(help="Continuous integration: run the council from GitHub Actions.")


@ci_app.command("init")
def ci_init(
    mode: Annotated[
        str,
        typer.Option(help="server: submit to a council server; job: run the council in the job."),
    ] = "server",
    label: Annotated[
        str,
        typer.Option(help="Issue label that starts a run ('' for workflow_dispatch only)."),
    ] = "council",
    secret: Annotated[
        list[str] | None,
        typer.Option(
            "--secret",
            help="--mode job: a repository secret passed to the run as an env var of the same "
            "name (repeat; e.g. OPENAI_API_KEY).",
        ),
    ] = None,
    install: Annotated[
        str | None,
        typer.Option(
            help="pip requirement that installs council (default: this version).",
            show_default=False,
        ),
    ] = None,
    repo: Annotated[Path, typer.Option("--repo", help="The repository's top folder.")] = Path("."),
    force: Annotated[bool, typer.Option("--force", help="Replace an existing file.")] = False,
) -> None:
    """Write .github/workflows/council.yml (refuses to replace one without --force)."""
    from council.errors import UsageError
    from council.infra.ci_workflow import WorkflowSpec, render_workflow, write_workflow

    root = repo.expanduser().resolve()
    if not root.is_dir():
        raise UsageError(f"--repo {repo}: not a folder")
    if secret and mode != "job":
        raise UsageError("--secret is for --mode job", hint="The server holds its own keys.")
    spec = WorkflowSpec(mode=mode, label=label, secrets=tuple(secret or ()))
    if install is not None:
        spec = WorkflowSpec(mode=mode, label=label, secrets=spec.secrets, install=install)
    path = write_workflow(root, render_workflow(spec), force=force)
    print(f"wrote {path.relative_to(root)}")
    if mode == "server":
        print("set the repository variable COUNCIL_SERVER and the secret COUNCIL_API_KEY")
    elif spec.secrets:
        print(f"set the repository secret(s): {', '.join(spec.secrets)}")


def register(app: typer.Typer) -> None:
    app.add_typer(ci_app, name="ci")
