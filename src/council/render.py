"""Rendering for people: live event lines during a run, and the `runs` / `show` views, with rich."""

from __future__ import annotations

import datetime as dt
from typing import Any

from rich.console import Console
from rich.markup import escape
from rich.table import Table
from rich.text import Text

from council.events import (
    DOIT_KINDS,
    BaseEvent,
    CommandRun,
    CommitMade,
    EditApplied,
    EditRefused,
    ModelCall,
    ModelProgress,
    Notice,
    ReviewMade,
    RunFinished,
    RunStarted,
    StepFinished,
    StepStarted,
    TestsReported,
)

HEAL_KINDS = frozenset(
    {
        "failure_classified",
        "memory_hit",
        "recovery_tried",
        "flaky_detected",
        "patch_proposed",
        "patch_reviewed",
        "patch_applied",
        "patch_refused",
    }
)  # not iteration_finished: the iteration's StepFinished line says how it ended

PERSONA_TITLES = {
    "pacer": "Pacer",
    "maven": "Maven",
    "guardian": "Guardian",
    "builder": "Builder",
    "artisan": "Artisan",
}


def _short(argv: list[str], limit: int = 90) -> str:
    text = " ".join(argv)
    return escape(text if len(text) <= limit else text[: limit - 1] + "…")


def _count(items: Any, noun: str) -> str:
    return f"{len(items)} {noun}" + ("" if len(items) == 1 else "s")


PLAIN_PROGRESS_EVERY_S = 10.0  # not a terminal (a pipe, a CI log): one line per call this often


def progress_text(event: ModelProgress, width: int | None = None) -> str:
    """`Pacer · openai/gpt-4o · 12.3s · 340 tokens · 27.6 tok/s` (plain text). Longer than
    `width`: the model goes first, then the words, so time, tokens and rate stay readable."""
    who = PERSONA_TITLES.get(event.persona or "", event.persona or "?")
    model = event.model or event.alias
    parts = [who, model, f"{event.elapsed_s:.1f}s"]
    if event.tokens:
        parts.append(f"{event.tokens} tokens")
        if event.tokens_per_s:
            parts.append(f"{event.tokens_per_s:.1f} tok/s")
    else:
        parts.append("waiting for the answer")  # the prompt is read, or the call is not streamed
    text = " · ".join(parts)
    if width is not None and len(text) > width:
        parts.remove(model)
        text = " · ".join(parts)
    if width is not None and len(text) > width:
        text = " ".join(parts).replace(" tokens", "t").replace(" tok/s", "/s")
    return text


class _ProgressLines:
    """What is in flight, as rich renders it under the printed lines (one line per call)."""

    def __init__(self) -> None:
        self.calls: dict[str, ModelProgress] = {}

    def __rich_console__(self, console: Console, options: Any) -> Any:
        room = options.max_width - 4
        lines = ("  … " + progress_text(e, room) for e in self.calls.values())
        yield Text("\n".join(lines), style="dim", no_wrap=True, overflow="ellipsis")


_LIVE: set[LiveRenderer] = set()  # renderers with a live line on screen


def close_live_lines() -> None:
    """Stop every live line: on the way out, however the command ended, the cursor comes back."""
    for renderer in list(_LIVE):
        renderer.close()


