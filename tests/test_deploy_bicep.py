"""deploy/azure: every Bicep file parses (pycep-parser, the parser checkov uses) and keeps the
seed's promises (private services, VNet integration, tags, no secrets); each check is shown to
fail on a mutated copy."""

from __future__ import annotations

import json
import shutil
import sys
from pathlib import Path

import pytest

from council.infra.bicep_policy import (
    REQUIRED_TAGS,
    BicepFile,
    parse_bicep,
    private_endpoint_violations,
    public_access_violations,
    secret_parameter_violations,
    secret_text_violations,
    secure_param_violations,
    subnet_wiring_violations,
    tag_violations,
    vnet_integration_violations,
)

ROOT = Path(__file__).resolve().parents[1]
AZURE = ROOT / "deploy" / "azure"
BICEP_FILES = sorted(AZURE.rglob("*.bicep"))
MODULES = {
    "network",
    "keyvault",
    "aistudio",
    "containerapps_env",
    "litellm",
    "endpoints",
    "monitoring",
    "budget",
}


def _load(root: Path) -> dict[str, BicepFile]:
    return {p.stem: BicepFile.load(p) for p in root.rglob("*.bicep")}


def _policy_violations(root: Path) -> list[str]:
    files = _load(root)
    out: list[str] = []
    for f in files.values():
        out += public_access_violations(f)
        out += private_endpoint_violations(f)
        out += vnet_integration_violations(f)
        out += secure_param_violations(f)
    out += subnet_wiring_violations(files["main"], files["network"])
    out += tag_violations(root / "main.bicep")
    out += _secret_violations(root)
    return out


def _secret_violations(root: Path) -> list[str]:
    out: list[str] = []
    for path in sorted(root.rglob("*")):
        if path.is_file():
            out += secret_text_violations(path, path.read_text(encoding="utf-8"))
    for path in sorted((root / "parameters").glob("*.json")):
        out += secret_parameter_violations(path, json.loads(path.read_text(encoding="utf-8")))
    return out


@pytest.fixture
def azure_copy(tmp_path: Path) -> Path:
    target = tmp_path / "azure"
    shutil.copytree(AZURE, target)
    return target


def _mutate(root: Path, relative: str, old: str, new: str) -> None:
    path = root / relative
    text = path.read_text(encoding="utf-8")
    assert old in text, f"{old!r} not in {relative}: the mutation no longer applies"
    path.write_text(text.replace(old, new, 1), encoding="utf-8")


# --- structure -------------------------------------------------------------------------------


def test_the_modules_the_issue_names_exist_and_main_deploys_them():
    names = {p.stem for p in (AZURE / "modules").glob("*.bicep")}
    assert MODULES <= names
    main = BicepFile.load(AZURE / "main.bicep")
    deployed = {target.stem for _, target, _ in main.module_calls()}
    assert MODULES <= deployed
    assert main.doc["globals"]["scope"]["value"] == "subscription"
    groups = [r for r in main.resources if r.type == "Microsoft.Resources/resourceGroups"]
    assert sorted(r.body["name"].split("-${")[0] for r in groups) == [
        "rg-ai-services",
        "rg-app-hosting",
        "rg-core-infra",
        "rg-gpu-compute",
    ]


@pytest.mark.parametrize("path", BICEP_FILES, ids=lambda p: p.name)
def test_every_bicep_file_parses(path: Path):
    doc = parse_bicep(path)
    assert doc.get("resources") or doc.get("modules")


def test_a_file_that_does_not_parse_is_reported(tmp_path: Path):
    broken = tmp_path / "broken.bicep"
    broken.write_text("resource kv 'Microsoft.KeyVault/vaults@2023-07-01' = {\n  name: \n", "utf-8")
    with pytest.raises(ValueError, match="broken.bicep: does not parse"):
        parse_bicep(broken)


@pytest.mark.parametrize("env", ["dev", "staging", "prod"])
def test_parameter_files_give_every_required_parameter(env: str):
    main = BicepFile.load(AZURE / "main.bicep")
    doc = json.loads((AZURE / "parameters" / f"{env}.parameters.json").read_text("utf-8"))
    given = doc["parameters"]
    assert given["environment"]["value"] == env
    required = {
        name
        for name, spec in main.params.items()
        if spec.get("default") is None
        and not any(d.get("type") == "secure" for d in spec.get("decorators") or [])
    }
    assert required <= set(given), required - set(given)
    assert set(given) <= set(main.params), set(given) - set(main.params)
    for persona in given["personas"]["value"]:
        assert persona["minInstances"] >= 1  # the platform minimum for managed deployments
        assert persona["maxInstances"] >= persona["minInstances"]


# --- the promises on the real files ----------------------------------------------------------


def test_private_services_deny_public_access_and_have_private_endpoints():
    files = _load(AZURE)
    types = {r.type for f in files.values() for r in f.resources if not r.existing}
    for expected in (
        "Microsoft.KeyVault/vaults",
        "Microsoft.Storage/storageAccounts",
        "Microsoft.MachineLearningServices/workspaces",
        "Microsoft.Network/privateEndpoints",
    ):
        assert expected in types
    for f in files.values():
        assert public_access_violations(f) == []
        assert private_endpoint_violations(f) == []


def test_private_endpoints_sit_in_the_private_endpoint_subnet():
    files = _load(AZURE)
    assert subnet_wiring_violations(files["main"], files["network"]) == []


