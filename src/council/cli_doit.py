"""`council doit`, `council budget show|set`, `council audit [--verify]`: cloud operations.

Registered on the main app by `register(app)`; everything heavy (the store, the cloud library,
the gateway) is imported inside the commands, so `council --help` stays fast.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer

from council.errors import UsageError

budget_app = typer.Typer(
    name="budget",
    help="Cloud budget limits (per month, day, objective, resource group) and spend.",
    no_args_is_help=True,
    add_completion=False,
)

RepoOpt = Annotated[
    Path | None,
    typer.Option("--repo", "-r", help="Where the store is (.council/ in it); default: here."),
]


def _root(repo: Path | None) -> Path:
    root = (repo or Path.cwd()).resolve()
    if not root.is_dir():
        raise UsageError(f"{root} is not a directory")
    return root


def _store(root: Path, *, create: bool):
    """The store under `root`; reading commands never create `.council/`."""
    from council.store import Store
    from council.store.store import DB_RELATIVE_PATH

    if not create and not (root / DB_RELATIVE_PATH).is_file():
        return None
    return Store.for_repo(root)


def _print(text: str) -> None:
    typer.echo(text)


@budget_app.command("show")
def budget_show(
    repo: RepoOpt = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print as JSON.")] = False,
) -> None:
    """The limits, what was spent (and is reserved) this month and today, and the last
    objectives' spend and reservations."""
    import time

    from council.cloud.budget import day_start, month_start, usd
    from council.store.ledger import BudgetBook

    store = _store(_root(repo), create=False)
    limits: dict[str, float] = {}
    used: dict[str, float] = {}
    month = day = reserved = 0.0
    records = []
    if store is not None:
        with store:
            book = BudgetBook(store)
            now = time.time()
            limits = book.limits()
            month = book.spent(since=month_start(now))
            day = book.spent(since=day_start(now))
            reserved = month - book.spent(since=month_start(now), reserved=False)
            records = book.spend_records()
            used = {"monthly": month, "daily": day}
            used.update({s: book.spent(resource_group=s[3:]) for s in limits if s[:3] == "rg:"})
    if as_json:
        doc = {
            "limits": limits,
            "spent_this_month_usd": month,
            "spent_today_usd": day,
            "reserved_usd": reserved,  # included in the two above: held by objectives under way
            "spend": [r.__dict__ for r in records],
        }
        _print(json.dumps(doc, indent=2))
        return
    if not limits:
        _print("no budget limits set (`council budget set --monthly USD` sets one)")
    for scope, limit in sorted(limits.items()):
        spent = used.get(scope)
        share = ""
        if spent is not None:
            share = f"  used {usd(spent)}" + (f" ({100 * spent / limit:.0f}%)" if limit else "")
        _print(f"{scope:<20} {usd(limit)}{share}")
    held = f" (of which {usd(reserved)} reserved by objectives under way)" if reserved else ""
    _print(f"spent this month: {usd(month)} a month committed{held}; today: {usd(day)}")
    for r in records:
        group = f" [{r.resource_group}]" if r.resource_group else ""
        state = ""
        if r.state == "reserved":
            left = (r.expires_at or 0) - time.time()
            state = f" reserved, {left / 3600:.1f} h left" if left > 0 else " reserved, lapsed"
        _print(f"  {r.objective}{group}: {usd(r.monthly_usd)}/month{state}  {r.description}")


def _limit(value: float | None, name: str) -> None:
    if value is not None and not value >= 0:  # `not >=` also refuses nan
        raise UsageError(f"--{name} must be 0 or more (USD), got {value:g}")


