"""How a doit objective asks its user: answers to clarifying questions and confirmations.

The CLI on a terminal gives an `Interaction`; a run with none (a pipe, the server's worker)
stops with the question instead, and `council doit --resume` continues once it is answered
(or the request is given again, more precisely). `--yes` approves budget confirmations only:
a destructive operation always needs the resource's name typed at the terminal.
"""

from __future__ import annotations

from typing import Protocol


class Interaction(Protocol):
    def answer(self, question: str) -> str | None:
        """The user's answer, or None when they give none."""

    def confirm(self, text: str) -> bool:
        """Yes or no to `text`."""

    def confirm_destructive(self, text: str, name: str) -> bool:
        """True only when the user typed `name` itself."""


class TerminalInteraction:
    """Prompts on the terminal (typer's prompt and confirm)."""

    def answer(self, question: str) -> str | None:
        import typer

        text = typer.prompt(question, default="", show_default=False).strip()
        return text or None

    def confirm(self, text: str) -> bool:
        import typer

        return bool(typer.confirm(text, default=False))

    def confirm_destructive(self, text: str, name: str) -> bool:
        import typer

        typed = typer.prompt(f"{text}\nType {name!r} to confirm", default="", show_default=False)
        return typed.strip() == name
