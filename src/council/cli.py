"""The `council` command line: thin; parses, calls a pipeline, renders its events.

Exit codes: 0 green and committed, 1 not green within limits, 2 usage or configuration error.
"""

from __future__ import annotations

import functools
import json
import os
import shutil
import subprocess  # nosec B404 - git diff --stat for `show`, fixed argv
import sys
import time
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from council.cli_ci import register as register_ci_commands
from council.cli_deploy import deploy_app
from council.cli_doit import register as register_doit
from council.cli_gateway import gateway_app
from council.cli_help import CouncilGroup, plain_help
from council.cli_models import models_app
from council.cli_prompts import prompts_app  # cheap: typer and stdlib until a command runs
from council.cli_serve import register as register_serve_commands
from council.errors import CouncilError, UsageError, as_user_error

if TYPE_CHECKING:
    from rich.console import Console

    from council.config import LanguageConfig

# Start-up time matters (`council --help` in 0.3 s, a run's first event in 0.5 s): pydantic
# models, rich, the store and LiteLLM are imported inside the commands that use them.

# The preset names for `init --help`, kept here so help does not import council.config;
# tests/test_cli_help.py checks they equal config.PROVIDERS.
# The persona schemas (personas.SCHEMAS) for `schema --help`, without importing pydantic models;
# tests/test_cli_help.py checks they agree.
SCHEMA_NAMES = (
    "plan",
    "context",
    "review",
    "deployment_diagnosis",
    "cloud_intent",
    "cloud_failure",
)
# limits.max_iterations' upper bound (config.Limits), for the same check on the command line
# before council.config is imported; tests/test_cli_help.py checks they agree.
MAX_ITERATIONS = 50
PROVIDER_NAMES = ("openai", "anthropic", "azure", "ollama", "local", "litellm-proxy")

plain_help()
app = typer.Typer(
    name="council",
    cls=CouncilGroup,
    help="AI Council: a feature request in, a tested and reviewed change on a branch out.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    # Plain click help: readable at any width and on a pipe, and rendering it with rich would
    # cost a third of a second of imports before anything is printed.
    rich_markup_mode=None,
)
app.add_typer(deploy_app, name="deploy")
app.add_typer(models_app, name="models")
app.add_typer(gateway_app, name="gateway")  # the warm gateway process (cli_gateway.py)
app.add_typer(prompts_app, name="prompts")
register_doit(app)  # council doit, budget, audit


@functools.cache
def _out() -> Console:
    from rich.console import Console

    # soft_wrap: messages keep their own line breaks; rich must not re-wrap paths and commands
    # at 80 columns when the output is a pipe or a file.
    return Console(stderr=False, highlight=False, soft_wrap=True)


@functools.cache
def _err() -> Console:
    from rich.console import Console

    return Console(stderr=True, highlight=False, soft_wrap=True)


RepoOpt = Annotated[
    Path, typer.Option("--repo", "-r", help="The git repository to work on.", show_default=False)
]
JsonOpt = Annotated[
    bool,
    typer.Option(
        "--json",
        help="Print the events as JSON lines (one object per line), the outcome last.",
    ),
]


def _repo(path: Path | None) -> Path:
    repo = (path or Path.cwd()).resolve()
    if not repo.is_dir():
        raise UsageError(f"{repo} is not a directory")
    return repo


def _require_top_level(repo: Path) -> None:
    """UsageError unless `repo` is the top level of a git repository with a commit to branch
    from. Checked before anything is written, so a refused run leaves no `.council/` behind."""
    from council.workspace.git import require_commit, require_git_repo

    if shutil.which("git") is None:
        from council.errors import EnvironmentProblem

        raise EnvironmentProblem(
            "git is not installed (or not on PATH)",
            hint="Install git (Debian/Ubuntu: apt-get install git; scripts/setup does it) "
            "and run again.",
        )
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
        emit.subscribe(_JsonLines())
    else:
        emit.subscribe(LiveRenderer(_out(), verbose=verbose))
    return emit


