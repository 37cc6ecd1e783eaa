"""Personas as data: a role, a prompt template, an output schema; rendered into chat messages."""

from council.personas.persona import PERSONAS, Persona, render
from council.personas.schemas import SCHEMAS, ContextSelection, Plan, Review, ReviewComment, Task

__all__ = [
    "PERSONAS",
    "SCHEMAS",
    "ContextSelection",
    "Persona",
    "Plan",
    "Review",
    "ReviewComment",
    "Task",
    "render",
]
