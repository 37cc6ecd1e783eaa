"""Session fixtures of the `council doit` tests: one Azurite for the whole session."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.fakes.azurite import Azurite


@pytest.fixture(scope="session")
def azurite(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Azurite]:
    server = Azurite(tmp_path_factory.mktemp("azurite")).start()
    try:
        yield server
    finally:
        server.stop()