class _JsonLines:
    """`--json`: every event as a line; a call's progress at most every JSON_PROGRESS_EVERY_S."""

    JSON_PROGRESS_EVERY_S = 2.0

    def __init__(self) -> None:
        self._last: dict[str, float] = {}  # call id -> elapsed at its last progress line

    def __call__(self, event) -> None:
        if event.kind == "model_progress":
            last = self._last.get(event.call_id)
            if last is not None and event.elapsed_s - last < self.JSON_PROGRESS_EVERY_S:
                return
            self._last[event.call_id] = event.elapsed_s
        print(event.model_dump_json(), flush=True)


def detect_languages(repo: Path) -> dict[str, LanguageConfig]:
    """The languages `council init` writes gates for: the projects a run would find (Python,
    JavaScript/TypeScript, Java; top level or one or two folders down)."""
    from council.config import LanguageConfig
    from council.pipelines.tracks import detect_projects

    found: dict[str, LanguageConfig] = {}
    projects = detect_projects(repo)
    for language, root in projects:
        if language in found:
            continue  # two projects of one language: the first one's gates (edit the file)
        # A project below the top is written with its root, as a run would discover it.
        where = {"root": root} if root or len(projects) > 1 else {}
        if language == "python":
            found[language] = LanguageConfig(test_dir="tests", **where)
        elif language == "javascript":
            # The runner and tools are detected: these are switches for ESLint, Prettier and
            # tsc (each runs only when the project has it), named for what they switch.
            found[language] = LanguageConfig(
                lint="eslint", format="prettier --check", sast="", **where
            )
        else:  # Java: compile and test; no lint, format or SAST tool is run
            found[language] = LanguageConfig(lint="", format="", sast="", typecheck="", **where)
    return found


@app.command()
def init(
    provider: Annotated[
        str, typer.Option(help=f"Model provider preset: {', '.join(PROVIDER_NAMES)}.")
    ] = "openai",
    repo: RepoOpt = None,
    force: Annotated[
        bool, typer.Option("--force", help="Overwrite an existing council.yaml.")
    ] = False,
) -> None:
    """Write council.yaml for this repository: models, personas, limits, detected languages."""
    from council.config import CONFIG_FILE, dump_config, preset

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
        "# languages: a Python gate names its tool and arguments; JavaScript's are switches for\n"
        '# the tools the project has (eslint, prettier, tsc); "" switches a gate off.\n'
    )
    target.write_text(header + dump_config(doc), encoding="utf-8")
    _out().print(f"wrote {target}")
    _out().print(f"languages detected: {', '.join(languages) or 'none'}")
    if not any((folder / ".git").exists() for folder in (root, *root.parents)):
        _out().print(
            f"note: {root} is not a git repository yet; `council run` needs one with a first "
            "commit (git init && git add -A && git commit -m init)",
            markup=False,
        )
    needs = sorted(
        {
            v[len("os.environ/") :]
            for m in doc["models"]
            for v in m["litellm_params"].values()
            if isinstance(v, str) and v.startswith("os.environ/")
        }
    )
    missing = [name for name in needs if not os.environ.get(name)]
    first = doc["models"][0]["litellm_params"]
    if provider == "ollama":  # no key: a server to start and a model to pull
        name = first["model"].split("/", 1)[1]
        _out().print(
            f"needs Ollama serving at {first['api_base']} with the model pulled: "
            f"ollama pull {name}",
            markup=False,
        )
    elif provider == "local":
        _out().print(
            "the embedded model runs on this machine: `council models check` says whether it "
            "can be had, `council models pull` downloads it (or the first run does)",
            markup=False,
        )
    if missing:
        _out().print(f"set {' and '.join(missing)} before running", markup=False)
    elif needs:
        _out().print(f"read from the environment: {', '.join(needs)}", markup=False)


