"""Failure analysis of a cloud objective: the error's class and signature, what worked before
for the same signature (the store's fix memory), Microsoft Learn documents, and the DevOps
persona's reading of it all (a structured answer through the gateway)."""

from __future__ import annotations

from pydantic import BaseModel, Field


class CloudFailureAnalysis(BaseModel):
    """DevOps's reading of a failed cloud operation."""

    cause: str = Field(description="what went wrong, in one or two sentences")
    evidence: str = Field("", description="the words of the error that show it")
    fix: str = Field(description="the smallest safe change that makes it work")
    retry_worth_it: bool = Field(False, description="would retrying unchanged help?")
    docs: list[str] = Field(default_factory=list, description="URLs of the documents cited")
