"""Errors a user can cause or meet, each with the exit code the CLI should return.

The CLI catches `CouncilError` and prints its message: no traceback for anything a user can fix.
"""

from __future__ import annotations


class CouncilError(Exception):
    """Base for errors reported to the user as a message, never a traceback."""

    exit_code: int = 1

    def __init__(self, message: str, *, hint: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.hint = hint

    def __str__(self) -> str:
        return self.message if not self.hint else f"{self.message}\n{self.hint}"


class ConfigError(CouncilError):
    """council.yaml is missing, invalid, or names no usable model (usage error: exit 2)."""

    exit_code = 2


class UsageError(CouncilError):
    """Bad command-line usage: not a git repository, unknown run id, ... (exit 2)."""

    exit_code = 2


class ModelError(CouncilError):
    """A model call failed after retries and fallbacks."""


class BudgetExceeded(CouncilError):
    """The next model call would take the run over its budget; the call was not made."""


class StructuredOutputError(ModelError):
    """A persona's structured answer stayed invalid after the repair re-ask."""


class ToolchainError(CouncilError):
    """A required tool (uv, pytest, node, javac, ...) is missing or failed to set up."""


class WorkspaceError(CouncilError):
    """A git operation on the worktree failed."""


class LocalModelError(CouncilError):
    """The embedded local model is missing, corrupt, not downloadable or not loadable (exit 2)."""

    exit_code = 2
