"""What isolation this machine offers the sandbox (bubblewrap, a bare namespace, or none).

Probed once per process by actually running a trivial confined command, because "the binary
exists" says nothing about whether the kernel or the container lets it work.
"""

from __future__ import annotations

import functools
import os
import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

Backend = Literal["bwrap", "unshare", "none"]

# Set to bwrap, unshare or none to force a backend (a broken bwrap, or debugging a sandboxed run).
BACKEND_ENV = "COUNCIL_SANDBOX"

CONFINE_SCRIPT = Path(__file__).with_name("_confine.py")


@dataclass(frozen=True)
class SandboxCapabilities:
    """The isolation `run()` will apply here, and a notice for the user when some is missing."""

    backend: Backend
    network_isolation: bool
    fs_isolation: bool
    bwrap: str | None = None
    unshare: str | None = None
    user_namespace: bool = False  # the unshare backend needs `-r` (we are not root)
    pid_namespace: bool = False  # the unshare backend gets its own pid namespace
    notice: str | None = None

    @property
    def degraded(self) -> bool:
        return not (self.network_isolation and self.fs_isolation)


def _works(argv: list[str]) -> bool:
    try:
        done = subprocess.run(
            argv, stdin=subprocess.DEVNULL, capture_output=True, timeout=10, check=False
        )
    except (OSError, subprocess.SubprocessError):
        return False
    return done.returncode == 0


def _probe_bwrap(bwrap: str) -> bool:
    return _works(
        [bwrap, "--ro-bind", "/", "/", "--dev", "/dev", "--proc", "/proc", "--unshare-net"]
        + ["--unshare-pid", "--die-with-parent", "--", "true"]
    )


def _unshare_prefix(unshare: str, *, user_ns: bool, network: bool, pid_ns: bool) -> list[str]:
    argv = [unshare, "--mount", "--propagation", "private"]
    if user_ns:
        argv += ["--user", "--map-root-user"]
    if pid_ns:
        # The command's pid 1 is our _confine.py shim; it never sees council's pid, and when the
        # shim ends (or unshare is killed: --kill-child) the kernel kills everything inside.
        argv += ["--pid", "--fork", "--mount-proc", "--kill-child"]
    if network:
        argv.append("--net")
    return argv


def _probe_unshare(unshare: str, user_ns: bool) -> tuple[bool, bool, bool]:
    """(network, read-only mount, pid) namespaces work, for the unshare backend."""
    pid = _works(_unshare_prefix(unshare, user_ns=user_ns, network=False, pid_ns=True) + ["true"])
    net = _works(_unshare_prefix(unshare, user_ns=user_ns, network=True, pid_ns=pid) + ["true"])
    probe = [sys.executable, "-I", str(CONFINE_SCRIPT), "--probe"]
    fs = _works(_unshare_prefix(unshare, user_ns=user_ns, network=False, pid_ns=pid) + probe)
    return net, fs, pid


_MISSING_HINT = (
    "Install bubblewrap (`apt-get install bubblewrap`) and allow user namespaces to get "
    "full isolation."
)


def probe(backend: Backend | None = None) -> SandboxCapabilities:
    """Find the best working backend (or check the one asked for); not cached."""
    wanted = backend or os.environ.get(BACKEND_ENV) or None
    if sys.platform != "linux":
        return SandboxCapabilities(
            "none",
            False,
            False,
            notice=f"Sandbox: no isolation on {sys.platform}: commands run with limits and a "
            "scrubbed environment only; generated code can reach the network and write "
            "anywhere your user can.",
        )
    bwrap = shutil.which("bwrap")
    unshare = shutil.which("unshare")
    user_ns = os.geteuid() != 0
    if wanted in (None, "bwrap") and bwrap and _probe_bwrap(bwrap):
        return SandboxCapabilities("bwrap", True, True, bwrap=bwrap, unshare=unshare)
    if wanted in (None, "unshare") and unshare:
        net, fs, pid = _probe_unshare(unshare, user_ns)
        if net or fs:
            missing = [
                name for name, ok in (("network", net), ("filesystem", fs), ("pid", pid)) if not ok
            ]
            notice = None
            if missing:
                notice = (
                    f"Sandbox: bubblewrap unavailable; using unshare without {' or '.join(missing)}"
                    f" isolation. {_MISSING_HINT}"
                )
            return SandboxCapabilities(
                "unshare",
                net,
                fs,
                bwrap=bwrap,
                unshare=unshare,
                user_namespace=user_ns,
                pid_namespace=pid,
                notice=notice,
            )
    why = "bubblewrap is not installed" if not bwrap else "bubblewrap does not work here"
    if wanted == "none":
        why = f"{BACKEND_ENV}=none"
    return SandboxCapabilities(
        "none",
        False,
        False,
        bwrap=bwrap,
        unshare=unshare,
        notice=(
            f"Sandbox: NO ISOLATION ({why}, and no usable namespaces): generated code runs with "
            "resource limits and a scrubbed environment only; it can reach the network and write "
            f"anywhere your user can. {_MISSING_HINT}"
        ),
    )


@functools.cache
def capabilities() -> SandboxCapabilities:
    """The isolation available here, probed once per process."""
    return probe()
