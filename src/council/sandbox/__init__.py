"""Sandbox: run commands on generated code with a timeout, limits, no network, read-only fs."""

from council.sandbox.capabilities import SandboxCapabilities, capabilities, probe
from council.sandbox.runner import CommandResult, Limits, read_only, run

__all__ = [
    "CommandResult",
    "Limits",
    "SandboxCapabilities",
    "capabilities",
    "probe",
    "read_only",
    "run",
]
