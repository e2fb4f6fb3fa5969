"""The bot API, end to end: bots written as a user would write them, called by
a real aiortc caller through the real signaling."""

from __future__ import annotations

import asyncio
import hashlib
import json
import math
import time

import av
import numpy as np
import pytest

from peer import Bot, Call, CallSummary, Photo, RefuseCall, RefusePhoto
from peer.bots import BotLoadError, load_bot
from tests.support.caller import Caller, CallRefused, PatternVideoTrack
from tests.support.photos import PhotoPeer, make_jpeg, make_png
from tests.support.process import ServerProcess
from tests.support.server import Client, running_server, test_config
from tests.support.wait import eventually
from webapp.keys import BOT

pytestmark = pytest.mark.slow


def manifests(data_dir) -> list[dict]:
    return [json.loads(p.read_text()) for p in sorted((data_dir / "calls").glob("*/meta.json"))]


class Inbox:
    """Messages arriving on a data channel, awaitable."""

    def __init__(self, channel) -> None:
        self.channel = channel
        self.queue: asyncio.Queue = asyncio.Queue()
        self.opened = asyncio.Event()
        channel.on("message", self.queue.put_nowait)
        channel.on("open", self.opened.set)

    async def next(self, timeout: float = 10.0):
        return await asyncio.wait_for(self.queue.get(), timeout)


async def call_bot(srv, username: str = "alice", *, channels: tuple[str, ...] = (), tracks=None):
    client = await Client.connect(srv.ws_url)
    await client.login(username)
    caller = Caller(client, tracks=tracks)
    inboxes = {label: Inbox(caller.pc.createDataChannel(label)) for label in channels}
    await caller.call()
    for inbox in inboxes.values():
        await asyncio.wait_for(inbox.opened.wait(), 10)
    return client, caller, inboxes


class Recording(Bot):
    """Keeps what every hook saw, and awaitable events for them."""

    def __init__(self) -> None:
        self.seen: list[str] = []
        self.events: dict[str, asyncio.Event] = {}
        self.summary: CallSummary | None = None
        self.messages: list[tuple[str | bytes, str]] = []

    def _saw(self, name: str) -> None:
        self.seen.append(name)
        self.events.setdefault(name, asyncio.Event()).set()

    async def wait(self, name: str, timeout: float = 10.0) -> None:
        await asyncio.wait_for(self.events.setdefault(name, asyncio.Event()).wait(), timeout)

    async def on_call(self, call: Call) -> None:
        self._saw("on_call")
        assert call.directory is None  # nothing is written before the bot says yes
        assert call.offered >= {"audio", "video"}

    async def on_connected(self, call: Call) -> None:
        self._saw("on_connected")
        call.meta["greeted"] = call.caller
        call.send(f"hello {call.caller}")

    async def on_message(self, call: Call, message, channel: str) -> None:
        self.messages.append((message, channel))
        self._saw("on_message")
        if message == "write":
            await call.write_file("notes.txt", b"a note from the bot")
            call.send("written", channel)
        elif message == "hang up":
            await call.hangup()

    async def on_ended(self, call: Call, summary: CallSummary) -> None:
        self.summary = summary
        call.meta["ended_seen"] = True
        await call.write_file("summary.json", json.dumps({"reason": summary.reason}).encode())
        self._saw("on_ended")


async def test_hooks_run_in_order_and_what_the_bot_writes_reaches_meta_json(tmp_path):
    bot = Recording()
    async with running_server(test_config(tmp_path), bot) as srv:
        client, caller, inboxes = await call_bot(srv, channels=("chat",))
        info = await client.recv_type("call-info", username="bot")
        assert info["recording"] is True and info["callId"] == srv.app[BOT].calls["alice"].id
        chat = inboxes["chat"]
        assert await chat.next() == "hello alice"
        chat.channel.send("write")
        assert await chat.next() == "written"
        chat.channel.send(b"\x00\x01binary")
        await eventually(lambda: len(bot.messages) == 2)
        assert bot.messages == [("write", "chat"), (b"\x00\x01binary", "chat")]
        session = srv.app[BOT].calls["alice"]
        await eventually(lambda: session.media.recorder.status()["duration"] > 0.5)
        await caller.hangup()
        await bot.wait("on_ended")
        await asyncio.wait_for(session.ended.wait(), 10)
    assert bot.seen[:2] == ["on_call", "on_connected"] and bot.seen[-1] == "on_ended"
    summary = bot.summary
    assert summary is not None and summary.reason == "caller-closed" and summary.caller == "alice"
    assert summary.recording is not None and summary.recording.exists()
    assert summary.recording_state == "complete" and summary.connected_duration > 0
    (meta,) = manifests(tmp_path / "data")
    assert meta["bot_class"] == "tests.peer.test_bot_api:Recording"
    assert meta["bot_data"] == {"greeted": "alice", "ended_seen": True}
    files = {f["name"]: f for f in meta["files"]}
    for name in ("notes.txt", "summary.json"):
        data = (summary.directory / name).read_bytes()
        assert files[name]["kind"] == "bot"
        assert files[name]["size"] == len(data) and files[name]["sha256"] == hashlib.sha256(data).hexdigest()
    assert meta["bot_stats"]["messages"] == {"received": 2, "sent": 2}
    await client.close()