def test_container_apps_environment_is_vnet_integrated():
    f = BicepFile.load(AZURE / "modules" / "containerapps_env.bicep")
    assert any(r.type == "Microsoft.App/managedEnvironments" for r in f.resources)
    assert vnet_integration_violations(f) == []


def test_every_resource_is_tagged():
    assert tag_violations(AZURE / "main.bicep") == []


def test_no_secret_value_in_any_file():
    assert _secret_violations(AZURE) == []
    for f in _load(AZURE).values():
        assert secure_param_violations(f) == []


def test_all_promises_hold_on_the_real_tree():
    assert _policy_violations(AZURE) == []


# --- each check fails when its promise is broken ---------------------------------------------

MUTATIONS = [
    pytest.param(
        "modules/keyvault.bicep",
        "publicNetworkAccess: 'Disabled'",
        "publicNetworkAccess: 'Enabled'",
        "Key Vault 'keyVault' has publicNetworkAccess 'Enabled'",
        id="keyvault-public",
    ),
    pytest.param(
        "modules/aistudio.bicep",
        "    publicNetworkAccess: 'Disabled'\n    allowBlobPublicAccess",
        "    publicNetworkAccess: 'Enabled'\n    allowBlobPublicAccess",
        "storage account 'storage' has publicNetworkAccess 'Enabled'",
        id="storage-public",
    ),
    pytest.param(
        "modules/aistudio.bicep",
        "    containerRegistry: registry.id\n    publicNetworkAccess: 'Disabled'",
        "    containerRegistry: registry.id\n    publicNetworkAccess: 'Enabled'",
        "AI workspace 'hub' has publicNetworkAccess 'Enabled'",
        id="workspace-public",
    ),
    pytest.param(
        "modules/aistudio.bicep",
        "privateLinkServiceId: hub.id",
        "privateLinkServiceId: registry.id",
        "AI workspace 'hub' has no private endpoint",
        id="workspace-no-private-endpoint",
    ),
    pytest.param(
        "modules/keyvault.bicep",
        "    subnet: {\n      id: privateEndpointSubnetId",
        "    subnet: {\n      id: keyVaultDnsZoneId",
        "is in subnet 'keyVaultDnsZoneId'",
        id="keyvault-endpoint-wrong-subnet",
    ),
    pytest.param(
        "main.bicep",
        "    privateEndpointSubnetId: network.outputs.privateEndpointSubnetId\n    keyVaultId",
        "    privateEndpointSubnetId: network.outputs.containerAppsSubnetId\n    keyVaultId",
        "module 'aiStudio' gets privateEndpointSubnetId",
        id="main-wires-wrong-subnet",
    ),
    pytest.param(
        "modules/containerapps_env.bicep",
        "      internal: true\n",
        "      internal: false\n",
        "is not internal",
        id="environment-not-internal",
    ),
    pytest.param(
        "modules/containerapps_env.bicep",
        "      infrastructureSubnetId: infrastructureSubnetId\n",
        "",
        "is not injected",
        id="environment-not-injected",
    ),
    pytest.param(
        "modules/monitoring.bicep",
        "  location: 'global'\n  tags: tags\n",
        "  location: 'global'\n",
        "'actionGroup' (Microsoft.Insights/actionGroups) lacks tags",
        id="resource-untagged",
    ),
    pytest.param(
        "main.bicep",
        "  Owner: owner\n",
        "",
        "lacks tags ['Owner']",
        id="owner-tag-dropped",
    ),
    pytest.param(
        "parameters/dev.parameters.json",
        '"owner": {',
        '"litellmMasterKey": {"value": "sk-live-0123456789abcdefXYZ"},\n    "owner": {',
        "parameter 'litellmMasterKey' has a value",
        id="secret-in-parameter-file",
    ),
    pytest.param(
        "modules/litellm.bicep",
        "var masterKeySecret = {",
        "var leaked = 'sk-0123456789abcdefghijKLMN'\nvar masterKeySecret = {",
        "looks like an API key",
        id="secret-literal-in-bicep",
    ),
    pytest.param(
        "main.bicep",
        "@secure()\n@description('LiteLLM master key",
        "@description('LiteLLM master key",
        "'litellmMasterKey' holds a secret but is not @secure()",
        id="master-key-not-secure",
    ),
]


@pytest.mark.parametrize(("relative", "old", "new", "expected"), MUTATIONS)
def test_a_broken_promise_is_caught(azure_copy: Path, relative, old, new, expected):
    assert _policy_violations(azure_copy) == []  # the copy starts clean
    _mutate(azure_copy, relative, old, new)
    violations = _policy_violations(azure_copy)
    assert any(expected in v for v in violations), violations


def test_required_tags_are_the_seed_tags():
    assert REQUIRED_TAGS == {"Project", "Environment", "ServiceName", "Owner"}


def test_without_pycep_parsing_says_which_extra_to_install(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    from council.errors import ConfigError
    from council.infra import bicep_policy

    monkeypatch.setitem(sys.modules, "pycep", None)  # as if not installed
    bicep_policy._parser.cache_clear()
    bicep_policy._parse_text.cache_clear()
    source = tmp_path / "x.bicep"
    source.write_text("param name string\n", encoding="utf-8")
    try:
        with pytest.raises(ConfigError) as caught:
            parse_bicep(source)
    finally:
        bicep_policy._parser.cache_clear()
    assert "pycep-parser" in caught.value.message
    assert "ai-council[deploy]" in (caught.value.hint or "")
