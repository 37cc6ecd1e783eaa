"""Checks that deploy/azure keeps the promises seed 000 makes, read from the parsed Bicep.

Every check returns a list of violations (plain sentences naming the file and resource); an
empty list means the promise holds. Bicep is parsed with pycep-parser (the parser checkov uses),
imported only when a file is parsed; it is the `deploy` extra, and without it parsing
is a ConfigError that says how to install it.

Promises:
- Key Vault, storage, container registry and AI workspaces deny public network access, and each
  has a private endpoint whose subnet is the network module's private-endpoint subnet.
- The Container Apps environment is injected into the VNet (internal, the delegated subnet).
- Every resource that can carry tags carries Project, Environment, ServiceName and Owner.
- No secret value is written in any file: @secure() parameters have no default, no output
  exposes listKeys, and no file holds a key, token or password literal.
"""

from __future__ import annotations

import copy
import functools
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from council.errors import ConfigError

REQUIRED_TAGS = frozenset({"Project", "Environment", "ServiceName", "Owner"})

# Resource types Azure does not let carry tags (child or extension resources).
UNTAGGABLE = frozenset(
    {
        "Microsoft.Authorization/roleAssignments",  # extension resource, no tags property
        "Microsoft.Insights/diagnosticSettings",  # extension resource, no tags property
        "Microsoft.Consumption/budgets",  # no tags property
        "Microsoft.Network/privateEndpoints/privateDnsZoneGroups",  # child, no tags
        "Microsoft.Network/privateDnsZones/A",  # record sets take metadata, not tags
        "Microsoft.Storage/storageAccounts/blobServices",  # child, no tags
    }
)

PRIVATE_TYPES = {
    "Microsoft.KeyVault/vaults": "Key Vault",
    "Microsoft.Storage/storageAccounts": "storage account",
    "Microsoft.ContainerRegistry/registries": "container registry",
    "Microsoft.MachineLearningServices/workspaces": "AI workspace",
}
PE_TYPE = "Microsoft.Network/privateEndpoints"
PE_SUBNET_PARAM = "privateEndpointSubnetId"
PE_SUBNET_PREFIX = "snet-privateendpoints-"


def parse_bicep(path: Path) -> dict[str, Any]:
    """The pycep-parser JSON of one Bicep file; ValueError (with the file) if it does not parse."""
    text = path.read_text(encoding="utf-8")
    try:
        return copy.deepcopy(_parse_text(text))
    except ConfigError:
        raise
    except Exception as exc:  # lark raises several error types; all mean "does not parse"
        raise ValueError(f"{path}: does not parse: {str(exc).splitlines()[0]}") from None


@functools.lru_cache(maxsize=1)
def _parser() -> Any:
    try:
        from pycep import BicepParser
    except ImportError as exc:  # an optional extra: the core install does not need Bicep
        raise ConfigError(
            "checking Bicep files needs pycep-parser, which is not installed",
            hint='Install it with: pip install "ai-council[deploy]"',
        ) from exc

    return BicepParser()  # building the grammar takes a second: once per process


@functools.lru_cache(maxsize=256)
def _parse_text(text: str) -> dict[str, Any]:
    return _parser().parse(text=text)


@dataclass
class Resource:
    symbol: str
    type: str
    body: dict[str, Any]
    existing: bool


@dataclass
class BicepFile:
    path: Path
    doc: dict[str, Any]
    resources: list[Resource] = field(default_factory=list)

    @classmethod
    def load(cls, path: Path) -> BicepFile:
        doc = parse_bicep(path)
        resources = [
            Resource(name, spec["type"], _unwrap(spec["config"]), bool(spec.get("existing")))
            for name, spec in (doc.get("resources") or {}).items()
        ]
        return cls(path, doc, resources)

    @property
    def params(self) -> dict[str, Any]:
        return self.doc.get("parameters") or {}

    @property
    def variables(self) -> dict[str, Any]:
        return self.doc.get("variables") or {}

    @property
    def modules(self) -> dict[str, Any]:
        return self.doc.get("modules") or {}

    def module_calls(self) -> list[tuple[str, Path, dict[str, Any]]]:
        """(symbol, module file, params passed) for every module this file deploys."""
        calls = []
        for name, spec in self.modules.items():
            config = _unwrap(spec["config"])
            target = (self.path.parent / spec["detail"]["path"]).resolve()
            calls.append((name, target, config.get("params") or {}))
        return calls


def _unwrap(config: Any) -> dict[str, Any]:
    """A resource body without its `if (...)` condition or `for ...` loop wrapper."""
    while (
        isinstance(config, dict)
        and "config" in config
        and ("condition" in config or "loop_type" in config)
    ):
        config = config["config"]
    return config if isinstance(config, dict) else {}


def _get(body: Any, *keys: str) -> Any:
    for key in keys:
        if not isinstance(body, dict):
            return None
        body = body.get(key)
    return body


def _accessor(expr: Any) -> tuple[str, Any] | None:
    """`a.b` -> ("a", b-expression)."""
    op = _get(expr, "operator")
    if isinstance(op, dict) and op.get("type") == "property_accessor":
        return op["operands"]["operand_1"], op["operands"]["operand_2"]
    return None


