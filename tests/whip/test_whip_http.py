"""WHIP over HTTP against the real server, with aiortc publishers on loopback."""

from __future__ import annotations

import asyncio
import json

import pytest
from aiortc.mediastreams import AudioStreamTrack

from peer.api import Bot, Call, CallSummary, RefuseCall
from tests.support.caller import Caller, PatternVideoTrack
from tests.support.media import CountFrames, inspect_recording
from tests.support.server import Client, running_server, test_config
from tests.support.wait import eventually
from tests.support.whip import SDP, SDPFRAG, WhipError, ice_credentials, post_offer, publisher, sdpfrag
from webapp.auth import mint_token
from webapp.config import BotConfig, IceConfig, SecurityConfig
from webapp.keys import BOT

SECRET = "whip-test-secret-0123456789-0123456789"


def only_session(server):
    (resource,) = server.app[BOT].whip.values()
    return resource


async def publish_frames(server, http, frames: int = 45, **offer_kwargs):
    """An aiortc publisher that sent ``frames`` video frames the server received."""
    peer = await publisher(http, [PatternVideoTrack(), AudioStreamTrack()])
    created = await peer.offer(f"{server.url}/whip", **offer_kwargs)
    resource = only_session(server)
    count = CountFrames()
    resource.session.media.taps["video"].subscribe(count)
    await count.wait_for(frames, 15)
    return peer, created, resource


async def test_a_publish_is_recorded_like_a_bot_call(tmp_path, http):
    async with running_server(test_config(tmp_path)) as server:
        peer, created, resource = await publish_frames(server, http, frames=60)
        assert created.headers["Content-Type"] == SDP
        assert created.location == f"{server.url}/whip/{resource.id}"
        assert created.etag.startswith('"') and created.headers["Accept-Patch"] == SDPFRAG
        session = resource.session
        assert await peer.delete() == 200
        # DELETE answers once the session is over and its files are final.
        assert session.ended.is_set() and server.app[BOT].whip == {}
        await peer.close()

    manifest = json.loads(session.directory.manifest_path.read_text())
    assert manifest["source"] == "whip" and manifest["status"] == "complete"
    assert manifest["caller"] == "anonymous" and manifest["end_reason"] == "caller-closed"
    publisher_info = manifest["publisher"]
    assert publisher_info["user"] == "anonymous" and publisher_info["address"] == "127.0.0.1"
    assert publisher_info["dtls"]["version"] == "DTLSv1.2"  # not FFmpeg: no fallback
    assert publisher_info["dtls_1_0_fallback"] is False
    section = manifest["recording"]
    assert section["state"] == "complete"
    report = inspect_recording(session.directory.file(section["file"]), decode=False)
    assert report.codecs == {"video": "vp8", "audio": "opus"}
    assert report.duration is not None and report.duration >= 1.5
    assert report.video_packets >= 55 and report.audio_packets >= 75 and report.first_video_keyframe
    assert any(f["kind"] == "frame" for f in section["files"])  # sampled pictures too


async def test_trickled_candidates_reach_ice(tmp_path, http):
    async with running_server(test_config(tmp_path)) as server:
        peer = await publisher(http, [PatternVideoTrack(), AudioStreamTrack()])
        await peer.offer(f"{server.url}/whip", trickle=True)
        session = only_session(server).session
        ours = {(c.ip, c.port) for c in peer.pc.getTransceivers()[0].sender.transport.transport.iceGatherer.getLocalCandidates()}
        transport = session.pc.getTransceivers()[0].receiver.transport.transport
        # The offer had no candidates: these came in the PATCH.
        await eventually(lambda: ours <= {(c.ip, c.port) for c in transport.getRemoteCandidates()})
        assert await peer.delete() == 200
        await peer.close()


async def test_patch_checks_its_preconditions(tmp_path, http):
    async with running_server(test_config(tmp_path)) as server:
        peer, created, resource = await publish_frames(server, http, frames=1)
        ufrag, pwd = ice_credentials(peer.pc.localDescription.sdp)
        candidate = {"candidate": "candidate:1 1 udp 2130706431 127.0.0.1 5000 typ host", "sdpMid": "0"}
        assert await peer.patch(sdpfrag(ufrag, pwd, [candidate]), if_match=created.etag) == 204
        assert await peer.patch(sdpfrag(ufrag, pwd, [candidate]), if_match="*") == 204
        with pytest.raises(WhipError) as stale:
            await peer.patch(sdpfrag(ufrag, pwd, [candidate]), if_match='"not-this-one"')
        assert stale.value.status == 412
        with pytest.raises(WhipError) as restart:
            await peer.patch(sdpfrag("newufrag", "newpassword1234567890ab", [candidate]))
        assert (restart.value.status, restart.value.code) == (422, "ice-restart-unsupported")
        with pytest.raises(WhipError) as junk:
            await peer.patch(sdpfrag(ufrag, pwd, [{"candidate": "candidate:nonsense", "sdpMid": "0"}]))
        assert (junk.value.status, junk.value.code) == (400, "bad-candidate")
        async with http.patch(created.location, data=b"a=end-of-candidates", headers={"Content-Type": "text/plain"}) as r:
            assert r.status == 415 and r.headers["Accept-Patch"] == SDPFRAG
        # The session is unharmed by all of it.
        assert peer.pc.connectionState == "connected"
        assert await peer.delete() == 200
        async with http.delete(created.location) as r:
            assert r.status == 404
        async with http.patch(created.location, data=b"a=end-of-candidates\r\n", headers={"Content-Type": SDPFRAG}) as r:
            assert r.status == 404
        await peer.close()


