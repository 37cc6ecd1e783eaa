"""The Persona record and the renderer that turns a template plus facts into chat messages."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from jinja2 import Environment, PackageLoader, StrictUndefined


@dataclass(frozen=True)
class Persona:
    name: str  # key in council.yaml `personas:`
    title: str
    role: str  # the system prompt


PERSONAS: dict[str, Persona] = {
    "pacer": Persona(
        "pacer",
        "Pacer",
        "You are Pacer, the planner of an AI engineering council. You turn a feature request "
        "into a small, testable plan for an existing code base. You are precise and terse, and "
        "you answer with JSON only when asked for JSON.",
    ),
    "maven": Persona(
        "maven",
        "Maven",
        "You are Maven, the context keeper of an AI engineering council. You know where things "
        "are in a code base and which conventions it follows.",
    ),
    "guardian": Persona(
        "guardian",
        "Guardian",
        "You are Guardian, the test author and reviewer of an AI engineering council. You write "
        "tests before the code exists, tests that pin down behaviour precisely, and you review "
        "changes for correctness, security and quality without flattery.",
    ),
    "builder": Persona(
        "builder",
        "Builder",
        "You are Builder, the implementer of an AI engineering council. You write the smallest "
        "clean change that makes the given tests pass, in the style of the existing code.",
    ),
    "artisan": Persona(
        "artisan",
        "Artisan",
        "You are Artisan, the refiner of an AI engineering council. You fix failing tests, lint "
        "and review findings by changing the code under test, never the tests.",
    ),
}

_env = Environment(
    loader=PackageLoader("council.personas", "templates"),
    undefined=StrictUndefined,
    keep_trailing_newline=True,
    trim_blocks=True,
    lstrip_blocks=True,
    autoescape=False,  # prompts are plain text, not HTML  # nosec B701
)


def render(persona: str, template: str, **facts: Any) -> list[dict[str, str]]:
    """Messages for one persona call: its role as system prompt, the template as user prompt."""
    p = PERSONAS[persona]
    text = _env.get_template(f"{template}.j2").render(**facts)
    return [{"role": "system", "content": p.role}, {"role": "user", "content": text.strip()}]
