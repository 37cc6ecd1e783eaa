"""What the user asked for, as data: the intent schema the model fills in, and the checks that
turn a doubtful or incomplete intent into a clarifying question instead of a guess."""

from __future__ import annotations

import re
from typing import Any, Literal

from pydantic import BaseModel, Field

Operation = Literal["create", "delete", "list", "show"]

# The resource types doit can carry out, and what each needs before anything runs. Parameters
# with a default are not asked for; the default is stated as an assumption in the plan.
RESOURCE_TYPES: dict[str, dict[str, Any]] = {
    "resource_group": {"required": ("name", "region"), "defaults": {}},
    "storage_account": {
        "required": ("name", "region"),
        "defaults": {"sku": "Standard_LRS", "kind": "StorageV2", "access_tier": "Hot"},
    },
    "blob_container": {"required": ("name",), "defaults": {"public_access": "off"}},
    "blob_upload": {"required": ("container", "files"), "defaults": {}},
}

DESTRUCTIVE: frozenset[str] = frozenset({"delete"})
CONFIDENCE_THRESHOLD = 0.7

_ACCOUNT_NAME = re.compile(r"^[a-z0-9]{3,24}$")
_CONTAINER_NAME = re.compile(r"^(?=.{3,63}$)[a-z0-9]+(-[a-z0-9]+)*$")
# Azure's rule, and never a leading hyphen: the name is an `az` argument, not an option.
_GROUP_NAME = re.compile(r"^(?!-)[\w\-.()]{1,90}(?<!\.)$")
_REGION = re.compile(r"^[a-z]+[a-z0-9]*$")


class CloudResource(BaseModel):
    """One resource the request names."""

    type: str = Field(description="one of: " + ", ".join(RESOURCE_TYPES))
    name: str = Field("", description="the resource's name as the user gave it; '' if not given")
    parameters: dict[str, Any] = Field(
        default_factory=dict,
        description="e.g. region, sku, public_access; for blob_upload: container and files "
        "(a list of paths or globs)",
    )


class CloudIntent(BaseModel):
    """The request as an operation on typed resources, with how sure the reading is."""

    operation: Operation
    summary: str = Field(description="one line: what will be done")
    resources: list[CloudResource] = Field(min_length=1)
    region: str = Field("", description="Azure region, e.g. westeurope; '' if not given")
    resource_group: str = Field("", description="the resource group; '' if not given")
    confidence: float = Field(ge=0.0, le=1.0, description="0..1: how sure this reading is")
    missing: list[str] = Field(
        default_factory=list, description="parameters the request does not give"
    )
    question: str = Field("", description="what to ask the user when something is unclear")

    @property
    def destructive(self) -> bool:
        return self.operation in DESTRUCTIVE

    def of_type(self, kind: str) -> list[CloudResource]:
        return [r for r in self.resources if r.type == kind]


def parameter(intent: CloudIntent, resource: CloudResource, key: str) -> Any:
    """A resource's parameter: its own, else the intent-wide one, else the type's default."""
    if key == "name" and resource.name:
        return resource.name
    value = resource.parameters.get(key)
    if value in (None, "", []):
        value = {"region": intent.region, "resource_group": intent.resource_group}.get(key)
    if value in (None, "", []):
        value = RESOURCE_TYPES.get(resource.type, {}).get("defaults", {}).get(key)
    return value


def questions(intent: CloudIntent, threshold: float = CONFIDENCE_THRESHOLD) -> list[str]:
    """What must be asked before acting; empty when the intent is clear and complete."""
    asked: list[str] = []
    if intent.confidence < threshold:
        asked.append(
            intent.question
            or f"I read this as: {intent.summary} (confidence {intent.confidence:.0%}). "
            "Is that what you mean? Please say it more precisely."
        )
    for resource in intent.resources:
        spec = RESOURCE_TYPES.get(resource.type)
        if spec is None:
            known = ", ".join(RESOURCE_TYPES)
            asked.append(
                f"'{resource.type}' is not a resource type doit handles (it does: {known})"
            )
            continue
        # Every operation's names are checked (a delete's or a listing's name is an argument of
        # a command too); what is required is asked only of a create.
        asked.extend(_name_problems(intent, resource))
        if intent.operation != "create":
            continue
        for key in spec["required"]:
            if parameter(intent, resource, key) in (None, "", []):
                label = resource.name or resource.type
                asked.append(f"which {key} for the {resource.type.replace('_', ' ')} {label}?")
    for key in intent.missing:
        question = f"the request does not say: {key}"
        if not any(key in q for q in asked):
            asked.append(question)
    return asked


def _name_problems(intent: CloudIntent, resource: CloudResource) -> list[str]:
    """Azure's naming rules, checked before any command: a bad name is a question now, not a
    failed create halfway through an objective."""
    name = parameter(intent, resource, "name") or ""
    if not name:
        return []
    if resource.type == "storage_account" and not _ACCOUNT_NAME.match(name):
        return [
            f"the storage account name {name!r} is not valid: 3-24 lowercase letters and "
            "digits. Which name instead?"
        ]
    if resource.type == "blob_container" and not _CONTAINER_NAME.match(name):
        return [
            f"the container name {name!r} is not valid: 3-63 lowercase letters, digits and "
            "single hyphens. Which name instead?"
        ]
    if resource.type == "resource_group" and not _GROUP_NAME.match(name):
        return [f"the resource group name {name!r} is not valid. Which name instead?"]
    group = parameter(intent, resource, "resource_group")  # the one it goes in, if named
    if group and not _GROUP_NAME.match(str(group)):
        return [f"the resource group name {group!r} is not valid. Which name instead?"]
    region = parameter(intent, resource, "region")
    if region and not _REGION.match(str(region)):
        return [f"{region!r} is not an Azure region name (e.g. westeurope). Which region?"]
    return []
