"""`council models ...`: the embedded local model's files (pull, list), and whether any model
can be had (check)."""

from __future__ import annotations

import functools
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

if TYPE_CHECKING:
    from rich.console import Console

models_app = typer.Typer(
    name="models",
    help="The embedded local model (GGUF via llama.cpp): download and list model files.",
    no_args_is_help=True,
    add_completion=False,
)


@functools.cache
def _out() -> Console:
    from rich.console import Console  # imported on use: `council --help` stays fast

    return Console(highlight=False, soft_wrap=True)


def _size(n: int) -> str:
    for unit in ("B", "KB", "MB", "GB"):
        if n < 1024 or unit == "GB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1024
    return f"{n:.1f} GB"


@models_app.command("pull")
def pull(
    name: Annotated[
        str | None,
        typer.Argument(
            help="A catalogue name (see `council models list --all`); default: the default model."
        ),
    ] = None,
) -> None:
    """Download a model into the cache (resumes a partial download, checks the SHA-256)."""
    from council.errors import LocalModelError
    from council.local import CATALOGUE, DEFAULT_MODEL, read_info, spec_for
    from council.local.download import download, offline_hint
    from council.local.files import offline, path_for

    spec = spec_for(name)
    target = path_for(spec)
    if target.is_file():
        info = read_info(target)
        _out().print(f"{spec.name} is already present: {target} ({_size(info.size_bytes)})")
        return
    if offline():
        raise LocalModelError(
            f"offline (COUNCIL_OFFLINE or HF_HUB_OFFLINE is set): not downloading {spec.name}",
            hint=offline_hint(spec, target),
        )
    _out().print(
        f"downloading {spec.name} ({spec.quantisation}, about {_size(spec.size_bytes)}; needs "
        f"about {spec.memory_gb:.1f} GB of memory to run) to {target}"
    )
    from rich.progress import (
        BarColumn,
        DownloadColumn,
        Progress,
        TimeRemainingColumn,
        TransferSpeedColumn,
    )

    columns = (BarColumn(), DownloadColumn(), TransferSpeedColumn(), TimeRemainingColumn())
    with Progress(*columns, console=_out(), transient=False) as progress:
        task = progress.add_task(spec.name, total=spec.size_bytes)

        def report(done: int, total: int) -> None:
            progress.update(task, completed=done, total=total or None)

        download(spec, target, progress=report)
    read_info(target)
    _out().print(f"ready: {target}")
    if spec.name != DEFAULT_MODEL and spec.name in CATALOGUE:
        _out().print(
            f"use it with council.yaml `model: council-local/{spec.name}` in models[], or "
            f"COUNCIL_LOCAL_MODEL={target}"
        )


def _columns(rows: list[list[str]]) -> list[str]:
    """Rows as aligned plain-text lines: readable in a terminal and usable in a pipe."""
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    return [
        "  ".join(cell.ljust(w) for cell, w in zip(row, widths, strict=True)).rstrip()
        for row in rows
    ]


@models_app.command("list")
def list_models(
    all_: Annotated[
        bool, typer.Option("--all", help="Also list catalogue models that are not downloaded.")
    ] = False,
) -> None:
    """Model files present (size, quantisation, architecture), and the catalogue with --all."""
    from council.local import CATALOGUE, DEFAULT_MODEL, ENV_MODEL, models_dir, present_models

    present = present_models()
    rows = [["NAME", "SIZE", "QUANT", "ARCH", "PARAMS", "FILE"]]
    for item in present:
        if item.info is None:
            detail = (
                f"partial download ({_size(item.partial_bytes)})"
                if item.partial_bytes
                else f"unusable: {item.problem}"
            )
            rows.append([item.name, "", "", "", "", detail])
            continue
        info = item.info
        params = (
            f"{info.parameters / 1e9:.2f}B" if info.parameters > 1e8 else f"{info.parameters:,}"
        )
        rows.append(
            [
                item.name,
                _size(info.size_bytes),
                info.quantisation,
                info.architecture,
                params,
                str(info.path),
            ]
        )
    if present:
        for line in _columns(rows):
            _out().print(line, markup=False)
    else:
        _out().print(
            f"no local model files in {models_dir()}; `council models pull` fetches the "
            f"default ({DEFAULT_MODEL})",
            markup=False,
        )
    if all_:
        _out().print("\ncatalogue (council models pull NAME):")
        rows = [["NAME", "DOWNLOAD", "MEMORY", "QUANT", "HUB FILE"]]
        for spec in CATALOGUE.values():
            label = spec.name + (" (default)" if spec.name == DEFAULT_MODEL else "")
            rows.append(
                [
                    label,
                    f"~{_size(spec.size_bytes)}",
                    f"~{spec.memory_gb:.1f} GB",
                    spec.quantisation,
                    f"{spec.repo}/{spec.filename}",
                ]
            )
        for line in _columns(rows):
            _out().print(line, markup=False)
        _out().print(f"{ENV_MODEL}=/path/file.gguf uses any GGUF file instead.", markup=False)


@models_app.command("check")
def check(
    repo: Annotated[
        Path | None,
        typer.Option(
            "--repo", "-r", help="Whose council.yaml to check (default: here).", show_default=False
        ),
    ] = None,
) -> None:
    """Say at once whether a model can be had: the repository's council.yaml, a provider key
    or proxy, the local model file present, or the hub reachable (exit 2 with what to do when
    none is)."""
    from council.config import provider_key_configured

    if _configured_models((repo or Path.cwd()).resolve()):
        return
    from council.errors import LocalModelError
    from council.local import spec_for
    from council.local.download import endpoint, hub_problem, offline_hint
    from council.local.files import model_file, offline, override

    provider = provider_key_configured()
    if provider:
        _out().print(f"a model can be had: the {provider} provider is configured", markup=False)
        return
    path = model_file()
    if path.is_file():
        _out().print(f"a model can be had: {path} is present", markup=False)
        return
    if override() is not None:
        raise LocalModelError(f"COUNCIL_LOCAL_MODEL={path} does not exist")
    spec = spec_for(None)
    why = "offline (COUNCIL_OFFLINE or HF_HUB_OFFLINE is set)" if offline() else hub_problem(spec)
    if why is None:
        _out().print(f"a model can be had: {spec.name} can be downloaded from {endpoint()}")
        return
    raise LocalModelError(
        f"no model can be had: no provider key is set, {spec.name} is not downloaded, and "
        f"it cannot be downloaded now: {why}",
        hint=offline_hint(spec, path),
    )


def _configured_models(repo: Path) -> bool:
    """True (and said) when the repository's council.yaml names models a run can call now; a
    ConfigError naming the variables when they are not set. False when there is no council.yaml
    or its models are the embedded one (the local checks below apply)."""
    from council.config import CONFIG_FILE, load_config
    from council.errors import ConfigError

    path = repo / CONFIG_FILE
    if not path.is_file():
        return False
    config = load_config(path)
    remote = [m for m in config.models if not m.litellm_params["model"].startswith("council-local")]
    if not remote:
        return False
    missing = config.missing_env()
    if missing:
        raise ConfigError(
            f"{path} configures models, but {' and '.join(missing)} "
            f"{'is' if len(missing) == 1 else 'are'} not set",
            hint=f"export {'=... '.join(missing)}=... and run again",
        )
    names = ", ".join(dict.fromkeys(m.litellm_params["model"] for m in remote))
    _out().print(f"a model can be had: {path} configures {names}", markup=False)
    return True
