"""Deployment artefacts for the user's service, rendered from the package's Jinja templates
(infra/templates/service/): a multi-stage, non-root Dockerfile with a HEALTHCHECK, a GitHub
workflow that tests, builds, pushes to ACR, deploys to Container Apps and smoke-tests, signing in
with OIDC, and Bicep for Azure Container Apps (Log Analytics, managed identity pulling from an
existing ACR), or the same in Terraform (azurerm; `iac: terraform`), which adds Key Vault
references for the app's secrets and, when the project uses a database, a PostgreSQL Flexible
Server signed in to with Entra ID. The tests run hadolint, actionlint, checkov, pycep-parser,
python-hcl2 and service_policy on what these produce.

What the templates need is read from the project without running its code: its name and pinned
runtime dependencies (pyproject.toml), its ASGI app (deploy.yaml's `app`, else detected).
"""

from __future__ import annotations

import re
import tomllib
from dataclasses import dataclass
from pathlib import Path

from jinja2 import Environment
from packaging.requirements import InvalidRequirement, Requirement

from council.deploy_config import DeployConfig
from council.errors import ConfigError
from council.infra.templating import environment
from council.targets.release import detect_app
from council.targets.serve_env import SERVER

BASE_IMAGE = "python:3.11.14-slim-bookworm"  # pinned: a rebuild gets the same interpreter
PYTHON_VERSION = "3.11"
PORT = 8000
TEMPLATES = {"Dockerfile": "Dockerfile.j2", ".github/workflows/deploy.yml": "deploy.yml.j2"}
IAC_TEMPLATES = {
    "bicep": {"infra/main.bicep": "main.bicep.j2"},
    "terraform": {"infra/main.tf": "main.tf.j2", "infra/variables.tf": "variables.tf.j2"},
}
AZURERM_VERSION = "4.14.0"  # pinned provider: a plan today and in a month reads the same schema
# Runtime dependencies that mean "this service talks to a database": Terraform then adds a
# PostgreSQL Flexible Server.
DATABASE_PACKAGES = frozenset(
    {"sqlalchemy", "sqlmodel", "psycopg", "psycopg2", "psycopg2-binary", "asyncpg", "databases"}
)
TEST_EXTRAS = ("dev", "test", "tests", "testing")


@dataclass(frozen=True)
class ServiceSpec:
    name: str  # image and workflow name: lower-case letters, digits, '-'
    app: str  # module:variable
    requirements: tuple[str, ...]  # runtime, with the ASGI server
    test_requirements: tuple[str, ...]  # runtime + test extras, for the workflow's test job
    sources: tuple[str, ...]  # top-level folders/files the image needs
    pythonpath: str
    health_path: str = "/health"
    port: int = PORT
    base_image: str = BASE_IMAGE
    python_version: str = PYTHON_VERSION
    branch: str = "main"
    iac: str = "bicep"
    database: bool = False  # it depends on a database driver or ORM
    azurerm_version: str = AZURERM_VERSION


def service_spec(root: Path, config: DeployConfig | None = None) -> ServiceSpec:
    config = config or DeployConfig()
    try:
        data = tomllib.loads((root / "pyproject.toml").read_text(encoding="utf-8"))
    except (OSError, tomllib.TOMLDecodeError) as exc:
        raise ConfigError(f"{root / 'pyproject.toml'}: cannot read the project: {exc}") from None
    project = data.get("project") if isinstance(data.get("project"), dict) else {}
    runtime = [str(r) for r in project.get("dependencies") or []]
    names = {_name(r) for r in runtime}
    if "uvicorn" not in names:
        runtime.append(SERVER)
    extras = project.get("optional-dependencies") or {}
    tests = [str(r) for extra in TEST_EXTRAS for r in extras.get(extra) or []]
    app = config.app or detect_app(root)
    src = (root / "src").is_dir()
    top = app.split(":")[0].split(".")[0]  # the package (or single module) the app lives in
    sources = ("src",) if src else ((top,) if (root / top).is_dir() else (f"{top}.py",))
    name = re.sub(r"[^a-z0-9-]+", "-", str(project.get("name") or root.name).lower()).strip("-")
    return ServiceSpec(
        name=name or "service",
        app=app,
        requirements=tuple(runtime),
        test_requirements=tuple(dict.fromkeys([*runtime, *tests])),
        sources=sources,
        pythonpath="/app/src" if src else "/app",
        health_path=config.health_path,
        iac=config.iac,
        database=bool(names & DATABASE_PACKAGES),
    )


def render_artefacts(spec: ServiceSpec) -> dict[str, str]:
    """Relative path -> file text."""
    if spec.iac not in IAC_TEMPLATES:
        known = " or ".join(IAC_TEMPLATES)
        raise ConfigError(f"iac: {spec.iac} is not generated", hint=f"Set iac: {known}.")
    env = _environment()
    templates = {**TEMPLATES, **IAC_TEMPLATES[spec.iac]}
    return {path: env.get_template(name).render(**vars(spec)) for path, name in templates.items()}


def write_artefacts(root: Path, files: dict[str, str], *, overwrite: bool = False) -> list[str]:
    """Write the files under `root`; an existing file is kept unless `overwrite` (the user's
    own Dockerfile wins). The paths written."""
    written = []
    for rel, text in files.items():
        path = root / rel
        if path.exists() and not overwrite:
            continue
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")
        written.append(rel)
    return written


def _name(requirement: str) -> str:
    try:
        return Requirement(requirement).name.lower()
    except InvalidRequirement:
        return requirement.lower()


def _environment() -> Environment:
    return environment("service")
