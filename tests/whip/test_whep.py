"""WHEP: aiortc viewers watch calls in progress through the real server."""

from __future__ import annotations

import asyncio

import numpy as np
import pytest
from aiortc import RTCRtpReceiver
from aiortc.mediastreams import AudioStreamTrack

from media.options import RecordingOptions
from tests.support.caller import Caller, PatternVideoTrack
from tests.support.media import CountFrames
from tests.support.server import Client, running_server, test_config
from tests.support.wait import eventually
from tests.support.whip import SDP, WhipError, decoded_frames, log_encoded_video, post_offer, publisher, viewer
from webapp.auth import mint_token
from webapp.config import BotConfig, SecurityConfig
from webapp.keys import BOT, VIEWERS

SECRET = "whep-secret-0123456789-0123456789"
RED = (255, 0, 0)


async def keep_reading(client: Client) -> None:
    # aiohttp answers the server's heartbeat pings only while someone reads.
    while not client.ws.closed:
        await client.ws.receive()


async def test_a_viewer_decodes_a_call_in_progress(tmp_path, http):
    # No periodic keyframes and no sampled pictures: the only keyframes the
    # caller sends after the first are the ones a viewer asks for.
    config = test_config(tmp_path, recording=RecordingOptions(keyframe_interval=0, frame_interval=0))
    async with running_server(config) as server:
        client = await Client.connect(server.ws_url)
        await client.login("alice")
        caller = Caller(client, tracks=[PatternVideoTrack(colour=RED), AudioStreamTrack()])
        await caller.call()
        reader = asyncio.ensure_future(keep_reading(client))
        session = server.app[BOT].calls["alice"]
        tap = session.media.taps["video"]
        count = CountFrames()
        tap.subscribe(count)
        await count.wait_for(30, 15)
        await eventually(lambda: session.id == session.manifest.directory.call_id and tap.keyframes >= 1)
        requests_before = tap.keyframe_requests

        # A viewer that cannot ask for a keyframe itself still starts with
        # one, soon: the server asked the caller when it joined. (The caller,
        # aiortc, otherwise makes one every 100 s.)
        mute = viewer(http, kinds=("video",))
        log = log_encoded_video(mute)
        await mute.offer(f"{server.url}/whep/{session.id}")
        await asyncio.wait_for(log.first.wait(), 5)
        assert log.keyframes[0] and tap.keyframe_requests > requests_before
        assert await mute.delete() == 200
        await mute.close()

        watcher = viewer(http)
        created = await watcher.offer(f"{server.url}/whep/{session.id}")
        assert created.headers["Content-Type"] == SDP and created.location.startswith(f"{server.url}/whep/{session.id}/")
        frames = await decoded_frames(watcher.received["video"], 10)
        picture = frames[-1].to_ndarray(format="rgb24")
        assert picture.shape == (240, 320, 3)
        assert np.abs(picture.reshape(-1, 3).mean(axis=0) - RED).max() < 40, picture.reshape(-1, 3).mean(axis=0)
        assert len(await decoded_frames(watcher.received["audio"], 5)) == 5
        # Forwarded, not re-encoded: nothing in the server decodes for the viewer.
        (live,) = server.app[VIEWERS].viewers.values()
        assert live.stats()["tracks"]["video"]["frames"] >= 10
        assert await watcher.delete() == 200
        assert server.app[VIEWERS].viewers == {}
        # The call goes on, recorded, after the viewer left.
        frames_then = count.count
        await count.wait_for(frames_then + 15, 10)
        await watcher.close()
        await caller.hangup()
        await asyncio.wait_for(session.ended.wait(), 10)
        reader.cancel()
        await client.close()


