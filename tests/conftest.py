from __future__ import annotations

from typing import AsyncIterator

import pytest

from tests.helpers import Client, RunningServer, running_server, test_config


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