class LiveRenderer:
    """An event sink that prints one line per fact, with tokens and cost so far.

    A model call in flight is a live line (persona, model, elapsed, tokens, tokens/s) on a
    terminal, redrawn in place and gone when the call ends; elsewhere a plain line every
    PLAIN_PROGRESS_EVERY_S seconds of the call.
    """

    def __init__(self, console: Console, *, verbose: bool = False) -> None:
        self.console = console
        self.verbose = verbose
        self._lines = _ProgressLines()
        self._live: Any = None
        self._printed_at: dict[str, float] = {}  # plain mode: call id -> elapsed at last line
        self._failed: tuple[str, str] | None = None  # the last failed step and its reason

    def __call__(self, event: BaseEvent) -> None:
        if isinstance(event, ModelProgress):
            self._progress(event)
            return
        if isinstance(event, ModelCall | RunFinished):
            self._end_calls(event)
        self._print(event)

    def _progress(self, event: ModelProgress) -> None:
        if not self.console.is_terminal:
            last = self._printed_at.get(event.call_id, 0.0)
            if event.elapsed_s - last >= PLAIN_PROGRESS_EVERY_S:
                self._printed_at[event.call_id] = event.elapsed_s
                self.console.print("  … " + progress_text(event), style="dim", markup=False)
            return
        self._lines.calls[event.call_id] = event
        if self._live is None:
            from rich.live import Live

            self._live = Live(
                self._lines, console=self.console, transient=True, refresh_per_second=4
            )
            self._live.start()
            _LIVE.add(self)
        self._live.refresh()

    def close(self) -> None:
        """Stop the live line (it hides the cursor while it runs)."""
        self._lines.calls.clear()
        if self._live is not None:
            self._live.stop()
            self._live = None
        _LIVE.discard(self)

    def _end_calls(self, event: BaseEvent) -> None:
        """A ModelCall ends the calls of its persona and step (RunFinished ends all of them)."""
        for call_id, p in list(self._lines.calls.items()):
            if isinstance(event, RunFinished) or (
                p.persona == event.persona and p.step == event.step
            ):
                del self._lines.calls[call_id]
        if not self._lines.calls and self._live is not None:
            self.close()

    def _print(self, event: BaseEvent) -> None:  # noqa: C901 - one branch per event kind
        c = self.console
        if isinstance(event, RunStarted) and not event.branch:  # a flow with no worktree (doit)
            c.print(f"[bold]run {event.run_id}[/]: {escape(event.feature)}")
        elif isinstance(event, RunStarted):
            c.print(f"[bold]run {event.run_id}[/] on branch [cyan]{escape(event.branch)}[/]")
            c.print(f"  worktree {event.worktree}", style="dim", markup=False)
        elif isinstance(event, StepStarted):
            who = (
                f" ({escape(PERSONA_TITLES.get(event.persona or '', event.persona))})"
                if event.persona
                else ""
            )
            detail = f": {escape(event.detail)}" if event.detail else ""
            c.print(f"[bold blue]▶ {escape(event.step or '')}[/]{who}{detail}")
        elif isinstance(event, StepFinished):
            if event.status == "failed":
                self._failed = (event.step or "", event.detail)
                c.print(f"  [red]✗ {escape(event.step or '')} failed[/] {escape(event.detail)}")
            elif event.detail:
                c.print(f"  [green]✓[/] {escape(event.detail)}", style="dim")
        elif isinstance(event, ModelCall):
            who = escape(PERSONA_TITLES.get(event.persona or "", event.persona or "?"))
            if event.error:
                c.print(
                    f"  [red]model call failed[/] {who} · {escape(event.alias)}: "
                    f"{escape(event.error)}"
                )
                return
            cached = " [yellow](cached)[/]" if event.cached else ""
            c.print(
                f"  {who} · {escape(event.alias)} ({escape(event.model)}) · {event.prompt_tokens}→"
                f"{event.completion_tokens} tokens · {event.latency_ms / 1000:.1f}s · "
                f"${event.cost_usd:.4f} (run ${event.total_cost_usd:.4f}){cached}",
                style="dim",
                markup=True,
            )
        elif isinstance(event, CommandRun):
            if self.verbose or event.timed_out:
                flag = " [red]timed out[/]" if event.timed_out else ""
                c.print(
                    f"  $ {_short(event.argv)} → {event.exit_code} ({event.duration_s:.1f}s){flag}",
                    style="dim",
                )
        elif isinstance(event, TestsReported):
            colour = "green" if event.failed + event.errors == 0 and event.passed else "red"
            c.print(
                f"  [{colour}]tests {event.phase}: {event.passed} passed, {event.failed} failed, "
                f"{event.errors} errors[/]"
            )
            for test_id in event.failures[:8]:
                c.print(f"    ✗ {test_id}", style="dim", markup=False)
        elif isinstance(event, EditApplied):
            c.print(f"  ✎ {event.path}", style="dim", markup=False)
        elif isinstance(event, EditRefused):
            c.print(f"  [yellow]⊘ refused {escape(event.path)}[/]: {escape(event.reason)}")
        elif isinstance(event, CommitMade):
            # The subject line only: the body (tests, review, gates) is in `git log` and
            # would break the indented timeline.
            subject = event.message.strip().splitlines()[0] if event.message.strip() else ""
            c.print(f"  [green]● commit {event.sha[:10]}[/] {escape(subject)}")
        elif isinstance(event, ReviewMade):
            said = _count(event.comments, "comment")
            c.print(f"  review: [bold]{escape(event.verdict)}[/], {said}")
            for comment in event.comments[:10]:
                c.print(
                    f"    [{comment.get('severity')}] {comment.get('file', '')}:"
                    f"{comment.get('line') or ''} {comment.get('message', '')}",
                    style="dim",
                    markup=False,
                )
        elif isinstance(event, Notice):
            style = {"info": "cyan", "warning": "yellow", "error": "red"}[event.level]
            c.print(f"  [{style}]{escape(event.message)}[/]")
        elif isinstance(event, RunFinished):
            colour = "green" if event.status == "green" else "red"
            reason = event.reason
            if self._failed and self._failed[1] and reason == self._failed[1]:
                # The failed step's line just said it all (often several lines): point at it.
                reason = f"{self._failed[0]} failed (the reason is above)"
            c.print(
                f"[bold {colour}]{event.status.upper()}[/] {escape(reason)} "
                f"(cost ${event.total_cost_usd:.4f})"
            )
        elif event.kind in HEAL_KINDS:  # a heal's facts: one line each (heal_report.py)
            from council.heal_report import describe

            line = describe(event)
            if line:
                c.print(f"  [magenta]{escape(line)}[/]")
        elif event.kind in DOIT_KINDS:  # a cloud objective's facts (doit_report.py)
            from council.doit_report import describe as describe_doit

            c.print(f"  [blue]{escape(describe_doit(event))}[/]")
        elif callable(getattr(event, "summary", None)):  # a flow's own events (deploy, ...)
            c.print(f"  {event.summary()}", markup=False)


