"""Output schemas of the personas' structured answers (validated by the gateway)."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, Field

# `council doit`'s answers: the cloud library owns their shapes (its code reads them).
from council.cloud.analysis import CloudFailureAnalysis
from council.cloud.intent import CloudIntent


class Task(BaseModel):
    """One unit of work for one language, with criteria a test can check."""

    id: str = Field(description="short id, e.g. 'T1'")
    language: str = Field("python", description="python, javascript, typescript or java")
    title: str
    description: str = ""
    acceptance_criteria: list[str] = Field(min_length=1)
    files: list[str] = Field(default_factory=list, description="files likely created or changed")


class Plan(BaseModel):
    """Pacer's plan: the feature split into tasks, where the tests go, the contract."""

    summary: str = Field(description="one line, imperative, used as the commit subject")
    scope: str = Field("", description="conventional-commit scope, e.g. 'profile'")
    tasks: list[Task] = Field(min_length=1)
    test_files: list[str] = Field(
        default_factory=list, description="test files Guardian should create, repo-relative"
    )
    contract: str = Field("", description="interfaces between parts, e.g. the JSON shape")


class ContextSelection(BaseModel):
    """Maven's choice of files the others need to read."""

    files: list[str] = Field(default_factory=list, description="repo-relative paths to read")
    notes: str = Field("", description="conventions and facts the others must respect")


class ReviewComment(BaseModel):
    severity: Literal["high", "medium", "low", "info"]
    file: str = ""
    line: int | None = None
    message: str


class Review(BaseModel):
    """Guardian's review of the final diff."""

    verdict: Literal["approve", "request_changes"]
    summary: str
    comments: list[ReviewComment] = Field(default_factory=list)

    @property
    def high(self) -> list[ReviewComment]:
        return [c for c in self.comments if c.severity == "high"]


class DeploymentDiagnosis(BaseModel):
    """DevOps's reading of a failed deployment: what broke, the evidence, the smallest fix."""

    stage: Literal["build", "push", "provision", "deploy", "health", "unknown"] = Field(
        description="where the deployment failed"
    )
    category: Literal[
        "configuration", "dependency", "resources", "network", "permissions", "code", "transient"
    ] = Field(description="the kind of cause; transient means retrying may succeed")
    cause: str = Field(description="one sentence: why it failed")
    evidence: list[str] = Field(
        default_factory=list, description="log lines that show the cause, quoted exactly"
    )
    fix: str = Field(description="the smallest change that fixes it, in prose")
    files: list[str] = Field(
        default_factory=list, description="deployment files to change, repo-relative"
    )
    commands: list[str] = Field(
        default_factory=list,
        description="shell commands to run (each checked by the command policy before it runs)",
    )
    retry: bool = Field(False, description="whether retrying unchanged is worth it")


SCHEMAS: dict[str, type[BaseModel]] = {
    "plan": Plan,
    "context": ContextSelection,
    "review": Review,
    "deployment_diagnosis": DeploymentDiagnosis,
    "cloud_intent": CloudIntent,
    "cloud_failure": CloudFailureAnalysis,
}