async def test_bad_offers_leave_nothing_behind(tmp_path, http):
    async with running_server(test_config(tmp_path)) as server:
        url = f"{server.url}/whip"
        async with http.post(url, data=b"v=0", headers={"Content-Type": "text/plain"}) as r:
            assert r.status == 415 and r.headers["Accept-Post"] == SDP
        for body, reason in [
            ("this is not SDP", "bad-offer"),
            ("v=0\r\no=- 1 1 IN IP4 0.0.0.0\r\ns=-\r\nt=0 0\r\n", "bad-offer"),  # no media
        ]:
            with pytest.raises(WhipError) as bad:
                await post_offer(http, url, body)
            assert (bad.value.status, bad.value.code) == (400, reason)
        # A data channel alone is no publish.
        from aiortc import RTCPeerConnection

        pc = RTCPeerConnection()
        pc.createDataChannel("x")
        await pc.setLocalDescription(await pc.createOffer())
        with pytest.raises(WhipError) as data_only:
            await post_offer(http, url, pc.localDescription.sdp)
        assert data_only.value.status == 400 and "no audio or video" in data_only.value.body
        await pc.close()
        with pytest.raises(WhipError) as huge:
            await post_offer(http, url, "v=0\r\n" + "a=x-filler:" + "y" * 70_000 + "\r\n")
        assert huge.value.status == 413
        async with http.post(url, data=b"v=0\r\n\xff\xfe", headers={"Content-Type": SDP}) as r:
            assert r.status == 400 and "UTF-8" in await r.text()
        assert server.app[BOT].whip == {}
        assert not (tmp_path / "data" / "calls").exists() or not any((tmp_path / "data" / "calls").iterdir())


async def test_tokens_name_the_publisher_and_guard_the_resource(tmp_path, http):
    config = test_config(tmp_path, security=SecurityConfig(auth_secret=SECRET))
    alice, bob = mint_token(SECRET, "alice"), mint_token(SECRET, "bob")
    admin = mint_token(SECRET, "ops", admin=True)
    async with running_server(config) as server:
        peer = await publisher(http, [PatternVideoTrack(), AudioStreamTrack()])
        with pytest.raises(WhipError) as anonymous:
            await peer.offer(f"{server.url}/whip")
        assert anonymous.value.status == 401
        peer = await publisher(http, [PatternVideoTrack(), AudioStreamTrack()])
        await peer.offer(f"{server.url}/whip", token=alice)
        resource = only_session(server)
        assert resource.session.caller == "alice"
        # Another user cannot end alice's publish, or learn that it exists.
        assert await peer.delete(token=bob) == 404
        assert await peer.delete() == 401
        assert await peer.delete(token=admin) == 200
        await peer.close()
    manifest = json.loads(resource.session.directory.manifest_path.read_text())
    assert manifest["caller"] == "alice" and manifest["publisher"]["user"] == "alice"


async def test_max_calls_counts_publishes_and_bot_calls(tmp_path, http):
    async with running_server(test_config(tmp_path, bot=BotConfig(max_calls=1))) as server:
        peer, _, _ = await publish_frames(server, http, frames=1)
        second = await publisher(http, [PatternVideoTrack()])
        with pytest.raises(WhipError) as busy:
            await second.offer(f"{server.url}/whip")
        assert (busy.value.status, busy.value.code) == (503, "too-many-calls")
        assert int(busy.value.headers["Retry-After"]) > 0
        await second.close()
        # A call through the signaling is refused the same way.
        client = await Client.connect(server.ws_url)
        await client.login("carol")
        caller = Caller(client)
        with pytest.raises(Exception, match="too-many-calls"):
            await caller.call()
        await caller.pc.close()
        await client.close()
        assert await peer.delete() == 200
        await peer.close()
        # The slot is free again.
        third = await publisher(http, [PatternVideoTrack()])
        await third.offer(f"{server.url}/whip")
        assert await third.delete() == 200
        await third.close()


