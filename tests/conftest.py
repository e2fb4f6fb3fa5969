from __future__ import annotations

from pathlib import Path
from typing import AsyncIterator

import pytest

from peer.compat import restrict_host_addresses
from tests.support.server import Client, RunningServer, running_server, test_config

_HERE = Path(__file__).resolve().parent
#: Tests under these folders get the marker of the same name (and ``slow``),
#: so that ``pytest -m "not slow"`` is the fast part.
_FOLDER_MARKERS = {"browser": "browser", "redis": "redis"}


@pytest.hookimpl(tryfirst=True)  # before -m deselects
def pytest_collection_modifyitems(config, items):
    for item in items:
        folder = Path(item.path).resolve().relative_to(_HERE).parts[0]
        marker = _FOLDER_MARKERS.get(folder)
        if marker is not None:
            item.add_marker(marker)
            item.add_marker("slow")


@pytest.fixture(autouse=True)
def loopback_ice_for_test_clients() -> None:
    """The aiortc peers tests create gather loopback candidates, as the
    server's bot does with --ice-address 127.0.0.1 (aioice skips 127.0.0.1)."""
    # Per test: some test modules put aioice's default back when they finish.
    restrict_host_addresses(("127.0.0.1",))


@pytest.fixture
async def server(tmp_path) -> AsyncIterator[RunningServer]:
    async with running_server(test_config(tmp_path)) as srv:
        yield srv


@pytest.fixture
async def connect(server: RunningServer):
    clients: list[Client] = []

    async def make(username: str | None = None, **kwargs) -> Client:
        client = await Client.connect(server.ws_url, **kwargs)
        clients.append(client)
        if username is not None:
            await client.login(username)
        return client

    yield make
    for client in clients:
        await client.close()
