"""The `council` command line: thin; parses, calls a pipeline, renders its events.

Exit codes: 0 green and committed, 1 not green within limits, 2 usage or configuration error.
"""

from __future__ import annotations

import json
import os
import subprocess  # nosec B404 - git diff --stat for `show`, fixed argv
import sys
from pathlib import Path
from typing import Annotated, NoReturn

import typer
from rich.console import Console
from rich.text import Text

from council.cli_deploy import deploy_app
from council.cli_models import models_app
from council.config import (
    CONFIG_FILE,
    PROVIDERS,
    LanguageConfig,
    dump_config,
    preset,
    resolve_config,
)
from council.errors import CouncilError, UsageError, as_user_error

app = typer.Typer(
    name="council",
    help="AI Council: a feature request in, a tested and reviewed change on a branch out.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)
app.add_typer(deploy_app, name="deploy")
app.add_typer(models_app, name="models")
# soft_wrap: messages keep their own line breaks; rich must not re-wrap paths and commands at
# 80 columns when the output is a pipe or a file.
console = Console(stderr=False, highlight=False, soft_wrap=True)
err_console = Console(stderr=True, highlight=False, soft_wrap=True)

RepoOpt = Annotated[
    Path, typer.Option("--repo", "-r", help="The git repository to work on.", show_default=False)
]
JsonOpt = Annotated[bool, typer.Option("--json", help="Emit the event stream as JSON lines.")]


def _repo(path: Path | None) -> Path:
    repo = (path or Path.cwd()).resolve()
    if not repo.is_dir():
        raise UsageError(f"{repo} is not a directory")
    return repo


def _require_top_level(repo: Path) -> None:
    """UsageError unless `repo` is the top level of a git repository with a commit to branch
    from. Checked before anything is written, so a refused run leaves no `.council/` behind."""
    from council.workspace.git import require_commit, require_git_repo

    top = require_git_repo(repo)
    if top != repo.resolve():
        raise UsageError(
            f"{repo} is inside the git repository {top} but is not its top level",
            hint="council works on a repository's top level: run it there, or copy the "
            "project into a repository of its own (scripts/demo does this for the example).",
        )
    require_commit(top)


def _store(repo: Path):
    from council.store import Store

    return Store.for_repo(repo)


def _existing_store(repo: Path):
    """The repository's store if a run ever created it; reading never creates `.council/`."""
    from council.store import Store
    from council.store.store import DB_RELATIVE_PATH

    return Store.for_repo(repo) if (repo / DB_RELATIVE_PATH).is_file() else None


def _emitter(as_json: bool, verbose: bool = False):
    from council.events import Emitter
    from council.render import LiveRenderer

    emit = Emitter()
    if as_json:
        emit.subscribe(lambda e: print(e.model_dump_json(), flush=True))
    else:
        emit.subscribe(LiveRenderer(console, verbose=verbose))
    return emit


def detect_languages(repo: Path) -> dict[str, LanguageConfig]:
    """Languages `council init` writes gate commands for (Python today; more in later issues)."""
    found: dict[str, LanguageConfig] = {}
    markers = ("pyproject.toml", "setup.py", "setup.cfg", "requirements.txt")
    if any((repo / m).exists() for m in markers) or any(repo.glob("*.py")):
        test_dir = "tests" if (repo / "tests").is_dir() else "tests"
        found["python"] = LanguageConfig(test_dir=test_dir)
    return found


@app.command()
def init(
    provider: Annotated[
        str, typer.Option(help=f"Model provider preset: {', '.join(PROVIDERS)}.")
    ] = "openai",
    repo: RepoOpt = None,
    force: Annotated[bool, typer.Option(help="Overwrite an existing council.yaml.")] = False,
) -> None:
    """Write council.yaml for this repository: models, personas, limits, detected languages."""
    root = _repo(repo)
    target = root / CONFIG_FILE
    if target.exists() and not force:
        raise UsageError(f"{target} already exists (use --force to overwrite)")
    languages = detect_languages(root)
    doc = preset(provider, languages)
    header = (
        f"# council.yaml: written by `council init --provider {provider}`.\n"
        "# models: LiteLLM model_list entries; keys are read from the environment\n"
        "# (os.environ/NAME), never stored here.\n"
    )
    target.write_text(header + dump_config(doc), encoding="utf-8")
    console.print(f"wrote {target}")
    console.print(f"languages detected: {', '.join(languages) or 'none'}")
    needs = sorted(
        {
            v[len("os.environ/") :]
            for m in doc["models"]
            for v in m["litellm_params"].values()
            if isinstance(v, str) and v.startswith("os.environ/")
        }
    )
    if needs:
        console.print(f"set in the environment: {', '.join(needs)}")


@app.command()
def run(
    feature: Annotated[str, typer.Argument(help="The feature request, in plain words.")],
    repo: RepoOpt = None,
    config: Annotated[Path | None, typer.Option(help="Path to a council.yaml.")] = None,
    pr: Annotated[
        bool, typer.Option("--pr", help="Push the branch and open a pull request.")
    ] = False,
    tests: Annotated[
        list[str] | None,
        typer.Option(
            "--tests",
            help="Tests-given mode: these test files exist already (repeat for several). "
            "They must fail first and are frozen; Guardian writes none.",
        ),
    ] = None,
    max_iterations: Annotated[
        int | None, typer.Option(help="Override limits.max_iterations.")
    ] = None,
    budget: Annotated[float | None, typer.Option(help="Override limits.budget_usd (USD).")] = None,
    as_json: JsonOpt = False,
    verbose: Annotated[bool, typer.Option("--verbose", "-v", help="Show every command.")] = False,
) -> None:
    """Plan, write failing tests, code until the real tests pass, review, commit on a branch."""
    root = _repo(repo)
    # Before anything is written: a subdirectory or a plain folder must not get a `.council/`.
    _require_top_level(root)
    cfg, source = resolve_config(root, config)
    if max_iterations is not None:
        cfg.limits.max_iterations = max_iterations
    if budget is not None:
        cfg.limits.budget_usd = budget
    if not as_json:
        console.print(f"config: {source}", style="dim")
    from council.pipelines.models import ensure_local_models
    from council.pipelines.tdd import TddPipeline

    emit = _emitter(as_json, verbose)
    ensure_local_models(cfg, emit)  # a missing local model file: refused before any write
    store = _store(root)
    pipeline = TddPipeline.start(
        repo=root,
        feature=feature,
        config=cfg,
        store=store,
        emit=emit,
        open_pr=pr,
        given_tests=tests,
    )
    outcome = pipeline.execute()
    _finish(outcome, as_json)


@app.command()
def resume(
    run_id: Annotated[
        str | None, typer.Argument(help="Run id or prefix (default: latest).")
    ] = None,
    repo: RepoOpt = None,
    config: Annotated[Path | None, typer.Option(help="Path to a council.yaml.")] = None,
    budget: Annotated[float | None, typer.Option(help="Override limits.budget_usd (USD).")] = None,
    as_json: JsonOpt = False,
) -> None:
    """Continue a run that was killed or stopped, from its last completed step."""
    root = _repo(repo)
    cfg, _ = resolve_config(root, config)
    if budget is not None:
        cfg.limits.budget_usd = budget
    store = _existing_store(root)
    record = None
    if store is not None:
        record = store.get_run(run_id) if run_id else store.latest_run()
    if record is None:
        raise UsageError(f"no run {'`' + run_id + '` ' if run_id else ''}to resume")
    if record.kind == "heal":
        raise UsageError(f"run {record.id} is a heal; run `council heal` again to continue")
    from council.pipelines.tdd import TddPipeline

    emit = _emitter(as_json)
    pipeline = TddPipeline.resume(run_id=record.id, config=cfg, store=store, emit=emit)
    _finish(pipeline.execute(), as_json)


@app.command()
def heal(
    repo: RepoOpt = None,
    config: Annotated[Path | None, typer.Option(help="Path to a council.yaml.")] = None,
    dry_run: Annotated[
        bool, typer.Option("--dry-run", help="Classify and show the plan; change nothing.")
    ] = False,
    gates: Annotated[
        str | None, typer.Option(help="Comma-separated gates to run (default: all).")
    ] = None,
    max_iterations: Annotated[int, typer.Option(help="Most fix iterations.")] = 10,
    budget: Annotated[float | None, typer.Option(help="Override limits.budget_usd (USD).")] = None,
    as_json: JsonOpt = False,
    verbose: Annotated[bool, typer.Option("--verbose", "-v", help="Show every command.")] = False,
) -> None:
    """Run the quality gates and fix failures until green, on a council/heal-* branch."""
    root = _repo(repo)
    _require_top_level(root)
    if max_iterations < 1:
        raise UsageError("--max-iterations must be at least 1")
    cfg, source = resolve_config(root, config)
    if budget is not None:
        cfg.limits.budget_usd = budget
    if not as_json:
        console.print(f"config: {source}", style="dim")
    from council.pipelines.heal import HealPipeline
    from council.pipelines.models import ensure_local_models

    emit = _emitter(as_json, verbose)
    ensure_local_models(cfg, emit)  # before the store or a branch is written

    only = [g.strip() for g in gates.split(",") if g.strip()] if gates else None
    pipeline = HealPipeline(
        repo=root,
        config=cfg,
        store=_existing_store(root) if dry_run else _store(root),
        emit=emit,
        max_iterations=max_iterations,
        dry_run=dry_run,
        only_gates=only,
    )
    outcome = pipeline.execute()
    if as_json:
        print(json.dumps({"outcome": outcome.__dict__}, default=str), flush=True)
    else:
        from rich.table import Table

        table = Table(title=f"council heal: {outcome.status}")
        for col in ("#", "gate", "failure", "classification", "recovery", "result", "cost"):
            table.add_column(col)
        for it in outcome.iterations:
            failure = "; ".join(f"{f['error_type']} [{f['hash']}]" for f in it.get("failures", []))
            rec = it.get("recovery") or {}
            table.add_row(
                str(it.get("iteration", "")),
                it.get("gate", ""),
                failure,
                ", ".join(it.get("classification", [])),
                str(rec.get("description") or rec.get("kind") or rec.get("action") or ""),
                str(it.get("result", "")),
                f"${it.get('cost_usd', 0):.4f}",
            )
        console.print(table)
        for track in outcome.tracks:
            gates = ", ".join(f"{g} {r}" for g, r in track["gates"].items())
            name = f"{track['language'] or 'repository'} ({track['root'] or '.'})"
            console.print(f"{name}: {track['status']}: {gates}")
        if outcome.flaky:
            console.print(f"flaky (passed on a re-run, not edited): {', '.join(outcome.flaky)}")
        console.print(f"{outcome.status}: {outcome.reason}")
        if outcome.run_id:
            console.print(f"run: {outcome.run_id} (`council show {outcome.run_id}`)")
        if outcome.branch:
            console.print(f"branch: [cyan]{outcome.branch}[/]  backup: {outcome.backup_branch}")
        if outcome.report_path:
            console.print(f"report: {outcome.report_path}")
    raise typer.Exit(0 if outcome.status in ("green",) else 1)


def _finish(outcome, as_json: bool) -> None:
    if as_json:
        print(json.dumps({"outcome": outcome.__dict__}), flush=True)
    else:
        if outcome.branch:
            console.print(f"branch: [cyan]{outcome.branch}[/]  worktree: {outcome.worktree}")
        if outcome.pr_url:
            console.print(f"pull request: {outcome.pr_url}")
    raise typer.Exit(outcome.exit_code)


@app.command("runs")
def list_runs(
    repo: RepoOpt = None,
    limit: Annotated[int, typer.Option(help="How many runs to list.")] = 20,
    as_json: JsonOpt = False,
) -> None:
    """History of runs in this repository."""
    from council.render import runs_table

    store = _existing_store(_repo(repo))
    runs = store.list_runs(limit=limit) if store is not None else []
    if as_json:
        print(json.dumps([_run_dict(r) for r in runs], default=str))
    elif not runs:
        console.print("no runs yet")
    else:
        console.print(runs_table(runs))


def _run_dict(r) -> dict:
    return (
        {k: v for k, v in vars(r).items() if not k.startswith("_")}
        if hasattr(r, "__dict__")
        else dict(r)
    )


@app.command()
def show(
    run_id: Annotated[
        str | None, typer.Argument(help="Run id or prefix (default: latest).")
    ] = None,
    repo: RepoOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """A run's timeline, tests, model calls, tokens, cost and diff stat."""
    from council.render import show_run

    root = _repo(repo)
    store = _existing_store(root)
    record = None
    if store is not None:
        record = store.get_run(run_id) if run_id else store.latest_run()
    if record is None:
        raise UsageError(f"no run {'`' + run_id + '` ' if run_id else ''}in {root}")
    events = store.events(record.id)
    if as_json:
        print(
            json.dumps(
                {
                    "run": _run_dict(record),
                    "events": [json.loads(e.model_dump_json()) for e in events],
                },
                default=str,
            )
        )
        return
    show_run(console, record, events, store.summary(record.id), _diffstat(root, record))


def _diffstat(repo: Path, record) -> str:
    if not record.branch:
        return ""
    base = subprocess.run(  # nosec B603 B607 - fixed git argv
        ["git", "-C", str(repo), "merge-base", "HEAD", record.branch],
        capture_output=True,
        text=True,
        check=False,
    ).stdout.strip()
    if not base:
        return ""
    return subprocess.run(  # nosec B603 B607
        ["git", "-C", str(repo), "diff", "--stat", base, record.branch],
        capture_output=True,
        text=True,
        check=False,
    ).stdout.rstrip()


@app.command()
def schema(
    name: Annotated[str, typer.Argument(help="plan, context, review, or 'all'.")] = "all",
) -> None:
    """Print the JSON schema of a persona's structured output."""
    from council.personas import SCHEMAS

    if name == "all":
        print(json.dumps({k: v.model_json_schema() for k, v in SCHEMAS.items()}, indent=2))
        return
    if name not in SCHEMAS:
        raise UsageError(f"unknown schema '{name}' (known: {', '.join(SCHEMAS)}, all)")
    print(json.dumps(SCHEMAS[name].model_json_schema(), indent=2))


# typer 0.29 vendors click (typer._click); older typers use click itself. Either way these are
# the classes its parser raises for command-line mistakes.
_CLICK_ERRORS = tuple({c for c in typer.BadParameter.__mro__ if c.__name__ == "ClickException"})


def _exit_with(exc: CouncilError) -> NoReturn:
    # Messages are plain text: a `[...]` in a path or a YAML key is not rich markup.
    err_console.print(Text.assemble(("error:", "bold red"), " ", exc.message))
    if exc.hint:
        err_console.print(exc.hint, markup=False)
    sys.exit(exc.exit_code)


def main() -> None:
    os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")
    try:
        # Not standalone: typer hands back `typer.Exit` codes (and Ctrl-C as 130) as the return
        # value instead of exiting, and lets usage errors and CouncilErrors through to here.
        code = app(standalone_mode=False)
    except CouncilError as exc:
        _exit_with(exc)
    except typer.Exit as exc:
        sys.exit(exc.exit_code)
    except KeyboardInterrupt:
        code = 130
    except _CLICK_ERRORS as exc:
        exc.show()
        sys.exit(exc.exit_code)
    except typer.Abort:
        code = 130
    except Exception as exc:
        # A missing folder (`--out /missing/dir/x`), a full disk, a corrupt .council/council.db:
        # the user fixes these outside council, so a message and exit 2, not a traceback.
        known = as_user_error(exc)
        if known is None:
            raise
        _exit_with(known)
    if code == 130:
        err_console.print("interrupted; `council resume` continues the run")
    sys.exit(code if isinstance(code, int) else 0)


if __name__ == "__main__":
    main()
