"""The API's request and response bodies (pydantic): what the OpenAPI schema publishes."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, Field


class Problem(BaseModel):
    detail: str


class SubmitRequest(BaseModel):
    repo: str = Field(
        min_length=1,
        max_length=4096,
        description="An absolute path on the server's machine, or a git URL the server clones.",
    )
    kind: Literal["run", "heal"] = "run"
    feature: str = Field("", max_length=20000, description="The feature request (kind run).")
    tests: list[str] = Field(
        default_factory=list,
        max_length=100,
        description="Tests-given mode: test files or ids that exist already (as `--tests`).",
    )
    max_iterations: int | None = Field(None, ge=1, le=1000)
    budget: float | None = Field(None, gt=0, le=1_000_000, description="USD")
    pr: bool = Field(False, description="Push the branch and open a pull request.")
    gates: list[str] | None = Field(None, max_length=50, description="heal: the gates to run.")


class RunOut(BaseModel):
    id: str
    kind: str
    status: str
    reason: str
    feature: str
    repo: str
    branch: str | None
    created_at: float
    cost_usd: float
    job_status: str
    attempts: int
    started_at: float | None
    finished_at: float | None
    duration_s: float | None


class StepOut(BaseModel):
    name: str
    status: str
    started_at: float
    finished_at: float | None


class UsageOut(BaseModel):
    model_calls: int
    prompt_tokens: int
    completion_tokens: int
    cost_usd: float


class RunDetail(RunOut):
    steps: list[StepOut]
    usage: UsageOut
    events: int


class Health(BaseModel):
    status: Literal["ok"] = "ok"
    queued: int
    running: int
    workers: int
