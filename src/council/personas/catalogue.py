"""The personas as data: one YAML file each beside this module, read once at start.

A persona file holds the title, the role (the system prompt), the templates the persona is
asked with (each mapped to the schema of its structured answer, or null when the answer is
file edits) and its default model alias. Adding a persona is adding a file; nothing here names
one. Only pyyaml is imported, so config.py and the CLI can read the list cheaply.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass, field
from importlib import resources

import yaml

from council.errors import ConfigError

_KEYS = {"title", "role", "model", "templates"}


@dataclass(frozen=True)
class Persona:
    name: str  # key in council.yaml `personas:`, and the file's stem
    title: str
    role: str  # the system prompt
    model: str = "council-strong"  # default model alias
    templates: dict[str, str | None] = field(default_factory=dict)  # template -> schema


@functools.cache
def load_personas() -> dict[str, Persona]:
    """Every persona file of the package, by name (cached: the files ship with the code)."""
    found: dict[str, Persona] = {}
    for entry in sorted(resources.files(__package__).iterdir(), key=lambda e: e.name):
        if entry.name.endswith(".yaml"):
            persona = _parse(entry.name.removesuffix(".yaml"), entry.read_text(encoding="utf-8"))
            found[persona.name] = persona
    return found


def _parse(name: str, text: str) -> Persona:
    where = f"personas/{name}.yaml"
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise ConfigError(f"{where} is not valid YAML: {exc}") from exc
    if not isinstance(data, dict) or not {"title", "role"} <= set(data):
        raise ConfigError(f"{where} needs at least `title` and `role`")
    unknown = set(data) - _KEYS
    if unknown:
        raise ConfigError(f"{where}: unknown keys {sorted(unknown)} (known: {sorted(_KEYS)})")
    templates = data.get("templates") or {}
    if not isinstance(templates, dict):
        raise ConfigError(f"{where}: `templates` maps a template name to a schema name or null")
    return Persona(
        name=name,
        title=str(data["title"]),
        role=" ".join(str(data["role"]).split()),
        model=str(data.get("model") or "council-strong"),
        templates={str(k): (str(v) if v else None) for k, v in templates.items()},
    )


def template_owners() -> dict[str, list[str]]:
    """template name -> the personas asked with it."""
    owners: dict[str, list[str]] = {}
    for persona in load_personas().values():
        for template in persona.templates:
            owners.setdefault(template, []).append(persona.name)
    return owners
