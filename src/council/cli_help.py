"""Plain help text: typer 0.29 prints `<bool>` after every flag, `<list[str]>` for a repeatable
option and `{feature}` for a required argument. Help says FEATURE, TEXT, PATH instead, and
nothing after a flag, as click always did. tests/test_cli_help.py fails if typer changes these.
"""

from __future__ import annotations

from typing import Any

from typer import core

_NAMES = {"str": "TEXT", "int": "INTEGER", "float": "FLOAT", "bool": "BOOLEAN"}


def _display_type(self: Any, ctx: Any) -> str:
    if getattr(self, "is_flag", False):
        return ""  # a flag takes no value
    desc = self.type_descriptor
    if desc.is_choice:
        return "|".join(str(c) for c in desc.choices or ())
    if desc.is_path:
        return "PATH"
    bare = self.bare_type()
    if desc.is_list and bare.startswith("list["):
        bare = bare[len("list[") : -1]
    return _NAMES.get(bare, bare.upper())


def _usage_display_name(self: Any) -> str:
    name = self.display_name_raw.upper()
    name = name if self.required else f"[{name}]"
    return name + ("..." if self.nargs != 1 else "")


def _rich_display_name(self: Any) -> str:
    return self.display_name_raw.upper() + ("..." if self.nargs != 1 else "")


def plain_help() -> None:
    """Install the plain help rendering (idempotent)."""
    core._TyperParameter.display_type = _display_type
    core.TyperArgument._usage_display_name = _usage_display_name
    core.TyperArgument._rich_display_name = _rich_display_name
