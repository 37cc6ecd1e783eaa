"""Plain records the store hands back: runs, steps, model exchanges, commands and run summaries."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any


@dataclass(frozen=True)
class RunRecord:
    id: str
    created_at: float  # epoch seconds
    feature: str
    repo: str
    branch: str | None
    worktree: str | None
    status: str  # running / green / failed / error / stopped / interrupted
    reason: str
    total_cost_usd: float
    config: dict[str, Any]
    state: dict[str, Any]  # the pipeline's own state, for resume
    kind: str = "run"  # run (`council run`) or heal (`council heal`)
    pid: int | None = None  # the process that executes (or executed) the run
    host: str | None = None

    @property
    def created(self) -> datetime:
        return datetime.fromtimestamp(self.created_at, tz=UTC)


@dataclass(frozen=True)
class StepRecord:
    run_id: str
    name: str
    status: str  # started / ok / failed
    started_at: float
    finished_at: float | None
    output: dict[str, Any] | None


@dataclass(frozen=True)
class ExchangeRecord:
    run_id: str
    seq: int
    ts: float
    step: str | None
    persona: str | None
    alias: str
    model: str
    messages: list[dict[str, Any]]
    response: str
    prompt_tokens: int
    completion_tokens: int
    cost_usd: float
    latency_ms: float
    cached: bool
    error: str | None


@dataclass(frozen=True)
class CommandRecord:
    run_id: str
    seq: int
    ts: float
    step: str | None
    argv: list[str]
    cwd: str
    exit_code: int | None
    duration_s: float
    timed_out: bool
    output_tail: str


@dataclass
class UsageTotals:
    """Model usage added up over a set of exchanges."""

    model_calls: int = 0
    cached_calls: int = 0
    failed_calls: int = 0
    prompt_tokens: int = 0
    completion_tokens: int = 0
    cost_usd: float = 0.0


@dataclass
class RunSummary:
    run_id: str
    status: str
    total: UsageTotals
    commands: int
    failed_commands: int  # non-zero exit or timed out
    personas: dict[str, UsageTotals] = field(default_factory=dict)  # "-" when no persona

    @property
    def prompt_tokens(self) -> int:
        return self.total.prompt_tokens

    @property
    def completion_tokens(self) -> int:
        return self.total.completion_tokens

    @property
    def cost_usd(self) -> float:
        return self.total.cost_usd

    @property
    def model_calls(self) -> int:
        return self.total.model_calls

    @property
    def cached_calls(self) -> int:
        return self.total.cached_calls


@dataclass(frozen=True)
class FixRecord:
    """A remembered fix for one error signature (see council.recovery.memory)."""

    signature: str
    tool: str
    error_type: str
    kind: str
    payload: dict[str, Any]
    payload_hash: str
    success_count: int
    failure_count: int
    created_at: float
    last_used_at: float
