"""Azurite (the Azure Storage emulator, npm `azurite`, installed by scripts/setup --dev) started
on 127.0.0.1 for the tests, with its data in a temporary folder, and stopped afterwards."""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import time
from pathlib import Path


def azurite_blob_binary() -> str | None:
    explicit = os.environ.get("COUNCIL_AZURITE")
    if explicit:
        return explicit
    found = shutil.which("azurite-blob")
    if found:
        return found
    cache = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache")
    local = cache / "council" / "tools" / "azurite" / "node_modules" / ".bin" / "azurite-blob"
    return str(local) if local.is_file() else None


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Azurite:
    def __init__(self, data: Path) -> None:
        self.data = data
        self.port = _free_port()
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def blob_endpoint(self) -> str:
        return f"http://127.0.0.1:{self.port}/devstoreaccount1"

    def start(self) -> Azurite:
        binary = azurite_blob_binary()
        if binary is None:
            raise RuntimeError("azurite is not installed: run scripts/setup --dev")
        self.data.mkdir(parents=True, exist_ok=True)
        self.process = subprocess.Popen(
            [
                binary,
                "--blobHost",
                "127.0.0.1",
                "--blobPort",
                str(self.port),
                "--location",
                str(self.data),
                "--skipApiVersionCheck",
                "--loose",
                "--silent",
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        deadline = time.monotonic() + 90  # node starts slowly on a loaded machine
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"azurite exited with {self.process.returncode}")
            try:
                socket.create_connection(("127.0.0.1", self.port), timeout=0.5).close()
                return self
            except OSError:
                time.sleep(0.1)
        self.stop()
        raise RuntimeError("azurite did not listen within 90 s")

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.kill()  # its data is a temporary folder: nothing to close cleanly
            self.process.wait()
