"""Which strategies to try for an intent, best first.

On the emulator: the SDK (data plane, in-process), then the CLI, then an MCP server; Terraform
cannot reach it. On Azure: an MCP server when one is configured (a standard tool interface),
then Terraform for objectives that build several resources when it is installed, then the
CLI, then the SDK (containers and blobs only). Unavailable or unsupported ones are reported and
passed over by the executor; failed ones are skipped when an objective is retried.
"""

from __future__ import annotations

from pathlib import Path

from council.cloud.intent import CloudIntent
from council.cloud.mcp_client import McpServer
from council.cloud.strategies.azcli import AzCliStrategy
from council.cloud.strategies.base import Strategy
from council.cloud.strategies.mcp import McpStrategy
from council.cloud.strategies.sdk import SdkStrategy
from council.cloud.strategies.terraform import TerraformStrategy
from council.cloud.target import CloudTarget
from council.events import EventSink, null_sink

NAMES = ("sdk", "azure-cli", "mcp", "terraform")


def rank(
    intent: CloudIntent,
    target: CloudTarget,
    base: Path,
    workdir: Path,
    *,
    mcp_server: McpServer | None = None,
    emit: EventSink = null_sink,
    only: str | None = None,
) -> list[Strategy]:
    sdk = SdkStrategy(target, base)
    cli = AzCliStrategy(target, base, emit, state_dir=workdir / "az" if target.local else None)
    mcp = McpStrategy(target, base, mcp_server)
    terraform = TerraformStrategy(target, base, workdir / "terraform")
    if target.local:
        order: list[Strategy] = [sdk, cli, mcp, terraform]
    else:
        infra = {"resource_group", "storage_account"} & {r.type for r in intent.resources}
        complex_ = intent.operation == "create" and len(intent.resources) >= 3 and infra
        order = [mcp, terraform, cli, sdk] if complex_ else [mcp, cli, terraform, sdk]
    if only is not None:
        order = [s for s in order if s.name == only]
    return order