def _refers_to(expr: Any, symbol: str, prop: str) -> bool:
    """Whether `expr` is `symbol.prop` (e.g. `keyVault.id`)."""
    acc = _accessor(expr)
    return acc is not None and acc[0] == symbol and acc[1] == prop


def _output_ref(expr: Any) -> tuple[str, str] | None:
    """`module.outputs.name` -> (module, name)."""
    acc = _accessor(expr)
    if acc is None:
        return None
    inner = _accessor(acc[1])
    if inner is None or inner[0] != "outputs" or not isinstance(inner[1], str):
        return None
    return acc[0], inner[1]


# --- network isolation -----------------------------------------------------------------------


def public_access_violations(f: BicepFile) -> list[str]:
    """Key Vault, storage, registry and AI workspaces must deny public network access."""
    out = []
    for r in f.resources:
        if r.existing or r.type not in PRIVATE_TYPES:
            continue
        value = _get(r.body, "properties", "publicNetworkAccess")
        if value != "Disabled":
            out.append(
                f"{f.path.name}: {PRIVATE_TYPES[r.type]} '{r.symbol}' has publicNetworkAccess "
                f"{value!r}, expected 'Disabled'"
            )
        if r.type == "Microsoft.Storage/storageAccounts":
            if _get(r.body, "properties", "networkAcls", "defaultAction") != "Deny":
                out.append(
                    f"{f.path.name}: storage '{r.symbol}' networkAcls.defaultAction is not Deny"
                )
    return out


def private_endpoint_violations(f: BicepFile) -> list[str]:
    """Each private-only service has a private endpoint in the private-endpoint subnet."""
    endpoints = [r for r in f.resources if r.type == PE_TYPE]
    out = []
    for r in f.resources:
        if r.existing or r.type not in PRIVATE_TYPES:
            continue
        if _get(r.body, "properties", "hubResourceId") is not None:
            continue  # an AI Foundry project is reached through its hub's private endpoint
        found = False
        for pe in endpoints:
            links = _get(pe.body, "properties", "privateLinkServiceConnections") or []
            if not any(
                _refers_to(_get(link, "properties", "privateLinkServiceId"), r.symbol, "id")
                for link in links
            ):
                continue
            found = True
            subnet = _get(pe.body, "properties", "subnet", "id")
            if subnet != PE_SUBNET_PARAM or PE_SUBNET_PARAM not in f.params:
                out.append(
                    f"{f.path.name}: private endpoint '{pe.symbol}' for '{r.symbol}' is in "
                    f"subnet {subnet!r}, expected the parameter {PE_SUBNET_PARAM}"
                )
        if not found:
            out.append(
                f"{f.path.name}: {PRIVATE_TYPES[r.type]} '{r.symbol}' has no private endpoint"
            )
    return out


def subnet_wiring_violations(main: BicepFile, network: BicepFile) -> list[str]:
    """main passes the network module's private-endpoint subnet to every module taking one,
    the Container Apps subnet to the environment, and those outputs name the right subnets."""
    out = []
    network_symbol = next(
        (name for name, target, _ in main.module_calls() if target == network.path.resolve()),
        None,
    )
    if network_symbol is None:
        return [f"{main.path.name}: does not deploy {network.path.name}"]
    expected = {
        PE_SUBNET_PARAM: "privateEndpointSubnetId",
        "infrastructureSubnetId": "containerAppsSubnetId",
    }
    for name, _target, params in main.module_calls():
        for param, output in expected.items():
            if param in params and _output_ref(params[param]) != (network_symbol, output):
                out.append(
                    f"{main.path.name}: module '{name}' gets {param} from "
                    f"{params[param]!r}, expected {network_symbol}.outputs.{output}"
                )
    subnets = _subnets_by_variable(network)
    for output, prefix, delegated in (
        ("privateEndpointSubnetId", PE_SUBNET_PREFIX, None),
        ("containerAppsSubnetId", "snet-containerapps-", "Microsoft.App/environments"),
    ):
        value = _get(network.doc, "outputs", output, "value")
        args = _get(value, "function", "parameters") or {}
        var = args.get("resource_name_2")
        name = network.variables.get(var, {}).get("value") if isinstance(var, str) else None
        if not (isinstance(name, str) and name.startswith(prefix)):
            out.append(f"{network.path.name}: output {output} does not name a {prefix}* subnet")
            continue
        if delegated is not None:
            services = [
                _get(d, "properties", "serviceName")
                for d in _get(subnets.get(var), "properties", "delegations") or []
            ]
            if delegated not in services:
                out.append(f"{network.path.name}: subnet {name} is not delegated to {delegated}")
    return out


def _subnets_by_variable(network: BicepFile) -> dict[str, dict[str, Any]]:
    for r in network.resources:
        if r.type == "Microsoft.Network/virtualNetworks":
            subnets = _get(r.body, "properties", "subnets") or []
            return {s.get("name"): s for s in subnets if isinstance(s, dict)}
    return {}


