"""The MCP client and strategy on the official SDK, against a small FastMCP server the tests
start (tests/fakes/mcp_storage_server.py) whose tools write to the session's Azurite: stdio and
streamable HTTP, tool discovery, read-only start, timeouts, and the full round trip."""

from __future__ import annotations

import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest
from azure.storage.blob import BlobServiceClient

from council.cloud.execute import Hooks, RetryPolicy, carry_out
from council.cloud.intent import CloudIntent, CloudResource
from council.cloud.mcp_client import McpClient, McpError, McpServer
from council.cloud.strategies.mcp import McpStrategy
from council.cloud.target import CloudTarget

SERVER = str(Path(__file__).parent / "fakes" / "mcp_storage_server.py")


def _stdio(azurite, *extra: str) -> McpServer:
    return McpServer(
        command=[sys.executable, SERVER, *extra],
        env={"AZURITE_BLOB_ENDPOINT": azurite.blob_endpoint},
        read_only_args=["--read-only"],
        timeout_s=20,
    )


def _intent(operation: str = "create", container: str = "mcp-reports") -> CloudIntent:
    resources = [CloudResource(type="blob_container", name=container)]
    if operation == "create":
        resources.append(
            CloudResource(type="blob_upload", parameters={"container": container, "files": "*.csv"})
        )
    return CloudIntent(
        operation=operation,
        summary="container and reports",
        region="westeurope",
        confidence=0.9,
        resources=[CloudResource(type="storage_account", name="reportsacct"), *resources],
    )


def test_stdio_round_trip_through_discovered_tools(azurite, tmp_path: Path) -> None:
    (tmp_path / "q1.csv").write_text("a,b\n1,2\n")
    target = CloudTarget("local", azurite.blob_endpoint)
    strategy = McpStrategy(target, tmp_path, _stdio(azurite))
    try:
        used, plan, _ = carry_out(_intent(), [strategy], Hooks(), RetryPolicy(base_s=0.01))
        assert used is strategy
        assert [a.call["tool"] for a in plan.actions] == [
            "storage_container_create",
            "storage_blob_upload",
        ]
        assert plan.actions[1].call["arguments"]["content_base64"] == {
            "$file": str(tmp_path / "q1.csv")
        }
        client = BlobServiceClient.from_connection_string(target.connection_string)
        blobs = {b.name: b.size for b in client.get_container_client("mcp-reports").list_blobs()}
        assert blobs == {"q1.csv": 8}
        for action in reversed(plan.actions):
            strategy.undo(action)
        assert not client.get_container_client("mcp-reports").exists()
    finally:
        strategy.close()


def test_read_only_start_discovery_and_timeouts(azurite, tmp_path: Path) -> None:
    target = CloudTarget("local", azurite.blob_endpoint)
    listing = McpStrategy(target, tmp_path, _stdio(azurite))
    try:
        # Listing writes nothing: the server is started with its read-only arguments.
        plan = listing.plan(_intent("list"))
        assert "the server was started read-only" in plan.notes
        assert [a.call["tool"] for a in plan.actions] == ["storage_blob_list"]
        client = listing.client(read_only=True)
        names = {t.name for t in client.tools()}
        assert "storage_blob_list" in names and "storage_container_create" not in names
        with pytest.raises(McpError, match="timed out after 0.5s"):
            client.call("wait_seconds", {"seconds": 1.5}, timeout_s=0.5)
        with pytest.raises(McpError, match="no tool 'nope'"):
            client.call("nope", {})
    finally:
        listing.close()


def test_a_server_without_the_tools_is_unsupported_before_anything_runs(
    azurite, tmp_path: Path
) -> None:
    target = CloudTarget("local", azurite.blob_endpoint)
    strategy = McpStrategy(target, tmp_path, _stdio(azurite, "--read-only"))
    assert strategy.unsupported(_intent()) == "the MCP server has no tool to create blob container"


def test_a_server_that_cannot_start_is_a_clear_error() -> None:
    with pytest.raises(McpError, match="cannot be reached"):
        McpClient(McpServer(command=[sys.executable, "-c", "raise SystemExit(3)"])).connect()


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_streamable_http_discovery_and_calls(azurite) -> None:
    port = _free_port()
    env = {"AZURITE_BLOB_ENDPOINT": azurite.blob_endpoint, "PATH": "/usr/bin:/bin"}
    server = subprocess.Popen(
        [sys.executable, SERVER, "--http", str(port)],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                socket.create_connection(("127.0.0.1", port), timeout=0.5).close()
                break
            except OSError:
                assert time.monotonic() < deadline, "the MCP HTTP server did not start"
                time.sleep(0.1)
        config = McpServer(url=f"http://127.0.0.1:{port}/mcp", timeout_s=20)
        with McpClient(config) as client:
            assert "storage_container_create" in {t.name for t in client.tools()}
            assert client.call(
                "storage_container_create", {"account": "a", "container": "mcphttp"}
            ) == {"created": "mcphttp"}
            assert client.call("storage_blob_list", {"account": "a", "container": "mcphttp"}) == {
                "blobs": []
            }
            client.call("storage_container_delete", {"account": "a", "container": "mcphttp"})
    finally:
        server.terminate()
        server.wait(timeout=10)
