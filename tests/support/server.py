"""Test helpers: a real server on port 0 and a real WebSocket client."""

from __future__ import annotations

import asyncio
import json
import socket
from contextlib import asynccontextmanager
from dataclasses import replace
from typing import Any, AsyncIterator

import aiohttp
from aiohttp import web

from webapp.config import Config, IceConfig
from peer.api import Bot
from webapp.app import create_app
from webapp.httpguard import ConnectionGuard, make_runner, start_site

TIMEOUT = 10.0


def test_config(tmp_path, **overrides: Any) -> Config:
    """A config for tests: port 0, a temporary data dir, loopback ICE."""
    base = Config(
        port=0,
        data_dir=tmp_path / "data",
        # As in production: tests whose clients sit idle during long media
        # exchanges are not dropped on a loaded machine. Heartbeat tests set theirs.
        heartbeat=20.0,
        presence_interval=0.05,
        ice=IceConfig(addresses=("127.0.0.1",)),
    )
    return replace(base, **overrides)


test_config.__test__ = False  # a helper, not a test, despite its name


class RunningServer:
    def __init__(self, app: web.Application, runner: web.AppRunner, port: int, guard: ConnectionGuard) -> None:
        self.app = app
        self.runner = runner
        self.port = port
        self.guard = guard
        self.url = f"http://127.0.0.1:{port}"
        self.ws_url = f"ws://127.0.0.1:{port}/ws"


@asynccontextmanager
async def running_server(config: Config, bot: Bot | None = None) -> AsyncIterator[RunningServer]:
    """The real app on 127.0.0.1, port 0, running ``bot`` (default: as the config says)."""
    app = create_app(config, bot)
    runner = make_runner(app, config, shutdown_timeout=2.0)  # as server.py runs it
    await runner.setup()
    guard, port = await start_site(runner, config, "127.0.0.1", 0)
    try:
        yield RunningServer(app, runner, port, guard)
    finally:
        await runner.cleanup()


class Client:
    """A WebSocket signaling client that awaits messages with a timeout."""

    def __init__(self, session: aiohttp.ClientSession, ws: aiohttp.ClientWebSocketResponse) -> None:
        self.session = session
        self.ws = ws
        self.username: str | None = None

    @classmethod
    async def connect(cls, url: str, **kwargs: Any) -> "Client":
        session = aiohttp.ClientSession()
        try:
            ws = await session.ws_connect(url, **kwargs)
        except BaseException:
            await session.close()
            raise
        return cls(session, ws)

    async def send(self, message: Any) -> None:
        await self.ws.send_str(message if isinstance(message, str) else json.dumps(message))

    async def recv(self, timeout: float = TIMEOUT) -> dict[str, Any]:
        msg = await asyncio.wait_for(self.ws.receive(), timeout)
        if msg.type is not aiohttp.WSMsgType.TEXT:
            raise AssertionError(f"expected a text frame, got {msg.type!r} {msg.data!r} {msg.extra!r}")
        return json.loads(msg.data)

    async def recv_type(self, kind: str, timeout: float = TIMEOUT, **match: Any) -> dict[str, Any]:
        """The next message of type ``kind`` (matching ``match``), skipping others."""
        async def wait() -> dict[str, Any]:
            while True:
                m = await self.recv(timeout)
                if m.get("type") == kind and all(m.get(k) == v for k, v in match.items()):
                    return m
        return await asyncio.wait_for(wait(), timeout)

    async def request(self, message: Any, kind: str) -> dict[str, Any]:
        await self.send(message)
        return await self.recv_type(kind)

    async def login(self, username: str) -> dict[str, Any]:
        reply = await self.request({"type": "login", "username": username}, "login")
        assert reply["success"], reply
        self.username = username
        return reply

    async def close_code(self, timeout: float = TIMEOUT) -> int:
        """Skip text frames until the server closes; return its close code."""
        while True:
            msg = await self.ws.receive(timeout=timeout)
            if msg.type is not aiohttp.WSMsgType.TEXT:
                assert msg.type is aiohttp.WSMsgType.CLOSE, msg
                return msg.data

    async def close(self) -> None:
        await self.ws.close()
        await self.session.close()

    async def drop(self) -> None:
        """Lose the connection without a WebSocket close frame, as a network
        change or a crashed tab does: the TCP connection just ends."""
        sock = self.ws.get_extra_info("socket")
        if sock is not None:
            sock.shutdown(socket.SHUT_RDWR)
        await self.session.close()
