"""Which GGUF file a local model name means, and what is already on disk.

`COUNCIL_LOCAL_MODEL=/path/file.gguf` wins over everything; otherwise a catalogue name maps to
`<cache>/gguf/<filename>`, downloaded on first use unless `COUNCIL_OFFLINE` (or HF_HUB_OFFLINE)
says not to try.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from council.errors import LocalModelError
from council.local.catalogue import CATALOGUE, LocalModelSpec, spec_for
from council.local.download import Progress, download, offline_hint
from council.local.gguf_file import GGUFInfo, read_info
from council.paths import cache_root

ENV_MODEL = "COUNCIL_LOCAL_MODEL"


def models_dir() -> Path:
    return cache_root() / "gguf"


def offline() -> bool:
    return any(
        os.environ.get(name, "").lower() in ("1", "true", "yes")
        for name in ("COUNCIL_OFFLINE", "HF_HUB_OFFLINE")
    )


def path_for(spec: LocalModelSpec) -> Path:
    return models_dir() / spec.filename


def override() -> Path | None:
    value = os.environ.get(ENV_MODEL)
    return Path(value).expanduser() if value else None


def model_file(name: str | None = None) -> Path:
    """The file `name` means right now (COUNCIL_LOCAL_MODEL first), without reading it; it may
    not exist yet."""
    return override() or path_for(spec_for(name))


def resolve_model(
    name: str | None = None, *, fetch: bool = True, progress: Progress | None = None
) -> Path:
    """The checked GGUF file for `name`; downloaded first if missing and `fetch` allows."""
    path = model_file(name)
    if not path.is_file():
        if override() is not None:
            raise LocalModelError(
                f"{ENV_MODEL}={path} does not exist",
                hint=f"Point {ENV_MODEL} at a .gguf file, or unset it to use the default model.",
            )
        spec = spec_for(name)
        if not fetch or offline():
            raise LocalModelError(
                f"the local model {spec.name} is not downloaded", hint=offline_hint(spec, path)
            )
        download(spec, path, progress=progress)
    read_info(path)
    return path


def model_identity(name: str | None = None) -> str:
    """Which file `name` means right now (path, size, mtime) without reading it: cached answers
    from one model file must not be replayed for another under the same alias."""
    chosen = model_file(name)
    try:
        stat = chosen.stat()
    except OSError:
        return f"{chosen}:absent"
    return f"{chosen.resolve()}:{stat.st_size}:{stat.st_mtime_ns}"


@dataclass(frozen=True)
class Present:
    name: str  # catalogue name, or "COUNCIL_LOCAL_MODEL" / the file name
    info: GGUFInfo | None
    problem: str = ""  # why the file cannot be used, if it cannot
    partial_bytes: int = 0  # a download in progress


def present_models() -> list[Present]:
    """Every model file council would use: the override, the catalogue's, any other *.gguf."""
    found: list[Present] = []
    seen: set[Path] = set()

    def describe(name: str, path: Path) -> None:
        seen.add(path.resolve())
        try:
            found.append(Present(name, read_info(path)))
        except LocalModelError as exc:
            found.append(Present(name, None, exc.message))

    chosen = override()
    if chosen is not None:
        describe(ENV_MODEL, chosen)
    by_file = {spec.filename: spec.name for spec in CATALOGUE.values()}
    folder = models_dir()
    for path in sorted(folder.glob("*.gguf")) if folder.is_dir() else []:
        if path.resolve() not in seen:
            describe(by_file.get(path.name, path.name), path)
    for part in sorted(folder.glob("*.gguf.part")) if folder.is_dir() else []:
        name = by_file.get(part.name.removesuffix(".part"), part.name)
        found.append(Present(name, None, "partial download", part.stat().st_size))
    return found
