"""The example bots, each run by a real server and called by a real aiortc
caller through the real signaling."""

from __future__ import annotations

import asyncio
import json

import cv2
import numpy as np
import pytest
from aiortc.mediastreams import AudioStreamTrack, VideoStreamTrack
from av import VideoFrame

from peer.bots import load_bot
from tests.support.caller import Caller
from tests.support.photos import PhotoPeer
from tests.support.server import Client, running_server, test_config
from tests.support.wait import eventually
from webapp.keys import BOT

pytestmark = pytest.mark.slow


class PictureTrack(VideoStreamTrack):
    """Sends ``pictures[i]`` (RGB arrays) for ``seconds[i]`` each, then the last forever."""

    def __init__(self, pictures: list[np.ndarray], seconds: list[float]) -> None:
        super().__init__()
        self.pictures = pictures
        self.seconds = seconds
        self.sent = 0

    async def recv(self) -> VideoFrame:
        pts, time_base = await self.next_timestamp()
        t = self.sent / 30
        self.sent += 1
        index, edge = 0, 0.0
        for index, span in enumerate(self.seconds):
            edge += span
            if t < edge:
                break
        frame = VideoFrame.from_ndarray(self.pictures[index], format="rgb24")
        frame.pts, frame.time_base = pts, time_base
        return frame


def qr_picture(text: str, size: tuple[int, int] = (640, 480)) -> np.ndarray:
    code = cv2.QRCodeEncoder.create().encode(text)
    side = size[1] * 3 // 4
    code = cv2.resize(code, (side, side), interpolation=cv2.INTER_NEAREST)
    picture = np.full((size[1], size[0], 3), 255, np.uint8)
    top, left = (size[1] - side) // 2, (size[0] - side) // 2
    picture[top:top + side, left:left + side] = code[:, :, None]
    return picture


async def call_example(srv, tracks, *, channels=("chat",), photos: bool = False):
    client = await Client.connect(srv.ws_url)
    await client.login("alice")
    caller = Caller(client, tracks=tracks)
    chat = caller.pc.createDataChannel(channels[0])
    messages: asyncio.Queue = asyncio.Queue()
    chat.on("message", messages.put_nowait)
    peer = PhotoPeer(caller.pc.createDataChannel("photos", ordered=True)) if photos else None
    await caller.call()
    return client, caller, messages, peer


def meta_of(srv_data) -> dict:
    (path,) = (srv_data / "calls").glob("*/meta.json")
    return json.loads(path.read_text())


async def test_qr_reader_tells_the_caller_and_keeps_the_code(tmp_path):
    bot = load_bot("examples.qr_reader:QrReaderBot")
    async with running_server(test_config(tmp_path), bot) as srv:
        track = PictureTrack([qr_picture("https://example.org/ticket/42")], [1e9])
        client, caller, messages, _ = await call_example(srv, [track, AudioStreamTrack()])
        said = await asyncio.wait_for(messages.get(), 20)
        assert said == "QR: https://example.org/ticket/42"
        session = srv.app[BOT].calls["alice"]
        assert session.media.taps["video"].decode is False  # 2 fps: keyframes decoded alone
        await caller.hangup()
        await asyncio.wait_for(session.ended.wait(), 10)
        await client.close()
    meta = meta_of(tmp_path / "data")
    assert meta["bot_class"] == "examples.qr_reader:QrReaderBot"
    assert [c["text"] for c in meta["bot_data"]["qr_codes"]] == ["https://example.org/ticket/42"]


async def test_face_presence_boxes_the_face_and_counts_seconds(tmp_path):
    from skimage import data

    astronaut = np.full((480, 640, 3), 90, np.uint8)
    astronaut[:, 80:560] = cv2.resize(data.astronaut(), (480, 480))
    empty = np.full((480, 640, 3), 90, np.uint8)
    bot = load_bot("examples.face_presence:FacePresenceBot")
    async with running_server(test_config(tmp_path), bot) as srv:
        track = PictureTrack([astronaut, empty], [4.0, 1e9])
        client, caller, messages, _ = await call_example(srv, [track, AudioStreamTrack()])
        assert await asyncio.wait_for(messages.get(), 20) == "face in view"
        # The video sent back has a green box drawn on it.
        incoming = caller.received["video"]

        async def boxed() -> bool:
            frame = await asyncio.wait_for(incoming.recv(), 10)
            image = frame.to_ndarray(format="rgb24")
            green = (image[:, :, 1] > 200) & (image[:, :, 0] < 80) & (image[:, :, 2] < 80)
            return int(green.sum()) > 200

        await eventually(boxed, 15, interval=0)
        assert await asyncio.wait_for(messages.get(), 20) == "no face in view"
        session = srv.app[BOT].calls["alice"]
        try:
            await eventually(lambda: session.call.meta["face"]["seconds_without"] >= 1.0, 15)
        except AssertionError:
            raise AssertionError(session.call.meta["face"]) from None
        await caller.hangup()
        await asyncio.wait_for(session.ended.wait(), 10)
        await client.close()
    face = meta_of(tmp_path / "data")["bot_data"]["face"]
    assert 2.0 <= face["seconds_with"] <= 5.0, face
    assert face["seconds_without"] >= 1.0
    assert [c["face"] for c in face["changes"]] == [True, False]


async def test_photo_desk_answers_refuses_and_sends_an_annotated_copy(tmp_path):
    blue = np.zeros((600, 800, 3), np.uint8)
    blue[:, :] = (200, 40, 20)  # BGR: blue
    qr = cv2.cvtColor(qr_picture("desk-7", (300, 300)), cv2.COLOR_RGB2BGR)
    blue[150:450, 250:550] = qr
    photo = cv2.imencode(".png", blue)[1].tobytes()
    tiny = cv2.imencode(".jpg", np.full((100, 150, 3), 200, np.uint8))[1].tobytes()
    bot = load_bot("examples.photo_desk:PhotoDeskBot")
    async with running_server(test_config(tmp_path), bot) as srv:
        client, caller, messages, peer = await call_example(srv, [VideoStreamTrack()], photos=True)
        await eventually(lambda: peer.channel.readyState == "open")
        peer.send_photo("t1", tiny, name="tiny.jpg")
        refused = await peer.reply()
        assert refused["error"] == "too-small" and "150x100" in refused["message"]
        peer.send_photo("p1", photo, name="card.png", mime="image/png")
        assert (await peer.reply())["type"] == "photo-saved"
        said = await asyncio.wait_for(messages.get(), 20)
        assert said == "card.png: 800x600, mostly blue (#1428c8), QR: desk-7", said
        copy = await peer.photo()
        assert copy.name == "desk-card.png.jpg" and copy.mime == "image/jpeg"
        image = cv2.imdecode(np.frombuffer(bytes(copy.data), np.uint8), cv2.IMREAD_COLOR)
        assert image.shape[:2] == (600, 800)
        session = srv.app[BOT].calls["alice"]
        await eventually(lambda: session.manifest.photos_sent and "acknowledged" in session.manifest.photos_sent[0])
        await caller.hangup()
        await asyncio.wait_for(session.ended.wait(), 10)
        await client.close()
    meta = meta_of(tmp_path / "data")
    assert [p["name"] for p in meta["photos"]] == ["card.png"]
    assert meta["photos_sent"][0]["acknowledged"] is True
    assert meta["bot_data"]["photos"] == [{"name": "card.png", "said": said.split(": ", 1)[1]}]
