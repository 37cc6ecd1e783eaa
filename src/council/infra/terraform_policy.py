"""Checks of the generated service Terraform (templates/service/main.tf.j2), read from the files
as python-hcl2 parses them.

checkov 3.3.30 scans the Terraform but has no check for Container Apps, their environments,
Log Analytics workspaces, identities or role assignments (of the generated resources it checks
only the PostgreSQL server), so these promises are checked here, as service_policy does for
the Bicep:
- the app pulls its image with its user-assigned managed identity (no registry password), and
  every secret it has is a Key Vault reference read with that identity (no secret value);
- ingress refuses plain HTTP; liveness and readiness probes call the health path;
- the environment sends its logs to the Log Analytics workspace;
- a PostgreSQL server (when there is one) signs in with Entra ID only and is not public;
- every taggable resource carries the required tags; no secret literal is in a file; no
  secret-looking variable has a default.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from council.errors import ConfigError
from council.infra.bicep_policy import REQUIRED_TAGS, secret_text_violations

APP = "azurerm_container_app"
ENVIRONMENT = "azurerm_container_app_environment"
WORKSPACE = "azurerm_log_analytics_workspace"
POSTGRES = "azurerm_postgresql_flexible_server"
# Resource types azurerm gives no `tags` argument.
UNTAGGABLE = frozenset(
    {
        "azurerm_role_assignment",
        "azurerm_postgresql_flexible_server_active_directory_administrator",
        "azurerm_postgresql_flexible_server_database",
    }
)
_SECRET_NAME = ("password", "secret", "token", "key")


@dataclass(frozen=True)
class TfResource:
    type: str
    name: str
    body: dict[str, Any]
    file: str

    @property
    def address(self) -> str:
        return f"{self.type}.{self.name}"


@dataclass(frozen=True)
class TerraformModule:
    """The .tf files of one folder, parsed and merged (what Terraform itself reads)."""

    resources: tuple[TfResource, ...]
    variables: dict[str, dict[str, Any]]
    locals: dict[str, Any]

    @classmethod
    def load(cls, folder: Path) -> TerraformModule:
        resources: list[TfResource] = []
        variables: dict[str, dict[str, Any]] = {}
        local_values: dict[str, Any] = {}
        files = sorted(folder.glob("*.tf"))
        if not files:
            raise ValueError(f"{folder}: no .tf file")
        for path in files:
            doc = parse_terraform(path)
            for block in doc.get("resource", []):
                for rtype, named in block.items():
                    for name, body in named.items():
                        resources.append(TfResource(rtype, name, body, path.name))
            for block in doc.get("variable", []):
                variables.update(block)
            for block in doc.get("locals", []):
                local_values.update(block)
        return cls(tuple(resources), variables, local_values)

    def of_type(self, rtype: str) -> list[TfResource]:
        return [r for r in self.resources if r.type == rtype]


def parse_terraform(path: Path) -> dict[str, Any]:
    """One .tf file as plain data (quotes around strings and names removed); ValueError naming
    the file if it does not parse."""
    text = path.read_text(encoding="utf-8")
    try:
        return _clean(_parse_text(text))
    except ConfigError:
        raise
    except Exception as exc:  # lark raises several error types; all mean "does not parse"
        raise ValueError(f"{path}: does not parse: {str(exc).splitlines()[0]}") from None


@functools.lru_cache(maxsize=64)
def _parse_text(text: str) -> dict[str, Any]:
    try:
        import hcl2
    except ImportError as exc:  # an optional extra, like pycep-parser for the Bicep
        raise ConfigError(
            "checking Terraform files needs python-hcl2, which is not installed",
            hint='Install it with: pip install "ai-council[deploy]"',
        ) from exc
    return hcl2.loads(text)


def _clean(value: Any) -> Any:
    """python-hcl2 8 keeps string quotes ('"AcrPull"') and marks blocks with __is_block__."""
    if isinstance(value, dict):
        return {_unquote(k): _clean(v) for k, v in value.items() if k != "__is_block__"}
    if isinstance(value, list):
        return [_clean(v) for v in value]
    if isinstance(value, str):
        return _unquote(value)
    return value


def _unquote(text: str) -> str:
    if len(text) >= 2 and text[0] == text[-1] == '"':
        return text[1:-1]
    return text


def _blocks(body: dict[str, Any], name: str) -> list[dict[str, Any]]:
    """The nested blocks called `name`, written out or as `dynamic "name" { content {...} }`."""
    found = [b for b in body.get(name) or [] if isinstance(b, dict)]
    for dynamic in body.get("dynamic") or []:
        for block in (dynamic.get(name),) if isinstance(dynamic, dict) else ():
            if isinstance(block, dict):
                found += [c for c in block.get("content") or [] if isinstance(c, dict)]
    return found


def _first(body: dict[str, Any], name: str) -> dict[str, Any]:
    blocks = _blocks(body, name)
    return blocks[0] if blocks else {}


def service_terraform_violations(folder: Path, *, health_path: str = "/health") -> list[str]:
    module = TerraformModule.load(folder)
    out: list[str] = []
    for path in sorted(folder.glob("*.tf")):
        out += secret_text_violations(path, path.read_text(encoding="utf-8"))
    out += _variable_violations(module)
    out += _tag_violations(module)
    apps = module.of_type(APP)
    if not apps:
        out.append(f"{folder.name}: no {APP}")
    for app in apps:
        out += _app_violations(app, health_path)
    workspaces = [f"{WORKSPACE}.{w.name}.id" for w in module.of_type(WORKSPACE)]
    for env in module.of_type(ENVIRONMENT):
        if str(env.body.get("log_analytics_workspace_id", "")).strip("${}") not in workspaces:
            out.append(f"{env.file}: {env.address} sends no logs to Log Analytics")
    for server in module.of_type(POSTGRES):
        auth = _first(server.body, "authentication")
        if auth.get("password_auth_enabled") is not False:
            out.append(f"{server.file}: {server.address} allows password sign-in")
        if auth.get("active_directory_auth_enabled") is not True:
            out.append(f"{server.file}: {server.address} does not sign in with Entra ID")
        if server.body.get("public_network_access_enabled") is not False:
            out.append(f"{server.file}: {server.address} is reachable from the internet")
        if "administrator_password" in server.body:
            out.append(f"{server.file}: {server.address} sets an administrator password")
    return out


def _app_violations(app: TfResource, health_path: str) -> list[str]:
    where = f"{app.file}: {app.address}"
    out = []
    identity = _first(app.body, "identity")
    if "UserAssigned" not in str(identity.get("type", "")):
        out.append(f"{where} has no user-assigned identity")
    for registry in _blocks(app.body, "registry"):
        if "password_secret_name" in registry or "username" in registry:
            out.append(f"{where} pulls its image with a registry password")
        elif not registry.get("identity"):
            out.append(f"{where} pulls its image without the managed identity")
    for secret in _blocks(app.body, "secret"):
        if "value" in secret or not secret.get("key_vault_secret_id"):
            name = secret.get("name")
            out.append(f"{where} has a secret '{name}' that is not a Key Vault reference")
        elif not secret.get("identity"):
            out.append(f"{where} reads secret '{secret.get('name')}' without the identity")
    if _first(app.body, "ingress").get("allow_insecure_connections") is not False:
        out.append(f"{where} ingress allows plain HTTP (allow_insecure_connections is not false)")
    containers = [c for t in _blocks(app.body, "template") for c in _blocks(t, "container")]
    for kind in ("liveness", "readiness"):
        paths = {_first(c, f"{kind}_probe").get("path") for c in containers}
        if health_path not in paths:
            out.append(f"{where} has no {kind.capitalize()} probe on {health_path}")
    return out


def _tag_violations(module: TerraformModule) -> list[str]:
    out = []
    local_tags = module.locals.get("tags")
    for r in module.resources:
        if r.type in UNTAGGABLE:
            continue
        tags = r.body.get("tags")
        if tags == "${local.tags}":
            tags = local_tags
        keys = set(tags) if isinstance(tags, dict) else set()
        missing = REQUIRED_TAGS - keys
        if missing:
            out.append(f"{r.file}: {r.address} lacks tags {', '.join(sorted(missing))}")
    return out


def _variable_violations(module: TerraformModule) -> list[str]:
    return [
        f"variables: '{name}' looks like a secret and has a default; pass it at apply time"
        for name, spec in module.variables.items()
        if any(word in name.lower() for word in _SECRET_NAME)
        and isinstance(spec, dict)
        and spec.get("default") not in (None, "null", {}, [])
    ]
