"""Deployment failures recognised without a model (seed 003 §5's table, plus what a service
adds), and the deterministic recovery for each that has one.

A row names what the logs or the health report show, the diagnosis in DeploymentDiagnosis's
terms, and the recovery: `add_dependency` (declare the missing package; the next release
builds its env again), `longer_health_timeout` (a slow start, not a broken one), `retry` (a
port taken between choosing and binding it), or "" when only a code or configuration change
fixes it (DevOps diagnoses, Builder patches).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from council.recovery import distribution_for
from council.recovery.catalogue import module_origin
from council.targets.base import HealthReport
from council.targets.health import LISTENING, listening_ports

MAX_HEALTH_TIMEOUT_S = 600.0


@dataclass(frozen=True)
class KnownFailure:
    id: str
    category: str  # as DeploymentDiagnosis.category
    cause: str
    evidence: list[str]
    recovery: str = ""  # "" : needs a code/config fix (DevOps + Builder)
    payload: dict[str, Any] = field(default_factory=dict)

    def as_dict(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "category": self.category,
            "cause": self.cause,
            "evidence": self.evidence,
            "recovery": self.recovery,
            "payload": self.payload,
        }


_MISSING_MODULE = re.compile(r"ModuleNotFoundError: No module named '([\w.]+)'")
_MISSING_ENV = re.compile(r"KeyError: '([A-Z][A-Z0-9_]*)'")
_PORT_IN_USE = re.compile(r"(?i)address already in use|errno 98")
_IMPORT_APP = re.compile(
    r'Error loading ASGI app\. (?:Could not import module|Attribute) "?([^"\n]+)'
)
_SYNTAX = re.compile(r"^\s*(SyntaxError|IndentationError): .*", re.M)
_AZ_MISSING = re.compile(r"(?:az: command not found|No such file or directory: 'az')")
_AUTH = re.compile(r"(?i)(authentication failed|AADSTS\d+|please run 'az login')")


def _line(log: str, pattern: re.Pattern[str]) -> str:
    for line in log.splitlines():
        if pattern.search(line):
            return line.strip()
    return ""


def classify_failure(
    report: HealthReport, log: str, *, project: Path, port: int | None = None
) -> KnownFailure | None:
    """The known failure that `report` and the service's `log` show, or None. `port`: the one
    the service was told to listen on (a service that binds another one is never reached)."""
    if match := _MISSING_MODULE.search(log):
        module = match.group(1)
        if module_origin(module, project) == "dependency":
            dist = distribution_for(module)
            return KnownFailure(
                "missing_dependency",
                "dependency",
                f"the service imports {module}, which no declared dependency provides",
                [match.group(0)],
                "add_dependency",
                {"module": module, "distribution": dist},
            )
        return KnownFailure(
            "import_error",
            "code",
            f"the service imports {module}, which the project does not have",
            [match.group(0)],
        )
    listening = listening_ports(log)
    if port is not None and listening and port not in listening:
        return KnownFailure(
            "wrong_port",
            "network",
            f"the service listens on port {min(listening)}, not on {port}, the port it was given",
            [_line(log, LISTENING)],
        )
    if _PORT_IN_USE.search(log):
        return KnownFailure(
            "port_in_use",
            "network",
            "the port the service was given was taken before it bound it",
            [_line(log, _PORT_IN_USE)],
            "retry",
        )
    if match := _MISSING_ENV.search(log):
        return KnownFailure(
            "missing_env",
            "configuration",
            f"the service needs the environment variable {match.group(1)}, which is not set",
            [match.group(0)],
            payload={"variable": match.group(1)},
        )
    if match := _SYNTAX.search(log):
        evidence = [match.group(0).strip()]
        return KnownFailure("syntax_error", "code", "the service's code does not parse", evidence)
    if match := _IMPORT_APP.search(log):
        return KnownFailure(
            "import_error", "code", "the ASGI app cannot be imported", [match.group(0)]
        )
    if _AZ_MISSING.search(log):
        evidence = [_line(log, _AZ_MISSING)]
        return KnownFailure(
            "az_missing", "configuration", "the Azure CLI is not installed", evidence
        )
    if _AUTH.search(log):
        evidence = [_line(log, _AUTH)]
        return KnownFailure("auth_failed", "permissions", "signing in to Azure failed", evidence)
    if report.exit_code is None and report.status_code is not None and report.status_code >= 500:
        return None  # the health endpoint answers 5xx: the code's fault, a model reads it
    if (
        report.exit_code is None
        and report.status_code is None
        and "not healthy after" in (report.error)
    ):
        return KnownFailure(
            "startup_timeout",
            "resources",
            "the service is running but did not answer its health check in time",
            [report.error],
            "longer_health_timeout",
        )
    return None


def longer_timeout(current_s: float) -> float:
    return min(current_s * 2, MAX_HEALTH_TIMEOUT_S)