async def test_who_may_watch_and_how_many(tmp_path, http):
    config = test_config(tmp_path, security=SecurityConfig(auth_secret=SECRET),
                         bot=BotConfig(max_viewers_per_call=2))
    alice, bob, admin = (mint_token(SECRET, "alice"), mint_token(SECRET, "bob"),
                         mint_token(SECRET, "ops", admin=True))
    async with running_server(config) as server:
        publishing = await publisher(http, [PatternVideoTrack(), AudioStreamTrack()])
        await publishing.offer(f"{server.url}/whip", token=alice)
        (resource,) = server.app[BOT].whip.values()
        await eventually(lambda: resource.session.media.taps["video"].codec is not None)
        url = f"{server.url}/whep/{resource.call_id}"

        async def refused(token: str | None) -> WhipError:
            peer = viewer(http)
            with pytest.raises(WhipError) as caught:
                await peer.offer(url, token=token)
            await peer.close()
            return caught.value

        assert (await refused(None)).status == 401
        assert (await refused(bob)).status == 404  # another user's call is not even said to exist
        own, ops = viewer(http), viewer(http)
        await own.offer(url, token=alice)
        await ops.offer(url, token=admin)
        busy = await refused(admin)
        assert (busy.status, busy.code) == (503, "too-many-viewers") and int(busy.headers["Retry-After"]) > 0
        # Only its viewer (or an admin) ends a viewing.
        assert await own.delete(token=bob) == 404
        assert await own.delete(token=alice) == 200
        again = viewer(http)
        await again.offer(url, token=admin)
        # The call's end ends its viewers.
        assert await publishing.delete(token=alice) == 200
        await asyncio.wait_for(asyncio.gather(ops.failed.wait(), again.failed.wait()), 10)
        await eventually(lambda: server.app[VIEWERS].viewers == {})
        assert (await refused(admin)).status == 404
        for peer in (publishing, own, ops, again):
            await peer.close()


async def test_a_viewer_who_cannot_take_the_codec_is_told(tmp_path, http):
    async with running_server(test_config(tmp_path)) as server:
        publishing = await publisher(http, [PatternVideoTrack()])  # VP8 by default
        await publishing.offer(f"{server.url}/whip")
        (resource,) = server.app[BOT].whip.values()
        await eventually(lambda: resource.session.media.taps["video"].codec == "VP8")
        h264_only = viewer(http, kinds=("video",))
        (transceiver,) = h264_only.pc.getTransceivers()
        transceiver.setCodecPreferences(
            [c for c in RTCRtpReceiver.getCapabilities("video").codecs if c.mimeType == "video/H264"])
        with pytest.raises(WhipError) as caught:
            await h264_only.offer(f"{server.url}/whep/{resource.call_id}")
        assert (caught.value.status, caught.value.code) == (406, "codec-not-accepted")
        # Unknown, malformed and finished calls are all simply not there.
        for call_id in ("20200101T000000Z-00000000", "..%2F..%2Fetc", resource.call_id + "x"):
            with pytest.raises(WhipError) as missing:
                await post_offer(http, f"{server.url}/whep/{call_id}", h264_only.pc.localDescription.sdp)
            assert missing.value.status == 404
        await h264_only.close()
        assert await publishing.delete() == 200
        await publishing.close()


async def test_whep_can_be_switched_off(tmp_path, http):
    async with running_server(test_config(tmp_path, bot=BotConfig(max_viewers=0))) as server:
        publishing = await publisher(http, [PatternVideoTrack()])
        await publishing.offer(f"{server.url}/whip")
        (resource,) = server.app[BOT].whip.values()
        await eventually(lambda: resource.session.media.taps["video"].codec is not None)
        async with http.get(f"{server.url}/api/calls/{resource.call_id}") as r:
            summary = await r.json()
        assert summary["live"] is True and summary["whep"] is None
        watcher = viewer(http)
        with pytest.raises(WhipError) as caught:
            await watcher.offer(f"{server.url}/whep/{resource.call_id}")
        assert (caught.value.status, caught.value.code) == (503, "too-many-viewers")
        await watcher.close()
        assert await publishing.delete() == 200
        await publishing.close()


async def test_a_viewer_may_come_before_the_media(tmp_path, http):
    from tests.support.media import PatternVideoTrack as PacedPattern

    start = asyncio.Event()
    async with running_server(test_config(tmp_path)) as server:
        publishing = await publisher(http, [PacedPattern(start, 300, (320, 240))])
        await publishing.offer(f"{server.url}/whip")
        (resource,) = server.app[BOT].whip.values()
        assert resource.session.media.taps["video"].codec is None  # nothing sent yet
        watcher = viewer(http, kinds=("video",))
        watching = asyncio.ensure_future(watcher.offer(f"{server.url}/whep/{resource.call_id}"))
        # The viewer's POST waits for the call's first frame...
        await eventually(lambda: len(server.app[VIEWERS].viewers) == 1)
        assert not watching.done()
        start.set()
        # ...and then gets its answer, and pictures.
        await asyncio.wait_for(watching, 15)
        assert len(await decoded_frames(watcher.received["video"], 5)) == 5
        assert await watcher.delete() == 200
        assert await publishing.delete() == 200
        for peer in (watcher, publishing):
            await peer.close()