async def test_a_refused_call_gets_the_bots_code_and_leaves_nothing_on_disk(tmp_path):
    class Closed(Bot):
        async def on_call(self, call: Call) -> None:
            raise RefuseCall("we are closed on Sundays", "closed-today")

    async with running_server(test_config(tmp_path), Closed()) as srv:
        client = await Client.connect(srv.ws_url)
        await client.login("alice")
        caller = Caller(client)
        with pytest.raises(CallRefused) as refused:
            await caller.call()
        assert refused.value.code == "closed-today"
        assert not srv.app[BOT].calls
        await caller.pc.close()
        await client.close()
    assert not (tmp_path / "data" / "calls").exists() or not any((tmp_path / "data" / "calls").iterdir())


def test_refusal_codes_are_checked():
    with pytest.raises(ValueError):
        RefuseCall("no", "Not A Code")
    assert RefuseCall("no").code == "call-refused"
    assert RefusePhoto("no").code == "photo-refused"


async def test_a_failing_hook_ends_that_call_only(tmp_path):
    class Fragile(Bot):
        async def on_message(self, call: Call, message, channel: str) -> None:
            if message == "boom":
                raise RuntimeError("the bot tripped")
            call.send("fine")

    async with running_server(test_config(tmp_path), Fragile()) as srv:
        client, caller, inboxes = await call_bot(srv, "alice", channels=("chat",))
        other, other_caller, other_inboxes = await call_bot(srv, "bob", channels=("chat",))
        session = srv.app[BOT].calls["alice"]
        inboxes["chat"].channel.send("boom")
        await client.recv_type("close", username="bot")
        await asyncio.wait_for(session.ended.wait(), 10)
        # bob's call goes on
        other_inboxes["chat"].channel.send("ping")
        assert await other_inboxes["chat"].next() == "fine"
        assert "bob" in srv.app[BOT].calls
        await other_caller.hangup()
        await caller.pc.close()
        await client.close()
        await other.close()
    meta = next(m for m in manifests(tmp_path / "data") if m["caller"] == "alice")
    assert meta["end_reason"] == "bot-error" and meta["status"] == "complete"
    assert any("on_message" in e and "the bot tripped" in e for e in meta["errors"])
    assert meta["recording"]["state"] in ("complete", "empty")


async def test_a_bot_hangs_up(tmp_path):
    class Brief(Bot):
        async def on_connected(self, call: Call) -> None:
            await call.hangup()

    async with running_server(test_config(tmp_path), Brief()) as srv:
        client, caller, _ = await call_bot(srv)
        await client.recv_type("close", username="bot")
        await eventually(lambda: not srv.app[BOT].calls)
        await caller.pc.close()
        await client.close()
    (meta,) = manifests(tmp_path / "data")
    assert meta["end_reason"] == "bot-hangup"


class FrameCounter(Bot):
    def __init__(self, fps: float, *, delay: float = 0.0) -> None:
        self.video_fps = fps
        self.delay = delay
        self.frames: list[av.VideoFrame] = []
        self.audio: list[av.AudioFrame] = []

    async def on_video_frame(self, call: Call, frame: av.VideoFrame) -> None:
        self.frames.append(frame)
        if self.delay:
            await asyncio.sleep(self.delay)  # a slow bot, on purpose

    async def on_audio_frame(self, call: Call, frame: av.AudioFrame) -> None:
        self.audio.append(frame)


