"""A small MCP server (FastMCP, the official SDK) whose tools work on real blob storage: the
Azurite the tests started ($AZURITE_BLOB_ENDPOINT). Tool names and arguments are shaped like a
cloud MCP server's; `--read-only` leaves out every tool that writes, as the Azure MCP server's
read-only mode does. Run over stdio (default) or `--http PORT` (streamable HTTP)."""

from __future__ import annotations

import base64
import os
import sys
import time

from azure.core.exceptions import AzureError
from azure.storage.blob import BlobServiceClient
from mcp.server.fastmcp import FastMCP

KEY = "Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw=="


def _service() -> BlobServiceClient:
    endpoint = os.environ["AZURITE_BLOB_ENDPOINT"]
    return BlobServiceClient.from_connection_string(
        f"DefaultEndpointsProtocol=http;AccountName=devstoreaccount1;AccountKey={KEY};"
        f"BlobEndpoint={endpoint};"
    )


def build(read_only: bool, port: int = 8000) -> FastMCP:
    server = FastMCP("storage-test", port=port, log_level="ERROR")

    @server.tool()
    def storage_account_get(account: str) -> dict:
        """Show a storage account."""
        info = _service().get_account_information()
        return {"account": account, "sku": info.get("sku_name"), "kind": info.get("account_kind")}

    @server.tool()
    def storage_blob_list(account: str, container: str) -> dict:
        """List the blobs in a container."""
        client = _service().get_container_client(container)
        return {"blobs": [{"name": b.name, "size": b.size} for b in client.list_blobs()]}

    @server.tool()
    def wait_seconds(seconds: float) -> str:
        """Sleep, then answer (for timeouts)."""
        time.sleep(seconds)
        return "done"

    if read_only:
        return server

    @server.tool()
    def storage_container_create(account: str, container: str, public_access: str = "off") -> dict:
        """Create a blob container."""
        try:
            _service().create_container(
                container, public_access=None if public_access == "off" else "blob"
            )
        except AzureError as exc:
            raise ValueError(str(exc).splitlines()[0]) from exc
        return {"created": container}

    @server.tool()
    def storage_container_delete(account: str, container: str) -> dict:
        """Delete a blob container."""
        _service().delete_container(container)
        return {"deleted": container}

    @server.tool()
    def storage_blob_upload(account: str, container: str, blob: str, content_base64: str) -> dict:
        """Upload one blob."""
        data = base64.b64decode(content_base64)
        try:
            _service().get_container_client(container).upload_blob(blob, data)
        except AzureError as exc:
            raise ValueError(str(exc).splitlines()[0]) from exc
        return {"blob": blob, "size": len(data)}

    @server.tool()
    def storage_blob_delete(account: str, container: str, blob: str) -> dict:
        """Delete one blob."""
        _service().get_container_client(container).delete_blob(blob)
        return {"deleted": blob}

    return server


if __name__ == "__main__":
    args = sys.argv[1:]
    if "--http" in args:
        build("--read-only" in args, int(args[args.index("--http") + 1])).run("streamable-http")
    else:
        build("--read-only" in args).run("stdio")
