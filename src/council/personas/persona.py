"""Render a persona's template plus facts into chat messages, with the repository's overrides.

Templates are looked up in the repository's `.council/prompts/` first, then in the package
(`personas/templates/`), so a user changes what a persona is told by dropping a file there
(`council prompts edit NAME` copies the packaged one to start from). A template may include
another (`{% include "_edit_format.j2" %}`): the include is looked up the same way.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Any

from jinja2 import ChoiceLoader, Environment, FileSystemLoader, PackageLoader, StrictUndefined

from council.personas.catalogue import Persona, load_personas

PROMPTS_DIR = Path(".council") / "prompts"  # relative to the repository root
SUFFIX = ".j2"

PERSONAS: dict[str, Persona] = load_personas()


@functools.cache
def _environment(overrides: Path | None) -> Environment:
    loaders: list[Any] = [PackageLoader("council.personas", "templates")]
    if overrides is not None:
        loaders.insert(0, FileSystemLoader(str(overrides)))
    return Environment(
        loader=ChoiceLoader(loaders),
        undefined=StrictUndefined,
        keep_trailing_newline=True,
        trim_blocks=True,
        lstrip_blocks=True,
        autoescape=False,  # prompts are plain text, not HTML  # nosec B701
    )


@dataclass(frozen=True)
class Prompts:
    """The templates one repository sees: its `.council/prompts/` over the package's."""

    repo: Path | None = None

    @property
    def overrides(self) -> Path | None:
        return self.repo / PROMPTS_DIR if self.repo is not None else None

    def names(self) -> list[str]:
        """Every template this repository can use: the package's and its own."""
        found = {
            entry.name.removesuffix(SUFFIX)
            for entry in resources.files(__package__).joinpath("templates").iterdir()
            if entry.name.endswith(SUFFIX)
        }
        if self.overrides is not None and self.overrides.is_dir():
            found |= {path.name.removesuffix(SUFFIX) for path in self.overrides.glob(f"*{SUFFIX}")}
        return sorted(found)

    def override(self, template: str) -> Path | None:
        """The repository's own file for `template`, if it has one."""
        if self.overrides is None:
            return None
        path = self.overrides / f"{template}{SUFFIX}"
        return path if path.is_file() else None

    def packaged(self, template: str) -> str | None:
        """The text of the package's `template`, or None when the package has none."""
        entry = resources.files(__package__).joinpath("templates", f"{template}{SUFFIX}")
        return entry.read_text(encoding="utf-8") if entry.is_file() else None

    def source(self, template: str) -> str | None:
        """The text used for `template`: the repository's override, else the package's."""
        own = self.override(template)
        return own.read_text(encoding="utf-8") if own is not None else self.packaged(template)

    def text(self, template: str, **facts: Any) -> str:
        """A template rendered to text (a user message, a re-ask), stripped."""
        env = _environment(self.overrides)
        return env.get_template(f"{template}{SUFFIX}").render(**facts).strip()

    def render(self, persona: str, template: str, **facts: Any) -> list[dict[str, str]]:
        """Messages for one persona call: its role as system prompt, the template as user
        prompt."""
        role = PERSONAS[persona].role
        return [
            {"role": "system", "content": role},
            {"role": "user", "content": self.text(template, **facts)},
        ]


def render(persona: str, template: str, **facts: Any) -> list[dict[str, str]]:
    """`Prompts().render` with the packaged templates only (no repository overrides)."""
    return Prompts().render(persona, template, **facts)