async def test_one_frame_a_second_comes_from_keyframes_decoded_alone(tmp_path):
    bot = FrameCounter(1.0)
    async with running_server(test_config(tmp_path), bot) as srv:
        client, caller, _ = await call_bot(srv, tracks=[PatternVideoTrack(colour=(0, 0, 255))])
        session = srv.app[BOT].calls["alice"]
        await eventually(lambda: len(bot.frames) >= 3, 15)
        # aiortc's own decoder never ran: the sampler decoded requested keyframes
        assert session.media.taps["video"].decode is False
        frame = bot.frames[-1]
        assert isinstance(frame, av.VideoFrame) and frame.time_base * 1000 == 1
        r, g, b = frame.to_ndarray(format="rgb24")[100, 100]
        assert b > 180 and r < 60 and g < 60
        times = [f.pts / 1000 for f in bot.frames]
        # At most one a second on average, never two within half a second.
        assert all(later - earlier >= 0.5 for earlier, later in zip(times, times[1:])), times
        assert len(times) <= times[-1] - times[0] + 2
        await caller.hangup()
        await asyncio.wait_for(session.ended.wait(), 10)
        await client.close()
    (meta,) = manifests(tmp_path / "data")
    assert meta["bot_stats"]["video"]["delivered"] >= 3
    assert meta["recording"]["frames"]["saved"] >= 2  # sampled JPEGs still saved


async def test_every_frame_at_a_high_rate_and_audio_when_asked(tmp_path):
    bot = FrameCounter(math.inf)
    bot.audio_frames = True
    async with running_server(test_config(tmp_path), bot) as srv:
        client, caller, _ = await call_bot(srv)
        session = srv.app[BOT].calls["alice"]
        started = time.monotonic()
        await eventually(lambda: len(bot.frames) >= 45 and len(bot.audio) >= 50, 15)
        elapsed = time.monotonic() - started
        assert session.media.taps["video"].decode is True
        assert len(bot.frames) / elapsed > 15  # the caller sends 30 fps
        assert isinstance(bot.audio[0], av.AudioFrame) and bot.audio[0].sample_rate == 48000
        # the rate can change during the call: down to the keyframe path
        session.call.video_fps = 0.5
        await eventually(lambda: session.media.taps["video"].decode is False)
        await caller.hangup()
        await asyncio.wait_for(session.ended.wait(), 10)
        await client.close()


async def test_a_slow_bot_loses_frames_not_the_recording(tmp_path):
    bot = FrameCounter(math.inf, delay=0.5)
    async with running_server(test_config(tmp_path), bot) as srv:
        client, caller, _ = await call_bot(srv)
        session = srv.app[BOT].calls["alice"]
        await eventually(lambda: session.media.video_feed.dropped >= 30, 15)
        # signaling still answers at once
        started = time.monotonic()
        await client.send({"type": "presence"})
        await client.recv_type("presence")
        assert time.monotonic() - started < 0.5
        await caller.hangup()
        await asyncio.wait_for(session.ended.wait(), 10)
        await client.close()
    (meta,) = manifests(tmp_path / "data")
    assert meta["bot_stats"]["video"]["dropped"] >= 30
    assert meta["recording"]["state"] == "complete" and meta["recording"]["dropped"] == 0


async def test_photos_checked_refused_saved_and_sent_back(tmp_path):
    small = make_jpeg(3_000, seed=5)
    large = make_png(200_000)

    class Desk(Bot):
        def __init__(self) -> None:
            self.photos: list[Photo] = []
            self.sent: list[dict] = []

        async def check_photo(self, call: Call, photo: Photo) -> None:
            assert photo.path is None and photo.data
            if photo.width < 100:
                raise RefusePhoto(f"{photo.width}x{photo.height} is too small", "too-small")

        async def on_photo(self, call: Call, photo: Photo) -> None:
            assert photo.path is not None and photo.path.read_bytes() == photo.data
            self.photos.append(photo)
            self.sent.append(await call.send_photo(make_jpeg(20_000, seed=9), name="copy.jpg"))

    bot = Desk()
    async with running_server(test_config(tmp_path), bot) as srv:
        client = await Client.connect(srv.ws_url)
        await client.login("alice")
        caller = Caller(client)
        peer = PhotoPeer(caller.pc.createDataChannel("photos", ordered=True))
        await caller.call()
        session = srv.app[BOT].calls["alice"]
        await eventually(lambda: peer.channel.readyState == "open")

        tiny = np.full((40, 60, 3), 200, np.uint8)
        import cv2

        tiny_jpeg = cv2.imencode(".jpg", tiny)[1].tobytes()
        peer.send_photo("t", tiny_jpeg)
        reply = await peer.reply()
        assert reply["error"] == "too-small" and "60x40" in reply["message"]

        peer.send_photo("big", large, mime="image/png", name="big.png")
        assert (await peer.reply())["type"] == "photo-saved"
        received = await peer.photo()
        assert received.name == "copy.jpg" and received.mime == "image/jpeg"
        await eventually(lambda: bot.sent)
        assert bot.sent[0]["type"] == "photo-saved"
        assert bot.photos[0].name == "big.png" and bot.photos[0].width > 100
        await caller.hangup()
        await asyncio.wait_for(session.ended.wait(), 10)
        await client.close()
    (meta,) = manifests(tmp_path / "data")
    assert [p["name"] for p in meta["photos"]] == ["big.png"]
    (sent,) = meta["photos_sent"]
    assert sent["acknowledged"] is True and sent["file"] == "sent-0001.jpg"
    assert {"photo-sent"} <= {f["kind"] for f in meta["files"]}
    assert small  # (kept for symmetry with the other sizes)