# Shown under `council run --help`; tests/test_cli_help.py parses each line as the command
# line would (\b keeps click from re-wrapping the block).
RUN_EXAMPLES = """\b
Examples:
  council run "add a /health endpoint that answers ok"
  council run "add CSV export of the report" --max-iterations 3 --budget 0.5
  council run --tests tests/test_leap.py "make the leap year tests pass"
  council run "add a /health endpoint" --json > run.jsonl
"""


@app.command(epilog=RUN_EXAMPLES)
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
            help="Tests-given mode: these test files or test ids exist already (repeat for "
            "several): path, path::test_name, 'path -k EXPR', 'path -t NAME', Class#method. "
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
    _check_limits(budget=budget, max_iterations=max_iterations)
    _starting(as_json)
    emit = _emitter(as_json, verbose)
    root = _repo(repo)
    # Before anything is written: a subdirectory or a plain folder must not get a `.council/`.
    _require_top_level(root)
    from council.config import resolve_config

    cfg, source = resolve_config(root, config)
    _preload_models(cfg)  # overlaps the git, store and worktree work below
    _override_limits(cfg, budget=budget, max_iterations=max_iterations)
    if not as_json:
        _out().print(f"config: {source}", style="dim")
    from council.pipelines.models import ensure_local_models

    ensure_local_models(cfg, emit)  # a missing local model file: refused before any write
    _require_tools(root, cfg)
    _say_uncommitted(root, emit, given=tests or [])
    with _run_lock(root, "council run"):
        from council.pipelines.flows import start_flow

        store = _store(root)
        pipeline = start_flow(
            "run",
            repo=root,
            feature=feature,
            config=cfg,
            store=store,
            emit=emit,
            open_pr=pr,
            given_tests=tests,
        )
        outcome = _execute(pipeline)
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
    verbose: Annotated[bool, typer.Option("--verbose", "-v", help="Show every command.")] = False,
) -> None:
    """Continue a run that was killed or stopped, from its last completed step."""
    _check_limits(budget=budget)
    root = _repo(repo)
    # Which run first: with none to resume, a configuration problem is beside the point.
    store = _existing_store(root)
    record = None
    if store is not None:
        record = store.get_run(run_id) if run_id else store.latest_run()
    if record is None:
        raise UsageError(
            f"no run {'`' + run_id + '` ' if run_id else ''}to resume in {root}",
            hint="`council runs` lists the runs of this repository",
        )
    from council.pipelines.flows import resumable

    resumable(record)  # a green run or a kind that cannot resume: refused before the lock
    from council.config import resolve_config

    cfg, _ = resolve_config(root, config)
    _override_limits(cfg, budget=budget)
    emit = _emitter(as_json, verbose)
    with _run_lock(root, f"council resume {record.id}"):
        from council.pipelines.flows import resume_run

        pipeline = resume_run(record.id, config=cfg, store=store, emit=emit)
        outcome = _execute(pipeline)
    if record.kind == "heal":  # a heal prints its own table (cli_heal.py)
        from council.cli_heal import finish_heal

        finish_heal(outcome, _out(), as_json)
    _finish(outcome, as_json)


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
    _check_limits(budget=budget, max_iterations=max_iterations)
    root = _repo(repo)
    _require_top_level(root)
    from council.config import resolve_config

    cfg, source = resolve_config(root, config)
    _override_limits(cfg, budget=budget)
    if not as_json:
        _out().print(f"config: {source}", style="dim")
    from council.pipelines.models import ensure_local_models

    emit = _emitter(as_json, verbose)
    ensure_local_models(cfg, emit)  # before the store or a branch is written

    only = [g.strip() for g in gates.split(",") if g.strip()] if gates else None
    from council.cli_heal import finish_heal, start_heal

    if dry_run:  # on a scratch copy: it neither needs nor takes the repository's lock
        from council.pipelines.heal import dry_run as plan

        view = plan(repo=root, config=cfg, store=_existing_store(root), emit=emit, only_gates=only)
        finish_heal(view, _out(), as_json)
    with _run_lock(root, "council heal"):
        flow = start_heal(
            root, cfg, _store(root), emit, max_iterations=max_iterations, only_gates=only
        )
        outcome = _execute(flow)
    finish_heal(outcome, _out(), as_json)


