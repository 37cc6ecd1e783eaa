"""`council ci init`: the GitHub workflow that hands a feature request to the council, rendered
from the package's template (infra/templates/ci/council.yml.j2).

Two modes: `server` submits the request to a council server (`council submit --follow`, the
API key from a repository secret) and `job` runs the council in the workflow's own job. Both
start from `workflow_dispatch` (a `feature` input) and, unless no label is given, from an issue
labelled with it. `check_workflow` is our own gate on what is written (the tests also run
actionlint): least permissions declared, every action pinned to a version, no expression inside
a shell script (secrets and issue text reach the shell only through `env:`).
"""

from __future__ import annotations

import importlib.metadata
import re
from dataclasses import dataclass, field
from pathlib import Path

import yaml

from council.errors import UsageError
from council.infra.templating import environment

WORKFLOW_PATH = ".github/workflows/council.yml"
MODES = ("server", "job")
PYTHON_VERSION = "3.11"
ENV_NAME = re.compile(r"[A-Z_][A-Z0-9_]*")
# The label goes into a single-quoted expression string: plain label characters only.
LABEL = re.compile(r"[A-Za-z0-9][A-Za-z0-9 ._:/-]{0,49}")
PINNED = re.compile(r"[^@\s]+@(v\d+\.\d+\.\d+|[0-9a-f]{40})")
RESERVED_SECRETS = frozenset({"GITHUB_TOKEN"})


@dataclass(frozen=True)
class WorkflowSpec:
    mode: str = "server"
    label: str = "council"  # "" for no issue trigger
    install: str = field(default_factory=lambda: f"ai-council=={_version()}")
    secrets: tuple[str, ...] = ()  # job mode: provider keys passed from repository secrets
    python_version: str = PYTHON_VERSION
    timeout_minutes: int = 60


def render_workflow(spec: WorkflowSpec) -> str:
    if spec.mode not in MODES:
        raise UsageError(f"--mode {spec.mode}: not a mode", hint="Use --mode server or job.")
    if spec.label and not LABEL.fullmatch(spec.label):
        raise UsageError(
            f"--label {spec.label!r}: use letters, digits, spaces and . _ : / - (at most 50)"
        )
    for name in spec.secrets:
        if not ENV_NAME.fullmatch(name) or name in RESERVED_SECRETS:
            raise UsageError(
                f"--secret {name!r}: not a secret name",
                hint="Name a repository secret like OPENAI_API_KEY (upper case, digits, _).",
            )
    if not spec.install.strip():
        raise UsageError("--install: empty", hint="Give a pip requirement for ai-council.")
    text = environment("ci").get_template("council.yml.j2").render(**vars(spec))
    problems = check_workflow(text)
    if problems:  # a template bug, never the user's input: say so plainly
        raise RuntimeError("generated workflow fails its own check: " + "; ".join(problems))
    return text


def check_workflow(text: str) -> list[str]:
    """What is wrong with a council workflow by our rules (empty: nothing)."""
    try:
        doc = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        return [f"not YAML: {exc}"]
    if not isinstance(doc, dict) or not isinstance(doc.get("jobs"), dict):
        return ["no jobs"]
    problems = []
    if not isinstance(doc.get("permissions"), dict):
        problems.append("no top-level permissions block (least permissions must be explicit)")
    for job_id, job in doc["jobs"].items():
        for i, step in enumerate((job or {}).get("steps") or []):
            where = f"jobs.{job_id}.steps[{i}]"
            uses = step.get("uses")
            if uses is not None and not PINNED.fullmatch(str(uses)):
                problems.append(f"{where}: {uses} is not pinned to vX.Y.Z or a commit")
            if "${{" in str(step.get("run", "")):
                problems.append(f"{where}: an expression inside the script (pass it via env:)")
    return problems


def write_workflow(root: Path, text: str, *, force: bool = False) -> Path:
    path = root / WORKFLOW_PATH
    if (path.exists() or path.is_symlink()) and not force:
        raise UsageError(
            f"{WORKFLOW_PATH} exists already: not overwritten",
            hint="Pass --force to replace it.",
        )
    if path.is_symlink():  # never write through a link to somewhere else
        path.unlink()
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")
    return path


def _version() -> str:
    try:
        return importlib.metadata.version("ai-council")
    except importlib.metadata.PackageNotFoundError:
        return "0.1.0"
