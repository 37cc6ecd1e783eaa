"""Where an objective's resources go: a real Azure subscription, or the local Azure Storage
emulator (Azurite) on loopback.

The emulator has one fixed account (`devstoreaccount1`, its well-known key is published by
Microsoft and by Azurite itself) and no management plane: there a storage account or resource
group is not created but checked to exist, and the plan says so.
"""

from __future__ import annotations

import os
from dataclasses import dataclass

# Azurite's published development account and key (the same on every machine; not a secret).
EMULATOR_ACCOUNT = "devstoreaccount1"
EMULATOR_KEY = (
    "Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw=="
)
DEFAULT_BLOB_ENDPOINT = "http://127.0.0.1:10000/devstoreaccount1"


@dataclass(frozen=True)
class CloudTarget:
    kind: str  # "local" (Azurite) | "azure"
    blob_endpoint: str = ""  # local: the emulator's blob endpoint

    @property
    def local(self) -> bool:
        return self.kind == "local"

    @property
    def connection_string(self) -> str:
        """The emulator's connection string (local only)."""
        return (
            f"DefaultEndpointsProtocol=http;AccountName={EMULATOR_ACCOUNT};"
            f"AccountKey={EMULATOR_KEY};BlobEndpoint={self.blob_endpoint};"
        )

    def account_url(self, account: str) -> str:
        if self.local:
            return self.blob_endpoint
        return f"https://{account}.blob.core.windows.net"

    @classmethod
    def named(cls, kind: str) -> CloudTarget:
        """`local`: Azurite at $COUNCIL_AZURITE_BLOB_ENDPOINT (default 127.0.0.1:10000)."""
        if kind == "local":
            endpoint = os.environ.get("COUNCIL_AZURITE_BLOB_ENDPOINT") or DEFAULT_BLOB_ENDPOINT
            return cls("local", endpoint.rstrip("/"))
        if kind == "azure":
            return cls("azure")
        raise ValueError(f"unknown target {kind!r} (local or azure)")