def _require_tools(root: Path, cfg) -> None:
    """Node for a JavaScript project, a JDK for a Java one: checked before a branch or worktree
    is made, so a missing tool is exit 2 at once with what to install (the toolchain's own
    message), not an error after the set-up."""
    from council.errors import EnvironmentProblem, ToolchainError
    from council.pipelines.tracks import detect_projects

    configured = [(name, lc.root) for name, lc in cfg.languages.items() if lc.root is not None]
    languages = {language for language, _ in configured or detect_projects(root)}
    try:
        if "javascript" in languages:
            from council.toolchains.node_env import find_node

            find_node()
        if "java" in languages:
            from council.toolchains.java_env import JAVAC_MISSING, find_jdk_tool

            if find_jdk_tool("javac") is None:
                raise ToolchainError(JAVAC_MISSING)
    except ToolchainError as exc:
        raise EnvironmentProblem(exc.message, hint=exc.hint) from None


def _say_uncommitted(root: Path, emit, given: list[str]) -> None:
    """A run branches from HEAD: changes not committed are not part of it. Said before it
    starts, so nobody wonders where their edit went (untracked files are left out of the count:
    a new council.yaml or a test file for --tests is usual, and --tests reads those)."""
    from council.events import Notice

    changed = subprocess.run(  # nosec B603 B607 - fixed git argv
        ["git", "-C", str(root), "status", "--porcelain", "--untracked-files=no"],
        capture_output=True,
        text=True,
        check=False,
    ).stdout.splitlines()
    # --tests files are read from the checkout as they are: not left out, so not counted.
    taken = set()
    for spec in given:
        path = spec.split("::")[0].split(" ")[0].split("#")[0]
        taken.add(path)
        here = Path(path).resolve()
        if here.is_relative_to(root):
            taken.add(here.relative_to(root).as_posix())
    changed = [line for line in changed if line[3:].strip('"') not in taken]
    if changed:
        files, them = ("1 file", "it") if len(changed) == 1 else (f"{len(changed)} files", "them")
        emit(
            Notice(
                level="warning",
                message=f"{files} changed but not committed: the run works from HEAD without "
                f"{them} (commit first to include {them})",
            )
        )


def _check_limits(*, budget: float | None = None, max_iterations: int | None = None) -> None:
    """The command line's limits obey the same rules as council.yaml's; checked before any
    branch, worktree or store is made."""
    if budget is not None and not budget > 0:  # `not >` also refuses nan
        raise UsageError(f"--budget must be more than 0 (USD), got {budget:g}")
    if budget is not None and budget == float("inf"):
        raise UsageError("--budget must be a finite amount (USD), got inf")
    if max_iterations is not None and max_iterations < 1:
        raise UsageError(f"--max-iterations must be at least 1, got {max_iterations}")
    if max_iterations is not None and max_iterations > MAX_ITERATIONS:
        raise UsageError(f"--max-iterations must be at most {MAX_ITERATIONS}, got {max_iterations}")


def _override_limits(cfg, *, budget: float | None = None, max_iterations: int | None = None):
    if max_iterations is not None:
        cfg.limits.max_iterations = max_iterations
    if budget is not None:
        cfg.limits.budget_usd = budget


STARTING = "checking the repository, configuration and models"


