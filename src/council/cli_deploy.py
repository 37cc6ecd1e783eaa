"""`council deploy ...`: run the project's service on a target and look after it (status, logs,
rollback, stop), and write deployment artefacts (the LiteLLM proxy config)."""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Annotated, Any

import typer

deploy_app = typer.Typer(
    name="deploy",
    help="Deploy the project's service (default target: local) and look after it.",
    add_completion=False,
)

RepoOption = Annotated[
    Path, typer.Option("--repo", help="The project's folder (in a git repository).")
]
JsonOption = Annotated[bool, typer.Option("--json", help="Print JSON instead of text.")]
FOLLOW_POLL_S = 0.2


def _project(repo: Path):
    """(project folder, its deploy.yaml) — the folder must be inside a git repository."""
    from council.deploy_config import DEPLOY_FILE, load_deploy_config
    from council.errors import UsageError
    from council.workspace import require_git_repo

    project = repo.resolve()
    if not project.is_dir():
        raise UsageError(f"{repo} is not a folder")
    try:
        require_git_repo(project)
    except UsageError as exc:
        raise UsageError(f"{repo} is not inside a git repository", hint=exc.hint) from None
    return project, load_deploy_config(project / DEPLOY_FILE)


def local_target(repo: Path, **options: Any):
    """The project's local target, as an earlier `council deploy` left it (detached services,
    state under `.council/deploy/`)."""
    from council.targets import state_dir_for, target_for
    from council.workspace import ensure_council_ignored

    project, config = _project(repo)
    state = state_dir_for(project)
    ensure_council_ignored(project)  # .council/ is council's, never part of the user's changes
    return target_for(config, state_dir=state, detach=True, **options)


@deploy_app.callback(invoke_without_command=True)
def deploy(
    ctx: typer.Context,
    target: Annotated[
        str | None, typer.Option("--target", help="local or azure (default: deploy.yaml's).")
    ] = None,
    env: Annotated[str, typer.Option("--env", help="The environment (azure): dev, prod, ...")] = (
        "dev"
    ),
    dry_run: Annotated[
        bool, typer.Option("--dry-run", help="azure: show files, what-if/plan, cost drivers.")
    ] = False,
    repo: RepoOption = Path("."),
    config: Annotated[Path | None, typer.Option(help="Path to a council.yaml.")] = None,
    as_json: JsonOption = False,
    verbose: Annotated[bool, typer.Option("--verbose", "-v", help="Show every command.")] = False,
) -> None:
    """Deploy the project's service: artefacts, release, health check, diagnose and fix."""
    if ctx.invoked_subcommand is not None:
        return
    from council import cli
    from council.config import resolve_config
    from council.pipelines.flows import start_flow
    from council.workspace import require_git_repo
    from council.workspace.git import require_commit

    emit = cli._emitter(as_json, verbose)
    project, deploy_config = _project(repo)
    top = require_git_repo(project)
    require_commit(top)
    rel = project.relative_to(top).as_posix()
    rel = "" if rel == "." else rel
    cfg, source = resolve_config(top, config)
    if not as_json:
        cli._out().print(f"config: {source}", style="dim")
    chosen = target or deploy_config.resolved_target
    with cli._run_lock(top, "council deploy"):
        flow = start_flow(
            "deploy",
            repo=top,
            feature=f"deploy {rel or top.name} to {chosen}",
            config=cfg,
            store=cli._store(top),
            emit=emit,
            target=chosen,
            env=env,
            dry_run=dry_run,
            project=rel,
        )
        outcome = cli._execute(flow)
    if not as_json and outcome.details.get("url"):
        cli._out().print(f"url: {outcome.details['url']}")
    cli._finish(outcome, as_json)


@deploy_app.command("status")
def status(repo: RepoOption = Path("."), as_json: JsonOption = False) -> None:
    """The live releases of the local target, whether they still run, the last healthy one."""
    target = local_target(repo)
    st = target.status()
    data = {
        "target": st.target,
        "live": [
            {
                "release": i.release.id,
                "commit": i.release.commit,
                "url": i.url,
                "pid": i.pid,
                "running": i.release.id in st.running,
                "started_at": i.started_at,
            }
            for i in st.live
        ],
        "last_healthy": (
            {"release": st.last_healthy.id, "commit": st.last_healthy.commit}
            if st.last_healthy
            else None
        ),
    }
    if as_json:
        typer.echo(json.dumps(data))
        return
    typer.echo(f"target: {st.target}")
    if not st.live:
        typer.echo("no live release")
    for live in data["live"]:
        state = "running" if live["running"] else "exited"
        typer.echo(
            f"release {live['release']} (commit {live['commit'][:10]}) at {live['url']}: "
            f"{state}, pid {live['pid']}"
        )
    good = st.last_healthy
    typer.echo(
        f"last healthy: {good.id} (commit {good.commit[:10]})" if good else "last healthy: none"
    )


def _newest(target):
    from council.errors import UsageError

    live = target.status().live
    if not live:
        raise UsageError("no live release here", hint="Start one with `council deploy`.")
    return max(live, key=lambda i: i.started_at)


@deploy_app.command("logs")
def logs(
    repo: RepoOption = Path("."),
    lines: Annotated[int, typer.Option("--lines", "-n", min=1, help="Lines to show.")] = 200,
    follow: Annotated[
        bool, typer.Option("--follow", "-f", help="Keep printing until the service stops.")
    ] = False,
) -> None:
    """The newest live release's log."""
    target = local_target(repo)
    instance = _newest(target)
    text = target.logs(instance, lines=lines)
    if text:
        typer.echo(text)
    if not follow:
        return
    with instance.log.open("rb") as log:
        log.seek(0, 2)
        while True:
            chunk = log.read()
            if chunk:
                typer.echo(chunk.decode("utf-8", errors="replace"), nl=False)
            elif instance.release.id not in target.status().running:
                return  # it stopped: nothing more will come
            else:
                time.sleep(FOLLOW_POLL_S)


@deploy_app.command("rollback")
def rollback(repo: RepoOption = Path("."), as_json: JsonOption = False) -> None:
    """Stop every release but the last healthy one, and make sure that one serves."""
    from council.errors import UsageError

    target = local_target(repo)
    if target.status().last_healthy is None:  # like `logs` without a release: exit 2
        raise UsageError(
            "nothing to roll back to: no release of this target was healthy",
            hint="Deploy one with `council deploy`.",
        )
    instance = target.rollback()
    if as_json:
        typer.echo(json.dumps({"release": instance.release.id, "url": instance.url}))
    else:
        typer.echo(f"serving release {instance.release.id} at {instance.url}")


@deploy_app.command("stop")
def stop(repo: RepoOption = Path(".")) -> None:
    """Stop every release of the local target (the state keeps the last healthy one)."""
    target = local_target(repo)
    count = len(target.status().live)
    target.stop()
    typer.echo(f"stopped {count} release(s)")


@deploy_app.command("litellm-config")
def litellm_config(
    config: Annotated[
        Path, typer.Option("--config", "-c", help="The council.yaml to read.")
    ] = Path("council.yaml"),
    out: Annotated[Path, typer.Option("--out", "-o", help="Where to write; '-' prints it.")] = Path(
        "litellm_config.yaml"
    ),
) -> None:
    """Write litellm_config.yaml for a LiteLLM proxy from council.yaml's models and personas."""
    from council.config import load_config
    from council.infra.litellm_config import render_litellm_config

    text = render_litellm_config(load_config(config), source=config.name)
    if str(out) == "-":
        typer.echo(text, nl=False)
        return
    out.write_text(text, encoding="utf-8")
    typer.echo(f"wrote {out}")