def vnet_integration_violations(f: BicepFile) -> list[str]:
    """Container Apps environments are internal and injected into a subnet."""
    out = []
    for r in f.resources:
        if r.type != "Microsoft.App/managedEnvironments" or r.existing:
            continue
        vnet = _get(r.body, "properties", "vnetConfiguration") or {}
        if vnet.get("internal") is not True:
            out.append(f"{f.path.name}: environment '{r.symbol}' is not internal")
        if vnet.get("infrastructureSubnetId") != "infrastructureSubnetId":
            out.append(
                f"{f.path.name}: environment '{r.symbol}' is not injected into the "
                "infrastructureSubnetId subnet"
            )
    return out


# --- tags ------------------------------------------------------------------------------------


def _tag_keys(expr: Any, f: BicepFile, passed: dict[str, set[str]]) -> set[str]:
    """The tag names an expression yields: literal objects, union(...), parameters (with what
    the caller passed), variables."""
    if isinstance(expr, dict) and "function" in expr:
        fn = expr["function"]
        if fn.get("type") == "union":
            keys: set[str] = set()
            for arg in (fn.get("parameters") or {}).values():
                keys |= _tag_keys(arg, f, passed)
            return keys
        return set()
    if isinstance(expr, dict) and "operator" not in expr:
        return {k for k in expr if isinstance(k, str)}
    if isinstance(expr, str):
        if expr in passed:
            return passed[expr]
        if expr in f.variables:
            return _tag_keys(f.variables[expr].get("value"), f, passed)
    return set()


def tag_violations(entry: Path) -> list[str]:
    """Walk main.bicep and every module it deploys; each taggable resource (and module call's
    `tags` parameter) must carry the required tags."""
    out: list[str] = []
    _check_tags(entry.resolve(), {}, out, seen=set())
    return out


def _check_tags(path: Path, passed: dict[str, set[str]], out: list[str], seen: set) -> None:
    key = (path, tuple(sorted((k, tuple(sorted(v))) for k, v in passed.items())))
    if key in seen:
        return
    seen.add(key)
    f = BicepFile.load(path)
    for r in f.resources:
        if r.existing or r.type in UNTAGGABLE:
            continue
        missing = REQUIRED_TAGS - _tag_keys(r.body.get("tags"), f, passed)
        if missing:
            out.append(f"{path.name}: '{r.symbol}' ({r.type}) lacks tags {sorted(missing)}")
    for _name, target, params in f.module_calls():
        child_passed = {}
        for pname, pexpr in params.items():
            keys = _tag_keys(pexpr, f, passed)
            if pname == "tags" or keys & REQUIRED_TAGS:
                child_passed[pname] = keys
        _check_tags(target, child_passed, out, seen)


# --- secrets ---------------------------------------------------------------------------------

_SECRET_PATTERNS = [
    (re.compile(r"sk-[A-Za-z0-9_\-]{16,}"), "an API key (sk-...)"),
    (re.compile(r"gh[pousr]_[A-Za-z0-9]{30,}"), "a GitHub token"),
    (re.compile(r"AccountKey=[A-Za-z0-9+/=]{20,}"), "a storage account key"),
    (re.compile(r"-----BEGIN [A-Z ]*PRIVATE KEY-----"), "a private key"),
    (
        re.compile(r"(?i)(?:api[_-]?key|password|secret|token)\s*[:=]\s*['\"][^'\"$\s{]{12,}['\"]"),
        "a credential literal",
    ),
]
_SECRET_NAME = re.compile(r"(?i)(key|secret|password|token|credential)")


def secret_text_violations(path: Path, text: str) -> list[str]:
    """Secret-looking literals in a file's text."""
    out = []
    for lineno, line in enumerate(text.splitlines(), 1):
        for pattern, what in _SECRET_PATTERNS:
            if pattern.search(line):
                out.append(f"{path}:{lineno}: looks like {what}")
    return out


def secret_parameter_violations(path: Path, doc: dict[str, Any]) -> list[str]:
    """A parameter file must not give a value to a secret-looking parameter."""
    out = []
    for name, spec in (doc.get("parameters") or {}).items():
        if _SECRET_NAME.search(name) and isinstance(spec, dict) and "value" in spec:
            out.append(f"{path}: parameter '{name}' has a value; pass it at deployment time")
    return out


def secure_param_violations(f: BicepFile) -> list[str]:
    """@secure() parameters have no default, and no output reads listKeys."""
    out = []
    for name, spec in f.params.items():
        secure = any(d.get("type") == "secure" for d in spec.get("decorators") or [])
        if _SECRET_NAME.search(name) and name.endswith(("Key", "Secret", "Password", "Token")):
            if not secure:
                out.append(f"{f.path.name}: parameter '{name}' holds a secret but is not @secure()")
        if secure and spec.get("default") is not None:
            out.append(f"{f.path.name}: @secure() parameter '{name}' has a default value")
    for name, spec in (f.doc.get("outputs") or {}).items():
        if "list_keys" in repr(spec) or "listKeys" in repr(spec):
            out.append(f"{f.path.name}: output '{name}' exposes listKeys")
    return out