@budget_app.command("set")
def budget_set(
    monthly: Annotated[float | None, typer.Option(help="Monthly limit (USD).")] = None,
    daily: Annotated[float | None, typer.Option(help="Daily limit (USD).")] = None,
    objective: Annotated[float | None, typer.Option(help="Limit of one objective (USD).")] = None,
    resource_group: Annotated[
        list[str] | None,
        typer.Option("--resource-group", "--rg", help="NAME=USD: a resource group's limit."),
    ] = None,
    clear: Annotated[
        list[str] | None,
        typer.Option(help="Remove a limit: monthly, daily, objective or rg:NAME."),
    ] = None,
    repo: RepoOpt = None,
) -> None:
    """Set budget limits; every change is recorded in the audit trail."""
    from council.cloud.budget import usd, valid_scope
    from council.store.ledger import BudgetBook

    changes: dict[str, float | None] = {}
    for name, value in (("monthly", monthly), ("daily", daily), ("objective", objective)):
        _limit(value, name)
        if value is not None:
            changes[name] = value
    for item in resource_group or []:
        group, sep, amount = item.partition("=")
        try:
            value = float(amount) if sep else float("nan")
        except ValueError:
            value = float("nan")
        if not group or not value >= 0 or not valid_scope(f"rg:{group}"):
            raise UsageError(f"--resource-group wants NAME=USD, got {item!r}")
        changes[f"rg:{group}"] = value
    for scope in clear or []:
        if not valid_scope(scope):
            raise UsageError(
                f"--clear: unknown scope {scope!r} (monthly, daily, objective or rg:NAME)"
            )
        changes[scope] = None
    if not changes:
        raise UsageError("nothing to set: give --monthly, --daily, --objective, --rg or --clear")
    with _store(_root(repo), create=True) as store:
        BudgetBook(store).set_limits(changes)  # with its audit entry, in one transaction
    for scope, value in changes.items():
        _print(f"{scope}: " + ("removed" if value is None else usd(value)))


def audit(
    verify: Annotated[
        bool, typer.Option("--verify", help="Prove the trail was not altered (exit 1 if it was).")
    ] = False,
    objective: Annotated[str | None, typer.Option(help="Only this objective's entries.")] = None,
    limit: Annotated[int, typer.Option(help="Show the last N entries.")] = 50,
    as_json: Annotated[bool, typer.Option("--json", help="Print entries as JSON lines.")] = False,
    repo: RepoOpt = None,
) -> None:
    """The audit trail of cloud operations: intents, plans, commands, costs, approvals."""
    import datetime as dt

    from council.store.ledger import AuditTrail

    if limit < 1:
        raise UsageError(f"--limit must be at least 1, got {limit}")
    store = _store(_root(repo), create=False)
    if store is None:
        _print("the audit trail is empty (no `council doit` has run here)")
        return
    with store:
        trail = AuditTrail(store)
        if verify:
            problems = trail.verify()
            count = len(trail.entries())
            if problems:
                for problem in problems:
                    _print(f"ALTERED: {problem}")
                _print(f"audit trail: NOT intact ({len(problems)} problem(s) in {count} entries)")
                raise typer.Exit(1)
            _print(f"audit trail intact: {count} entries, hash chain verified")
            return
        entries = trail.entries(objective, limit=limit)
    if not entries and not as_json:
        _print("no audit entries" + (f" for objective {objective}" if objective else ""))
    for e in entries:
        if as_json:
            _print(json.dumps(e.__dict__, ensure_ascii=False))
            continue
        when = dt.datetime.fromtimestamp(e.ts, tz=dt.UTC).strftime("%Y-%m-%d %H:%M:%S")
        body = json.dumps(e.payload, ensure_ascii=False)
        if len(body) > 160:
            body = body[:157] + "..."
        _print(f"{e.seq:>5} {when} {e.objective or '-':<18} {e.kind:<10} {body}")


