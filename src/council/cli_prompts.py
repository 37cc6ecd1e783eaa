"""`council prompts list|show|edit`: the templates the personas are asked with, and overrides.

A repository overrides a template by keeping its own copy in `.council/prompts/<name>.j2`;
`edit` makes that copy from the packaged one and opens $VISUAL or $EDITOR on it. Only typer and
the standard library are imported here: the personas load when a command runs.
"""

from __future__ import annotations

import os
import shlex
import subprocess  # nosec B404 - the user's own editor, on a file in their repository
from pathlib import Path
from typing import Annotated

import typer

from council.errors import UsageError

prompts_app = typer.Typer(
    name="prompts",
    help="Prompt templates of the personas; a repository overrides one in .council/prompts/.",
    no_args_is_help=True,
    add_completion=False,
)

RepoOpt = Annotated[
    Path | None,
    typer.Option("--repo", "-r", help="The repository whose overrides count.", show_default=False),
]
NameArg = Annotated[str, typer.Argument(help="Template name, as `council prompts list` shows.")]


def _prompts(repo: Path | None):  # -> council.personas.Prompts
    from council.personas import Prompts

    root = (repo or Path.cwd()).resolve()
    if not root.is_dir():
        raise UsageError(f"{root} is not a directory")
    return Prompts(root)


def _known(prompts, name: str) -> str:  # noqa: ANN001 - Prompts, imported lazily
    if name.endswith(".j2"):
        name = name[: -len(".j2")]
    if name not in prompts.names():
        raise UsageError(
            f"unknown prompt template {name!r} (known: {', '.join(prompts.names())})",
            hint="`council prompts list` shows them with the personas that use them.",
        )
    return name


@prompts_app.command("list")
def list_templates(repo: RepoOpt = None) -> None:
    """Every template: the personas asked with it, and whether this repository overrides it."""
    from council.personas import template_owners

    prompts = _prompts(repo)
    owners = template_owners()
    names = prompts.names()
    rows = []
    for name in names:
        users = ", ".join(owners.get(name, [])) or ("(included)" if name.startswith("_") else "-")
        own = prompts.override(name)
        where = f"override: {own.relative_to(prompts.repo)}" if own else "package"
        rows.append((name, users, where))
    widths = [max(len(row[i]) for row in rows) for i in (0, 1)]
    for name, users, where in rows:
        typer.echo(f"{name:<{widths[0]}}  {users:<{widths[1]}}  {where}")


@prompts_app.command("show")
def show_template(name: NameArg, repo: RepoOpt = None) -> None:
    """Print the template as this repository uses it (its override, else the package's)."""
    prompts = _prompts(repo)
    typer.echo(prompts.source(_known(prompts, name)), nl=False)


@prompts_app.command("edit")
def edit_template(name: NameArg, repo: RepoOpt = None) -> None:
    """Copy the packaged template to .council/prompts/ (once) and open $VISUAL / $EDITOR on it."""
    prompts = _prompts(repo)
    name = _known(prompts, name)
    path = prompts.overrides / f"{name}.j2"
    if not path.is_file():
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(prompts.packaged(name) or "", encoding="utf-8")
    editor = os.environ.get("VISUAL") or os.environ.get("EDITOR") or "vi"
    argv = [*shlex.split(editor), str(path)]
    try:
        done = subprocess.run(argv, check=False)  # nosec B603 - the user's chosen editor
    except FileNotFoundError as exc:
        raise UsageError(
            f"the editor {argv[0]!r} was not found",
            hint=f"Set EDITOR (or VISUAL), or edit {path} directly.",
        ) from exc
    if done.returncode != 0:
        raise UsageError(f"the editor exited with {done.returncode}; {path} is kept as it is")
    typer.echo(f"{path} overrides the packaged {name}.j2 in this repository")
