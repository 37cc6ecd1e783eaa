"""deploy.yaml: how `council deploy` runs (seed 003 §6's keys, plus the target and the IaC
flavour), validated with line-numbered errors like council.yaml.

A seed-style file (everything under `deployment:`) loads as it is; `target`, `iac`, `app` and
the health settings sit at the top level.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator
from pydantic_core import PydanticCustomError

from council.config import read_config_text, validate_yaml

DEPLOY_FILE = "deploy.yaml"
_ENV_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
# The steps of a deploy (seed 003 §4, plus the container and provisioning steps); skip_steps
# names some of them.
STEPS = (
    "create_structure",
    "generate_main",
    "generate_service",
    "run_tests",
    "build_container",
    "provision",
    "commit_push",
    "wait_for_workflow",
    "check_health",
    "fetch_logs",
    "analyze_errors",
    "apply_fix",
)
# Seed 003 §6 keys this version accepts (a seed-style file loads as it is) but does not act on:
# a deploy whose deploy.yaml changes one says so (a warning) instead of ignoring it silently.
NOT_ACTED_ON = (
    "regenerate_main",
    "regenerate_test",
    "rebuild_base_env",
    "rebuild_container",
    "rerun_tests",
    "ai_create_commits",
    "retry_on_provision_fail",
    "retry_on_test_fail",
)
# The steps `skip_steps` can skip; the others of STEPS have no separate step to skip here.
SKIPPABLE = ("generate_service", "build_container", "provision", "analyze_errors", "apply_fix")


class GithubSettings(BaseModel):
    """The GitHub route: waiting for the deploy workflow after a push."""

    model_config = ConfigDict(extra="forbid")

    # owner/name of the repository on GitHub; default: read from the remote's URL.
    repository: str | None = Field(None, pattern=r"^[\w.-]+/[\w.-]+$")
    remote: str = "origin"
    workflow: str = ".github/workflows/deploy.yml"
    wait_for_completion: bool = True
    poll_interval_seconds: float = Field(30, gt=0, le=600)
    max_wait_minutes: float = Field(15, gt=0, le=360)
    fetch_logs_on_failure: bool = True


class AzureSettings(BaseModel):
    """Where the azure target deploys. Names left out show as placeholders in a dry run."""

    model_config = ConfigDict(extra="forbid")

    # github: push and let the generated workflow build, push and deploy (it signs in with
    # OIDC); az: this machine runs the IaC deployment with the Azure CLI (what-if first).
    route: Literal["github", "az"] = "github"
    resource_group: str | None = Field(None, pattern=r"^[-\w._()]{1,90}$")
    registry: str | None = Field(None, pattern=r"^[A-Za-z0-9]{5,50}$")
    key_vault: str | None = Field(None, pattern=r"^[A-Za-z][-A-Za-z0-9]{1,22}[A-Za-z0-9]$")
    location: str = Field("westeurope", pattern=r"^[a-z0-9]+$")
    url: str | None = Field(None, pattern=r"^https?://")  # the app's URL, for health checks


class DeploymentSettings(BaseModel):
    model_config = ConfigDict(extra="forbid")

    # Code generation control: which generated files may be written again.
    regenerate_main: bool = True
    regenerate_service: bool = True
    regenerate_test: bool = True
    # Deployment control.
    rebuild_base_env: bool = False
    rebuild_container: bool = True
    rerun_tests: bool = True
    skip_provision: bool = False
    # What the model may do.
    ai_generate_code: bool = True
    ai_analyze_errors: bool = True
    ai_create_commits: bool = True
    ai_suggest_fixes: bool = True
    # Retries.
    max_retries: int = Field(3, ge=0, le=20)
    retry_on_provision_fail: bool = True
    retry_on_test_fail: bool = True
    retry_delay_seconds: float = Field(10, ge=0, le=3600)
    exponential_backoff: bool = True
    # The seed's spelling of the target; `target:` at the top level is the one to use.
    provision_mode: Literal["LOCAL", "AZURE"] | None = None
    skip_steps: list[str] = Field(default_factory=list)
    github: GithubSettings = Field(default_factory=GithubSettings)

    @field_validator("skip_steps")
    @classmethod
    def _known_steps(cls, steps: list[str]) -> list[str]:
        unknown = [s for s in steps if s not in STEPS]
        if unknown:
            raise ValueError(f"unknown step(s) {', '.join(unknown)}; steps: {', '.join(STEPS)}")
        return steps

    def retry_delay(self, attempt: int) -> float:
        """Seconds to wait before retry number `attempt` (1-based)."""
        if not self.exponential_backoff:
            return self.retry_delay_seconds
        return self.retry_delay_seconds * 2 ** max(attempt - 1, 0)


class DeployConfig(BaseModel):
    model_config = ConfigDict(extra="forbid")

    target: Literal["local", "azure"] | None = None  # None: provision_mode, else local
    iac: Literal["bicep", "terraform"] = "bicep"
    app: str | None = Field(None, pattern=r"^[A-Za-z_][\w.]*:[A-Za-z_]\w*$")  # module:variable
    health_path: str = Field("/health", pattern=r"^/")
    health_timeout_seconds: float = Field(60, gt=0, le=3600)
    # The service's environment: plain values here (never secrets), and the names of variables
    # copied from council's own environment when the service starts (secrets stay out of files).
    env: dict[str, str] = Field(default_factory=dict)
    pass_env: list[str] = Field(default_factory=list)
    deployment: DeploymentSettings = Field(default_factory=DeploymentSettings)
    azure: AzureSettings = Field(default_factory=AzureSettings)

    @field_validator("env", "pass_env")
    @classmethod
    def _variable_names(cls, value: dict[str, str] | list[str]) -> dict[str, str] | list[str]:
        bad = [name for name in value if not _ENV_NAME.fullmatch(name)]
        if bad:
            raise ValueError(f"not an environment variable name: {', '.join(bad)}")
        return value

    def service_env(self, environ: Mapping[str, str]) -> dict[str, str]:
        """`env`, plus the `pass_env` variables set in `environ`."""
        return {**self.env, **{k: environ[k] for k in self.pass_env if k in environ}}

    @model_validator(mode="after")
    def _one_target(self) -> DeployConfig:
        mode = self.deployment.provision_mode
        if self.target and mode and self.target != mode.lower():
            raise PydanticCustomError(
                "target_conflict",
                "target is '{target}' but deployment.provision_mode is '{mode}': keep one",
                {"target": self.target, "mode": mode, "loc": ("deployment", "provision_mode")},
            )
        return self

    def without_effect(self) -> list[str]:
        """The settings given a value this version does not act on (NOT_ACTED_ON, and steps
        `skip_steps` cannot skip), for the deploy's warning."""
        given, default = self.deployment, DeploymentSettings()
        out = [f"deployment.{k}" for k in NOT_ACTED_ON if getattr(given, k) != getattr(default, k)]
        out += [f"skip_steps: {step}" for step in given.skip_steps if step not in SKIPPABLE]
        return out

    def skips(self, step: str) -> bool:
        """Whether deploy.yaml skips `step` (`skip_steps`, or the switch that stands for it)."""
        d = self.deployment
        switch = {
            "generate_service": not (d.ai_generate_code and d.regenerate_service),
            "provision": d.skip_provision,
            "analyze_errors": not d.ai_analyze_errors,
            "apply_fix": not d.ai_suggest_fixes,
        }
        return step in d.skip_steps or switch.get(step, False)

    @property
    def resolved_target(self) -> str:
        mode = self.deployment.provision_mode
        return self.target or (mode.lower() if mode else "local")


def parse_deploy_config(text: str, source: str = DEPLOY_FILE) -> DeployConfig:
    return validate_yaml(text, DeployConfig, source)


def load_deploy_config(path: Path) -> DeployConfig:
    """deploy.yaml at `path`; the defaults when there is none (local target)."""
    if not path.exists():
        return DeployConfig()
    return parse_deploy_config(read_config_text(path), source=str(path))