def doit(
    request: Annotated[
        str | None, typer.Argument(help="What to do, in words (quote it).", show_default=False)
    ] = None,
    dry_run: Annotated[
        bool,
        typer.Option(
            "--dry-run", help="Show intent, strategy, exact calls and cost; change nothing."
        ),
    ] = False,
    yes: Annotated[
        bool,
        typer.Option("--yes", "-y", help="Approve budget confirmations (never a deletion)."),
    ] = False,
    resume: Annotated[
        str | None, typer.Option("--resume", help="Continue objective OBJ from its last step.")
    ] = None,
    target: Annotated[
        str, typer.Option(help="local (Azurite on 127.0.0.1) or azure (your subscription).")
    ] = "local",
    strategy: Annotated[
        str | None, typer.Option(help="Only this strategy: sdk, azure-cli, mcp or terraform.")
    ] = None,
    mcp_command: Annotated[
        str | None, typer.Option(help="An MCP server to start (stdio), as a command line.")
    ] = None,
    mcp_url: Annotated[
        str | None, typer.Option(help="An MCP server's streamable HTTP URL.")
    ] = None,
    mcp_read_only: Annotated[
        str,
        typer.Option(
            help="Arguments that start --mcp-command read-only (when nothing is written)."
        ),
    ] = "--read-only",
    currency: Annotated[str, typer.Option(help="Currency of the cost estimate.")] = "USD",
    repo: RepoOpt = None,
    config: Annotated[Path | None, typer.Option(help="Path to a council.yaml.")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Emit events as JSON lines.")] = False,
    verbose: Annotated[bool, typer.Option("--verbose", "-v", help="Show every command.")] = False,
) -> None:
    """Carry out a cloud request: intent, strategy, cost, budget, execution, audit."""
    import shlex
    import sys

    from council import cli as base

    if (request is None) == (resume is None):
        raise UsageError('give a request (council doit "...") or --resume OBJ, not both')
    if request is not None and not request.strip():
        raise UsageError("the request is empty: say what to do")
    if resume is not None and (dry_run or strategy):
        # A resumed objective goes on as it was started (its plan and strategy are stored).
        raise UsageError("--dry-run and --strategy apply to a new request, not to --resume")
    root = _root(repo)
    from council.config import resolve_config

    cfg, source = resolve_config(root, config)
    emit = base._emitter(as_json, verbose)
    if not as_json:
        base._out().print(f"config: {source}", style="dim")
    from council.pipelines.doit.interaction import TerminalInteraction
    from council.pipelines.flows import resume_run, start_flow
    from council.pipelines.models import ensure_local_models

    ensure_local_models(cfg, emit)  # a missing model is said before any objective is recorded
    store = _store(root, create=True)
    if resume is not None:
        record = store.get_run(resume)
        if record is None or record.kind != "doit":
            raise UsageError(f"no objective {resume!r} here (see `council runs`)")
        flow = resume_run(record.id, config=cfg, store=store, emit=emit)
        if yes:  # this user approves a budget confirmation still to be given (never a deletion)
            flow.params["yes"] = True
    else:
        mcp = {
            "command": shlex.split(mcp_command or ""),
            "url": mcp_url or "",
            "read_only_args": shlex.split(mcp_read_only),
        }
        flow = start_flow(
            "doit", repo=root, feature=request, config=cfg, store=store, emit=emit,
            target=target, strategy=strategy, dry_run=dry_run, yes=yes, currency=currency,
            base=str(Path.cwd()), mcp=mcp if (mcp_command or mcp_url) else None,
        )  # fmt: skip
    if sys.stdin.isatty() and not as_json:
        flow.interaction = TerminalInteraction()
    outcome = base._execute(flow, go_on=f"`council doit --resume {flow.run_id}` continues it")
    if as_json:
        print(json.dumps({"outcome": outcome.as_dict()}), flush=True)
    else:
        from council.doit_report import plan_lines

        if flow.params.get("dry_run"):
            for line in plan_lines(store.events(flow.run_id)):
                _print(line)
        _print(f"objective: {flow.run_id} (`council audit --objective {flow.run_id}`)")
    raise typer.Exit(outcome.exit_code)


def register(app: typer.Typer) -> None:
    """Add `doit`, `budget` and `audit` to the council app."""
    app.command("doit")(doit)
    app.add_typer(budget_app, name="budget")
    app.command("audit")(audit)