async def test_options_gives_ice_servers_and_cors(tmp_path, http):
    config = test_config(
        tmp_path,
        ice=IceConfig(addresses=("127.0.0.1",), stun_urls=("stun:stun.example.net:3478",)),
        security=SecurityConfig(turn_urls=("turn:turn.example.net:3478?transport=udp",), turn_secret="s3",
                                allowed_origins=("https://studio.example",), allow_open_turn=True),
    )
    async with running_server(config) as server:
        async with http.options(f"{server.url}/whip") as r:
            assert r.status == 204 and r.headers["Accept-Post"] == SDP
            links = r.headers.getall("Link")
        assert '<stun:stun.example.net:3478>; rel="ice-server"' in links
        (turn,) = [link for link in links if link.startswith("<turn:")]
        # RFC 9725 section 4.6, with credentials minted for this request.
        assert 'rel="ice-server"; username="' in turn and 'credential-type="password"' in turn
        preflight = {"Origin": "https://studio.example", "Access-Control-Request-Method": "POST",
                     "Access-Control-Request-Headers": "content-type"}
        async with http.options(f"{server.url}/whip", headers=preflight) as r:
            assert r.status == 204
            assert r.headers["Access-Control-Allow-Origin"] == "https://studio.example"
            assert "POST" in r.headers["Access-Control-Allow-Methods"]
            assert "Location" in r.headers["Access-Control-Expose-Headers"]
        async with http.options(f"{server.url}/whip", headers={**preflight, "Origin": "https://evil.example"}) as r:
            assert r.status == 403 and "Access-Control-Allow-Origin" not in r.headers
        async with http.post(f"{server.url}/whip", data=b"v=0", headers={"Origin": "https://evil.example",
                                                                          "Content-Type": SDP}) as r:
            assert r.status == 403


async def test_turn_credentials_only_with_a_token_when_auth_is_on(tmp_path, http):
    config = test_config(tmp_path, security=SecurityConfig(
        auth_secret=SECRET, turn_urls=("turn:turn.example.net:3478",), turn_secret="s3"))
    async with running_server(config) as server:
        async with http.options(f"{server.url}/whip") as r:
            assert r.status == 204 and not r.headers.getall("Link", [])
        async with http.options(f"{server.url}/whip", headers={"Authorization": f"Bearer {mint_token(SECRET, 'al')}"}) as r:
            (link,) = r.headers.getall("Link")
            assert ':al"' in link  # coturn's use-auth-secret username: expiry:user


class WatchingBot(Bot):
    """Records what a bot sees of a WHIP session."""

    video_fps = 5.0
    audio_frames = True

    def __init__(self) -> None:
        super().__init__()
        self.sources: list[str] = []
        self.video = asyncio.Event()
        self.audio = asyncio.Event()
        self.summaries: list[CallSummary] = []
        self.ended = asyncio.Event()

    async def on_call(self, call: Call) -> None:
        self.sources.append(call.source)
        if call.caller == "refused":
            raise RefuseCall("no publishing today", "not-today")

    async def on_video_frame(self, call: Call, frame) -> None:
        self.video.set()

    async def on_audio_frame(self, call: Call, frame) -> None:
        self.audio.set()

    async def on_ended(self, call: Call, summary: CallSummary) -> None:
        self.summaries.append(summary)
        self.ended.set()


async def test_bot_hooks_run_for_a_publish(tmp_path, http):
    bot = WatchingBot()
    config = test_config(tmp_path, security=SecurityConfig(auth_secret=SECRET))
    async with running_server(config, bot) as server:
        peer = await publisher(http, [PatternVideoTrack(), AudioStreamTrack()])
        await peer.offer(f"{server.url}/whip", token=mint_token(SECRET, "alice"))
        await asyncio.wait_for(asyncio.gather(bot.video.wait(), bot.audio.wait()), 15)
        assert await peer.delete(token=mint_token(SECRET, "alice")) == 200
        await asyncio.wait_for(bot.ended.wait(), 5)
        (summary,) = bot.summaries
        assert summary.caller == "alice" and summary.reason == "caller-closed"
        assert summary.recording is not None and summary.recording.exists()
        await peer.close()
        # The bot's refusal is the publisher's 403, with the bot's code.
        refused = await publisher(http, [PatternVideoTrack()])
        with pytest.raises(WhipError) as no:
            await refused.offer(f"{server.url}/whip", token=mint_token(SECRET, "refused"))
        assert (no.value.status, no.value.code) == (403, "not-today")
        await refused.close()
    assert bot.sources == ["whip", "whip"]


async def test_gallery_says_live_while_publishing(tmp_path, http):
    async with running_server(test_config(tmp_path)) as server:
        peer, _, resource = await publish_frames(server, http, frames=1)
        call_id = resource.call_id
        async with http.get(f"{server.url}/api/calls/{call_id}") as r:
            summary = await r.json()
        assert summary["live"] is True and summary["whep"] == f"/whep/{call_id}"
        assert await peer.delete() == 200
        async with http.get(f"{server.url}/api/calls") as r:
            (entry,) = (await r.json())["calls"]
        assert entry["call_id"] == call_id and entry["live"] is False and entry["whep"] is None
        await peer.close()