def _when(ts: Any, *, short: bool = False) -> str:
    layout = "%m-%d %H:%M" if short else "%Y-%m-%d %H:%M"
    if isinstance(ts, dt.datetime):
        return ts.strftime(layout)
    if isinstance(ts, int | float):
        return dt.datetime.fromtimestamp(ts).strftime(layout)
    return str(ts or "")


def _kind_prefix(kind: str) -> str:
    """`heal: `, `doit: `, ... before the request of a run that is not a `council run`."""
    return "" if kind == "run" else f"{kind}: "


NARROW_FEATURE = 20  # fewer columns than this left for the feature: one run per block instead


def _runs_stacked(rows: list[tuple[str, ...]], width: int) -> Text:
    """`council runs` in a narrow terminal: the id, status, cost and time on one line, the
    feature and the branch indented under it, each cut to the width."""

    def fit(text: str, room: int) -> str:
        room = max(room, 8)
        return text if len(text) <= room else text[: room - 1] + "…"

    out = Text()
    for run_id, when, status, cost, feature, branch in rows:
        colour = {"green": "green", "running": "yellow", "interrupted": "yellow"}.get(status, "red")
        facts = f"{cost}  {when}"
        out.append(run_id + "  ", style="bold")
        out.append(status, style=colour)
        if len(run_id) + len(status) + len(facts) + 4 <= width:
            out.append(f"  {facts}\n")
        else:  # very narrow: cost and time lead the feature's line
            out.append("\n")
            feature = f"{facts}  {feature}"
        out.append("  " + fit(feature, width - 2) + "\n")
        if branch:
            out.append("  " + fit(branch, width - 2) + "\n", style="dim")
    out.rstrip()
    return out


def runs_table(runs: list[Any], width: int = 80) -> Text:
    """The run history as plain columns that fit `width` (80 on a pipe): id, time, status and
    cost never shorten (an id is copied into `council show`); the feature, with the branch
    under it, takes the rest of the line and ends in "…" when it is longer."""
    rows = [
        (
            r.id,
            _when(r.created_at, short=True),
            r.status,
            f"${r.total_cost_usd:.4f}",
            _kind_prefix(getattr(r, "kind", "run")) + " ".join(r.feature.split()),
            r.branch or "",
        )
        for r in runs
    ]
    heads = ("run", "when", "status", "cost")
    widths = [max([len(h), *(len(row[i]) for row in rows)]) for i, h in enumerate(heads)]
    indent = sum(widths) + 2 * len(widths)
    if width - indent < NARROW_FEATURE:
        return _runs_stacked(rows, width)
    room = width - indent

    def fit(text: str) -> str:
        return text if len(text) <= room else text[: room - 1] + "…"

    out = Text()
    head = "".join(h.ljust(w + 2) for h, w in zip(heads, widths, strict=True))
    out.append(head + "feature / branch\n", style="bold")
    for run_id, when, status, cost, feature, branch in rows:
        colour = {"green": "green", "running": "yellow", "interrupted": "yellow"}.get(status, "red")
        out.append(run_id.ljust(widths[0] + 2) + when.ljust(widths[1] + 2))
        out.append(status.ljust(widths[2] + 2), style=colour)
        out.append(cost.rjust(widths[3]) + "  " + fit(feature) + "\n")
        if branch:
            out.append(" " * indent + fit(branch) + "\n", style="dim")
    out.rstrip()
    return out


