"""`council deploy ...`: commands that produce deployment artefacts (the LiteLLM proxy config)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

deploy_app = typer.Typer(
    name="deploy",
    help="Deployment artefacts: the LiteLLM proxy configuration.",
    no_args_is_help=True,
    add_completion=False,
)


@deploy_app.command("litellm-config")
def litellm_config(
    config: Annotated[
        Path, typer.Option("--config", "-c", help="The council.yaml to read.")
    ] = Path("council.yaml"),
    out: Annotated[Path, typer.Option("--out", "-o", help="Where to write; '-' prints it.")] = Path(
        "litellm_config.yaml"
    ),
) -> None:
    """Write litellm_config.yaml for a LiteLLM proxy from council.yaml's models and personas."""
    from council.config import load_config
    from council.infra.litellm_config import render_litellm_config

    text = render_litellm_config(load_config(config), source=config.name)
    if str(out) == "-":
        typer.echo(text, nl=False)
        return
    out.write_text(text, encoding="utf-8")
    typer.echo(f"wrote {out}")
