"""Fixtures for the photo tests: call directories, real images, loopback ICE."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from photos.channel import PHOTOS_LABEL, PhotoChannel, attach_photo_channel
from photos.protocol import PhotoLimits
from photos.store import PhotoStore
from media.storage import CallDirectory, create_call_directory

from tests.support.photos import PhotoCaller, make_jpeg, make_png


@pytest.fixture
def call_dir(tmp_path: Path) -> CallDirectory:
    return create_call_directory(tmp_path / "calls")


@pytest.fixture(scope="session")
def jpeg_10k() -> bytes:
    return make_jpeg(10_000)


@pytest.fixture(scope="session")
def jpeg_300k() -> bytes:
    return make_jpeg(300_000)


@pytest.fixture(scope="session")
def jpeg_3m() -> bytes:
    return make_jpeg(3_000_000)


@pytest.fixture(scope="session")
def png_300k() -> bytes:
    return make_png(300_000)


class PhotoCall:
    """A caller and a bot in one process, joined by a ``photos`` data channel."""

    def __init__(self, caller_pc, bot_pc, caller: PhotoCaller, photo_channel: PhotoChannel, store: PhotoStore):
        self.caller_pc = caller_pc
        self.bot_pc = bot_pc
        self.caller = caller
        self.photo_channel = photo_channel
        self.store = store

    async def close(self) -> None:
        await self.caller_pc.close()
        await self.bot_pc.close()
        await asyncio.wait_for(self.photo_channel.wait_closed(), 10)


async def open_photo_call(store: PhotoStore, **attach_options) -> PhotoCall:
    from aiortc import RTCConfiguration, RTCPeerConnection

    loop = asyncio.get_running_loop()
    caller_pc = RTCPeerConnection(RTCConfiguration(iceServers=[]))
    bot_pc = RTCPeerConnection(RTCConfiguration(iceServers=[]))
    attached: asyncio.Future[PhotoChannel] = loop.create_future()

    @bot_pc.on("datachannel")
    def on_datachannel(channel) -> None:
        if channel.label == PHOTOS_LABEL:
            attached.set_result(attach_photo_channel(channel, store, **attach_options))

    channel = caller_pc.createDataChannel(PHOTOS_LABEL)  # reliable, ordered by default
    opened = loop.create_future()
    channel.on("open", lambda: opened.done() or opened.set_result(None))
    await caller_pc.setLocalDescription(await caller_pc.createOffer())
    await bot_pc.setRemoteDescription(caller_pc.localDescription)
    await bot_pc.setLocalDescription(await bot_pc.createAnswer())
    await caller_pc.setRemoteDescription(bot_pc.localDescription)
    try:
        await asyncio.wait_for(opened, 20)
        photo_channel = await asyncio.wait_for(attached, 20)
    except BaseException:
        await caller_pc.close()
        await bot_pc.close()
        raise
    return PhotoCall(caller_pc, bot_pc, PhotoCaller(channel), photo_channel, store)


@pytest.fixture
async def photo_call_factory(call_dir):
    """``await make(limits=..., **attach_options)``: an open call; closed after the test."""
    calls: list[PhotoCall] = []

    async def make(limits: PhotoLimits | None = None, **attach_options) -> PhotoCall:
        store = PhotoStore(call_dir, limits=limits, fsync=False)
        call = await open_photo_call(store, **attach_options)
        calls.append(call)
        return call

    yield make
    for call in calls:
        await call.close()


@pytest.fixture
async def photo_call(photo_call_factory) -> PhotoCall:
    return await photo_call_factory()
