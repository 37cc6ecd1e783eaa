"""Personas as data: a role, prompt templates, output schemas; rendered into chat messages.

Names are loaded on first use (PEP 562), so `council.personas.catalogue` can be imported by
config.py without loading jinja2 and the schemas.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # what the names below resolve to, for type checkers
    from council.personas.catalogue import Persona, load_personas, template_owners
    from council.personas.persona import PERSONAS, PROMPTS_DIR, Prompts, render
    from council.personas.schemas import (
        SCHEMAS,
        ContextSelection,
        DeploymentDiagnosis,
        Plan,
        Review,
        ReviewComment,
        Task,
    )

_WHERE = {
    "Persona": "catalogue",
    "load_personas": "catalogue",
    "template_owners": "catalogue",
    "PERSONAS": "persona",
    "PROMPTS_DIR": "persona",
    "Prompts": "persona",
    "render": "persona",
    "SCHEMAS": "schemas",
    "ContextSelection": "schemas",
    "DeploymentDiagnosis": "schemas",
    "Plan": "schemas",
    "Review": "schemas",
    "ReviewComment": "schemas",
    "Task": "schemas",
}
__all__ = [
    "ContextSelection",
    "DeploymentDiagnosis",
    "PERSONAS",
    "PROMPTS_DIR",
    "Persona",
    "Plan",
    "Prompts",
    "Review",
    "ReviewComment",
    "SCHEMAS",
    "Task",
    "load_personas",
    "render",
    "template_owners",
]


def __getattr__(name: str) -> Any:
    if name not in _WHERE:
        raise AttributeError(f"module 'council.personas' has no attribute {name!r}")
    return getattr(importlib.import_module(f"council.personas.{_WHERE[name]}"), name)