def show_run(
    console: Console, run: Any, events: list[BaseEvent], summary: Any, diffstat: str
) -> None:
    """The `council show` view: timeline, tests, model calls, tokens, cost, diff stat."""
    colour = "green" if run.status == "green" else "red"
    console.print(
        f"[bold]run {run.id}[/]  [{colour}]{escape(run.status)}[/]  {escape(run.reason or '')}"
    )
    console.print(f"feature: {run.feature}", markup=False)
    console.print(f"repo: {run.repo}   branch: {run.branch or '-'}", markup=False)

    timeline = Table(title="timeline")
    for col in ("time", "step", "what"):
        timeline.add_column(col)
    start = events[0].ts if events else 0.0
    for e in events:
        what = _describe(e)
        if what:
            timeline.add_row(f"+{e.ts - start:6.1f}s", escape(e.step or ""), escape(what))
    console.print(timeline)
    if getattr(run, "kind", "run") == "heal":  # classification, recoveries, patches
        from council.heal_report import print_stored_heal  # old heals too (deploy: issue 12)

        print_stored_heal(console, run, events)

    calls = Table(title="model calls")
    for col in ("persona", "calls", "cached", "tokens in", "tokens out", "cost"):
        calls.add_column(col, justify="right" if col != "persona" else "left")
    for persona, row in sorted(_per_persona(events).items()):
        calls.add_row(
            escape(persona),
            str(row["calls"]),
            str(row["cached"]),
            str(row["in"]),
            str(row["out"]),
            f"${row['cost']:.4f}",
        )
    console.print(calls)
    total_in = sum(e.prompt_tokens for e in events if isinstance(e, ModelCall))
    total_out = sum(e.completion_tokens for e in events if isinstance(e, ModelCall))
    console.print(
        f"tokens: {total_in} in, {total_out} out   cost: ${run.total_cost_usd:.4f}"
        + (f"   commands: {summary.commands}" if hasattr(summary, "commands") else "")
    )
    if diffstat:
        console.print("[bold]diff stat[/]")
        console.print(diffstat, markup=False)


def _per_persona(events: list[BaseEvent]) -> dict[str, dict[str, Any]]:
    rows: dict[str, dict[str, Any]] = {}
    for e in events:
        if isinstance(e, ModelCall):
            row = rows.setdefault(
                e.persona or "?", {"calls": 0, "cached": 0, "in": 0, "out": 0, "cost": 0.0}
            )
            row["calls"] += 1
            row["cached"] += int(e.cached)
            row["in"] += e.prompt_tokens
            row["out"] += e.completion_tokens
            row["cost"] += e.cost_usd
    return rows


def _describe(e: BaseEvent) -> str:
    if callable(getattr(e, "summary", None)):
        return e.summary()  # type: ignore[attr-defined]
    if isinstance(e, StepStarted):
        return f"start ({e.persona})" if e.persona else "start"
    if isinstance(e, StepFinished):
        return f"{e.status} {e.detail}".strip()
    if isinstance(e, TestsReported):
        return f"tests {e.phase}: {e.passed} passed, {e.failed} failed, {e.errors} errors"
    if isinstance(e, EditRefused):
        return f"refused {e.path}: {e.reason}"
    if isinstance(e, CommitMade):
        return f"commit {e.sha[:10]} {(e.message.splitlines() or [''])[0]}"
    if isinstance(e, ReviewMade):
        return f"review {e.verdict} ({_count(e.comments, 'comment')})"
    if isinstance(e, Notice):
        return f"{e.level}: {e.message}"
    if isinstance(e, ModelCall) and e.error:
        return f"model call failed: {e.error}"
    if isinstance(e, RunFinished):
        return f"finished {e.status}: {e.reason}"
    if e.kind in HEAL_KINDS:
        from council.heal_report import describe

        return describe(e)
    if e.kind in DOIT_KINDS:
        from council.doit_report import describe as describe_doit

        return describe_doit(e)
    return ""
