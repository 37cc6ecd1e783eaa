"""Plain help text. Typer 0.29 prints `<bool>` after every flag, `<list[str]>` for a repeatable
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


def _short_help(self: Any, limit: int = 45) -> str:
    """A command's line in its group's list: the first sentence of its help, whole (the list
    wraps it), never click's cut at 45 characters that ends mid-phrase in "..."."""
    if self.short_help:
        return " ".join(self.short_help.split())
    first = " ".join((self.help or "").strip().split("\n\n")[0].split())
    sentence, dot, _ = first.partition(". ")
    return sentence + "." if dot else first


# The commands a new user needs first, in the order they meet them; the rest follow in the
# order they are registered.
FIRST_COMMANDS = ("init", "run", "runs", "show", "resume", "heal", "prompts", "models", "schema")


class CouncilGroup(core.TyperGroup):
    """`council --help` lists the everyday commands first."""

    def list_commands(self, ctx: Any) -> list[str]:
        names = super().list_commands(ctx)
        first = {name: i for i, name in enumerate(FIRST_COMMANDS)}
        return sorted(names, key=lambda n: first.get(n, len(first)))  # stable: rest as added


def plain_help() -> None:
    """Install the plain help rendering (idempotent)."""
    core.TyperCommand.get_short_help_str = _short_help
    core.TyperGroup.get_short_help_str = _short_help
    core._TyperParameter.display_type = _display_type
    core.TyperArgument._usage_display_name = _usage_display_name
    core.TyperArgument._rich_display_name = _rich_display_name