def _starting(as_json: bool) -> None:
    """The run's first event, before the heavy imports: the user sees at once that it runs.

    Written by hand, as the renderer and --json would write StepStarted(step="start"): the
    event models (pydantic: ~0.3 s of CPU) load only after it (tests/test_gateway_daemon.py
    checks the line against the model)."""
    if as_json:
        line = {"ts": time.time(), "run_id": None, "step": "start", "kind": "step_started"}
        line.update(persona=None, detail=STARTING)
        print(json.dumps(line, separators=(",", ":")), flush=True)
    elif sys.stdout.isatty() and not os.environ.get("NO_COLOR"):
        print(f"\x1b[1;34m▶ start\x1b[0m: {STARTING}", flush=True)
    else:
        print(f"▶ start: {STARTING}", flush=True)


def _preload_models(cfg=None) -> None:
    """Start the warm gateway process if it is not up (gateway/daemon: LiteLLM imported once
    for every run), else import LiteLLM (seconds of CPU) here in the background; either way it
    overlaps the worktree, environment and baseline work, and the first model call waits for it.
    """
    from council.gateway.daemon.client import warm_start

    if cfg is None:
        warm_start([])
    else:
        models = [m.model_dump(exclude_none=True) for m in cfg.models]
        warm_start(models, cfg.gateway.warm_process, cfg.gateway.idle_timeout_s)


def _run_lock(root: Path, what: str):
    from council.workspace.run_lock import RunLock

    lock = RunLock.acquire(root, what)
    if lock.took_over:
        from council.workspace.run_lock import describe

        _err().print(f"took over a stale run lock ({describe(lock.took_over)})", markup=False)
    return lock


def _execute(pipeline, go_on: str | None = None):
    """Run the pipeline with SIGTERM and SIGHUP turned into an interrupt, as ^C is, so a killed
    run records "interrupted" and says how to resume instead of staying "running"."""
    from council.interrupts import interrupts_as_keyboard_interrupt

    # Started at once by `run`; here for resume and heal (their modules are imported by now).
    # LiteLLM loads beside the worktree, environment and baseline work (subprocesses, which
    # leave the GIL free).
    _preload_models(getattr(pipeline, "config", None))
    with interrupts_as_keyboard_interrupt(getattr(pipeline, "run_id", None), go_on):
        return pipeline.execute()


def _finish(outcome, as_json: bool) -> None:
    if as_json:
        print(json.dumps({"outcome": outcome.as_dict()}), flush=True)
    else:
        if outcome.branch:
            _out().print(f"branch: [cyan]{outcome.branch}[/]  worktree: {outcome.worktree}")
        if outcome.details.get("pr_url"):
            _out().print(f"pull request: {outcome.details['pr_url']}")
    raise typer.Exit(outcome.exit_code)


@app.command("runs")
def list_runs(
    repo: RepoOpt = None,
    limit: Annotated[int, typer.Option(help="How many runs to list.", min=1)] = 20,
    as_json: Annotated[
        bool, typer.Option("--json", help="Print the runs as one JSON array, newest first.")
    ] = False,
) -> None:
    """History of runs in this repository."""
    from council.render import runs_table

    store = _existing_store(_repo(repo))
    if store is not None:
        store.mark_orphans()  # a run whose process is gone is interrupted, not running
    runs = store.list_runs(limit=limit) if store is not None else []
    if as_json:
        print(json.dumps([_run_dict(r) for r in runs], default=str))
    elif not runs:
        _out().print("no runs yet")
    else:
        # A pipe gets 80 columns; a terminal its own width.
        _out().print(runs_table(runs, _out().width), soft_wrap=True)


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
    as_json: Annotated[
        bool,
        typer.Option("--json", help="Print the run and its events as one JSON object."),
    ] = False,
) -> None:
    """A run's timeline, tests, model calls, tokens, cost and diff stat."""
    from council.render import show_run

    root = _repo(repo)
    store = _existing_store(root)
    record = None
    if store is not None:
        store.mark_orphans()  # a run whose process is gone is interrupted, not running
        record = store.get_run(run_id) if run_id else store.latest_run()
    if record is None:
        raise UsageError(
            f"no run {'`' + run_id + '` ' if run_id else ''}in {root}",
            hint="`council runs` lists the runs of this repository"
            if run_id
            else '`council run "<feature>"` starts one',
        )
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
    show_run(_out(), record, events, store.summary(record.id), _diffstat(root, record))


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
    name: Annotated[
        str, typer.Argument(help=f"{', '.join(SCHEMA_NAMES)}, or 'all'.", show_default=True)
    ] = "all",
) -> None:
    """Print the JSON schema of a persona's structured output."""
    from council.personas import SCHEMAS

    if name == "all":
        print(json.dumps({k: v.model_json_schema() for k, v in SCHEMAS.items()}, indent=2))
        return
    if name not in SCHEMAS:
        raise UsageError(f"unknown schema '{name}' (known: {', '.join(SCHEMAS)}, all)")
    print(json.dumps(SCHEMAS[name].model_json_schema(), indent=2))


