"""Faults with a real server process: signals, crashes, vanishing clients."""

from __future__ import annotations

import asyncio
import json
import signal
import time
from typing import Any, AsyncIterator

import pytest


from tests.support.server import Client
from tests.support.caller import Caller
from tests.support.photos import begin_message, chunked, make_jpeg
from tests.support.process import ServerProcess
from tests.support.wait import eventually

pytestmark = pytest.mark.slow  # real calls, processes or real-time media


def manifests(data_dir) -> list[dict]:
    return [json.loads(p.read_text()) for p in sorted((data_dir / "calls").glob("*/meta.json"))]


@pytest.fixture
async def server(tmp_path) -> AsyncIterator[ServerProcess]:
    proc = await ServerProcess.start(tmp_path)
    yield proc
    await proc.stop()


async def call_bot(server: ServerProcess, *, photos: bool = False) -> tuple[Client, Caller, Any]:
    """alice logs in and calls the bot; with ``photos``, over an open photos channel."""
    alice = await Client.connect(server.ws_url)
    await alice.login("alice")
    caller = Caller(alice)
    channel = caller.pc.createDataChannel("photos") if photos else None
    opened = asyncio.Event()
    if channel is not None:
        channel.on("open", opened.set)
    await caller.call()
    if channel is not None:
        await asyncio.wait_for(opened.wait(), 10)
    return alice, caller, channel


async def test_sigterm_mid_call_ends_calls_closes_sockets_1001_and_exits_quickly(server, tmp_path):
    alice, caller, _ = await call_bot(server)
    started = time.monotonic()
    server.send_signal(signal.SIGTERM)
    assert await alice.close_code() == 1001  # after the bot's close message
    assert await server.wait() == 0
    assert time.monotonic() - started < 5
    (meta,) = manifests(tmp_path)
    assert meta["status"] == "complete" and meta["end_reason"] == "server-shutdown"
    await caller.pc.close()
    await alice.session.close()


async def test_sigkill_mid_call_leaves_a_manifest_marked_interrupted_at_restart(server, tmp_path):
    alice, caller, _ = await call_bot(server)
    server.send_signal(signal.SIGKILL)
    await server.wait()
    (meta,) = manifests(tmp_path)
    assert meta["status"] == "in-progress"  # the crash left it so
    await caller.pc.close()
    await alice.session.close()
    restarted = await ServerProcess.start(tmp_path)
    try:
        (meta,) = manifests(tmp_path)
        assert meta["status"] == "interrupted" and meta["end_reason"] == "server-crashed"
    finally:
        await restarted.stop()


async def test_client_vanishing_mid_photo_never_leaves_a_saved_photo(server, tmp_path):
    alice, caller, channel = await call_bot(server, photos=True)
    data = make_jpeg(1_000_000)
    channel.send(begin_message("half", data))
    for part in chunked(data)[:2]:  # half the photo, then gone without a word
        channel.send(part)
    await caller.pc.close()
    await alice.session.close()  # socket dropped, no close frame
    # the server notices, ends the call and finalizes its manifest
    def finished() -> dict | None:
        metas = manifests(tmp_path)
        return metas[0] if metas and metas[0]["status"] == "complete" else None
    meta = await eventually(finished, 15)
    assert meta["photos"] == []
    call_dir = next((tmp_path / "calls").iterdir())
    assert sorted(p.name for p in call_dir.iterdir() if "photo" in p.name or p.name.startswith(".tmp")) == []
    # and the server carries on
    bob = await Client.connect(server.ws_url)
    await bob.login("bob")
    await bob.close()