async def test_talking_back_with_a_frame_callback_in_the_worker_pool(tmp_path):
    import threading

    threads: set[str] = set()

    def invert(frame: av.VideoFrame) -> av.VideoFrame:
        threads.add(threading.current_thread().name)
        image = 255 - frame.to_ndarray(format="rgb24")
        return av.VideoFrame.from_ndarray(image, format="rgb24")

    class Negative(Bot):
        async def on_call(self, call: Call) -> None:
            call.send_video(invert)
            call.echo("audio")

    async with running_server(test_config(tmp_path), Negative()) as srv:
        client, caller, _ = await call_bot(srv, tracks=[PatternVideoTrack(colour=(0, 0, 255)), *_audio()])
        track = caller.received["video"]
        for _ in range(5):
            frame = await asyncio.wait_for(track.recv(), 10)
        r, g, b = frame.to_ndarray(format="rgb24")[frame.height * 3 // 4, frame.width // 2]
        assert r > 180 and g > 180 and b < 80, (r, g, b)  # blue inverted is yellow
        assert threads and all(name.startswith("bot") for name in threads)
        audio = await asyncio.wait_for(caller.received["audio"].recv(), 10)
        assert audio.sample_rate == 48000
        await caller.hangup()
        await client.close()


def _audio():
    from aiortc.mediastreams import AudioStreamTrack

    return [AudioStreamTrack()]


async def test_outgoing_media_is_set_up_in_on_call_only(tmp_path):
    errors: list[Exception] = []

    class Late(Bot):
        async def on_connected(self, call: Call) -> None:
            try:
                call.echo()
            except Exception as exc:  # noqa: BLE001  (the error is what is tested)
                errors.append(exc)

    async with running_server(test_config(tmp_path), Late()) as srv:
        client, caller, _ = await call_bot(srv)
        await eventually(lambda: errors)
        await caller.hangup()
        await client.close()
    from media.errors import InvalidState

    assert isinstance(errors[0], InvalidState) and "on_call" in str(errors[0])


def test_load_bot_names_what_is_wrong():
    assert type(load_bot(None, "echo")).__name__ == "EchoBot"
    assert type(load_bot("peer.bots:OverlayBot")).__name__ == "OverlayBot"
    with pytest.raises(BotLoadError, match="module:Class"):
        load_bot("nocolon")
    with pytest.raises(BotLoadError, match="cannot import"):
        load_bot("no_such_module_here:Bot")
    with pytest.raises(BotLoadError, match="has no"):
        load_bot("peer.bots:Missing")
    with pytest.raises(BotLoadError, match="not a peer.Bot"):
        load_bot("json:JSONDecoder")


async def test_server_refuses_a_bot_it_cannot_load(tmp_path):
    with pytest.raises(RuntimeError, match="did not start"):
        await ServerProcess.start(tmp_path / "data", "--bot", "no_such_module_here:Bot")


async def test_a_bot_failing_in_on_call_refuses_with_bot_error_and_says_why_on_disk(tmp_path):
    class Broken(Bot):
        async def on_call(self, call: Call) -> None:
            raise KeyError("missing setting")

    async with running_server(test_config(tmp_path), Broken()) as srv:
        client = await Client.connect(srv.ws_url)
        await client.login("alice")
        caller = Caller(client)
        with pytest.raises(CallRefused) as refused:
            await caller.call()
        assert refused.value.code == "bot-error"
        await caller.pc.close()
        await client.close()
        (meta,) = await eventually(lambda: manifests(tmp_path / "data"))
    assert meta["end_reason"] == "bot-error" and meta["status"] == "complete"
    assert any("on_call: KeyError" in e for e in meta["errors"])