register_serve_commands(app)  # serve, worker, submit, keys (cli_serve.py)
register_ci_commands(app)  # ci init (cli_ci.py)


# typer 0.29 vendors click (typer._click); older typers use click itself. Either way these are
# the classes its parser raises for command-line mistakes.
_CLICK_ERRORS = tuple({c for c in typer.BadParameter.__mro__ if c.__name__ == "ClickException"})


def _report(exc: CouncilError) -> int:
    """Print a user's error as a message (never a traceback); its exit code."""
    from rich.text import Text

    # Messages are plain text: a `[...]` in a path or a YAML key is not rich markup.
    _err().print(Text.assemble(("error:", "bold red"), " ", exc.message))
    if exc.hint:
        _err().print(exc.hint, markup=False)
    return exc.exit_code


def main() -> None:
    os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")
    _exit_now(_main())


def _main() -> int:
    """Run the command line; the exit code."""
    try:
        # Not standalone: typer hands back `typer.Exit` codes (and Ctrl-C as 130) as the return
        # value instead of exiting, and lets usage errors and CouncilErrors through to here.
        code = app(standalone_mode=False)
    except CouncilError as exc:
        return _report(exc)
    except typer.Exit as exc:
        return exc.exit_code
    except KeyboardInterrupt:
        code = 130
    except _CLICK_ERRORS as exc:
        exc.show()
        return exc.exit_code
    except typer.Abort:
        code = 130  # click's form of a KeyboardInterrupt
    except Exception as exc:
        # A missing folder (`--out /missing/dir/x`), a full disk, a corrupt .council/council.db:
        # the user fixes these outside council, so a message and exit 2, not a traceback.
        known = as_user_error(exc)
        if known is None:
            raise
        return _report(known)
    if code == 130:
        # SIGTERM and SIGHUP become an interrupt too (interrupts.py): say which, and which run.
        from council.interrupts import last_interrupt

        caught = last_interrupt()
        if caught is not None:
            _err().print(caught.message(), markup=False)
            return caught.exit_code
        _err().print("interrupted; `council resume` continues the run")
    return code if isinstance(code, int) else 0


def _exit_now(code: int) -> None:
    """Exit without tearing down every module: with LiteLLM loaded, the interpreter's own
    finalisation takes seconds after the last line is printed. Everything of ours is written
    (the store commits each write); exit handlers still run, then the process ends."""
    import atexit

    if "council.render" in sys.modules:  # a live line may be on screen: end it first
        from council.render import close_live_lines

        close_live_lines()
    run_exit_handlers = getattr(atexit, "_run_exitfuncs", None)
    if run_exit_handlers is None:  # not CPython: the normal way out
        sys.exit(code)
    run_exit_handlers()
    try:
        sys.stdout.flush()
        sys.stderr.flush()
    except (OSError, ValueError):
        pass  # a closed pipe: nothing more to say anyway
    os._exit(code)


if __name__ == "__main__":
    main()
