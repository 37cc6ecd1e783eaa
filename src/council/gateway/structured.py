"""Prompts and checks for structured (JSON) answers: the schema instruction, parsing, repair."""

from __future__ import annotations

import json
from typing import Any, TypeVar

from pydantic import BaseModel, ValidationError

from council.gateway.jsonout import JSONExtractionError, extract_json

T = TypeVar("T", bound=BaseModel)


def schema_instruction(schema: type[BaseModel]) -> str:
    schema_json = json.dumps(schema.model_json_schema(), separators=(",", ":"))
    return (
        f"Answer with a single JSON object that validates against this JSON schema "
        f"(named {schema.__name__}):\n{schema_json}\n"
        "Reply with the JSON only: no prose, no code fences."
    )


def with_schema_instruction(
    messages: list[dict[str, Any]], schema: type[BaseModel]
) -> list[dict[str, Any]]:
    """A copy of `messages` whose last user message ends with the schema instruction."""
    instruction = schema_instruction(schema)
    out = [dict(m) for m in messages]
    last = out[-1] if out else None
    if last is not None and last.get("role") == "user" and isinstance(last.get("content"), str):
        last["content"] = f"{last['content']}\n\n{instruction}"
    else:
        out.append({"role": "user", "content": instruction})
    return out


def repair_messages(
    messages: list[dict[str, Any]], previous_answer: str, problem: str, schema: type[BaseModel]
) -> list[dict[str, Any]]:
    """The conversation plus the invalid answer and what was wrong with it."""
    return [
        *messages,
        {"role": "assistant", "content": previous_answer},
        {
            "role": "user",
            "content": (
                f"Your answer is not a valid {schema.__name__}:\n{problem}\n"
                "Reply again with only the corrected JSON object, matching the schema exactly."
            ),
        },
    ]


def parse_answer(text: str, schema: type[T]) -> tuple[T | None, str]:
    """(model, "") when `text` holds a valid answer, else (None, a readable description why)."""
    try:
        data = extract_json(text)
    except JSONExtractionError as exc:
        return None, str(exc)
    try:
        return schema.model_validate(data), ""
    except ValidationError as exc:
        return None, describe_validation_error(exc)


def describe_validation_error(exc: ValidationError) -> str:
    lines = []
    for err in exc.errors(include_url=False):
        where = ".".join(str(p) for p in err.get("loc", ())) or "(root)"
        lines.append(f"- {where}: {err.get('msg', 'invalid')}")
    return "\n".join(lines)
