"""Errors a user can cause or meet, each with the exit code the CLI should return.

The CLI catches `CouncilError` and prints its message: no traceback for anything a user can fix.
"""

from __future__ import annotations

import sys


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


class EnvironmentProblem(CouncilError):
    """The file system or the run database refused (a missing folder, a corrupt database):
    something the user fixes outside council, reported without a traceback (exit 2)."""

    exit_code = 2


# DB-API errors that mean "this database file is not usable", not "council has a bug".
_DB_BUG_NAMES = frozenset({"IntegrityError", "ProgrammingError", "InterfaceError"})


def as_user_error(exc: BaseException) -> CouncilError | None:
    """The message for an OSError or a database error reaching the CLI, or None for others.

    Nothing is imported here: a database error can only come from modules already loaded.
    """
    if isinstance(exc, OSError):
        where = f"{exc.filename}: " if exc.filename else ""
        what = exc.strerror or str(exc) or type(exc).__name__
        return EnvironmentProblem(f"{where}{what}")
    db_errors = [
        cls
        for cls in (
            getattr(sys.modules.get("sqlalchemy.exc"), "DatabaseError", None),
            getattr(sys.modules.get("sqlite3"), "DatabaseError", None),
        )
        if cls is not None
    ]
    if not db_errors or not isinstance(exc, tuple(db_errors)):
        return None
    if type(exc).__name__ in _DB_BUG_NAMES:
        return None
    cause = getattr(exc, "orig", None) or exc
    return EnvironmentProblem(
        f"the council database cannot be used: {str(cause).splitlines()[0]}",
        hint="If .council/council.db is damaged, move it away "
        "(mv .council/council.db .council/council.db.bad) and run again: the run history "
        "starts afresh; the branches council made are untouched.",
    )
