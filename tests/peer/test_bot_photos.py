"""Issue 3's end-to-end: an aiortc client logs in through the real signaling,
calls the bot with video and audio, sends photos over the `photos` channel,
then hangs up; files and manifest are checked on disk."""

from __future__ import annotations

import asyncio
import hashlib
import json

import aiohttp

from webapp.config import PhotoConfig
from webapp.keys import BOT
from tests.support.server import Client, running_server, test_config
from tests.support.caller import Caller
from tests.support.photos import PhotoCaller, make_jpeg, make_png
import pytest

pytestmark = pytest.mark.slow  # real calls, processes or real-time media


async def test_photos_over_the_data_channel_to_the_bot(tmp_path):
    config = test_config(tmp_path, photos=PhotoConfig(max_bytes=3_500_000))
    # Made before the call: encoding megapixel images blocks this process's loop.
    sent = {"p10k": make_jpeg(10_000), "p300k": make_png(300_000), "p3m": make_jpeg(3_000_000)}
    corrupt = bytearray(make_jpeg(50_000))
    corrupt[200:5000] = b"\x00" * 4800  # a JPEG header over garbage
    big = make_jpeg(4_500_000)
    async with running_server(config) as srv:
        alice = await Client.connect(srv.ws_url)
        await alice.login("alice")
        caller = Caller(alice)
        channel = caller.pc.createDataChannel("photos", ordered=True)
        photos = PhotoCaller(channel)
        opened = asyncio.Event()
        channel.on("open", opened.set)
        await caller.call()
        await asyncio.wait_for(opened.wait(), 10)

        for photo_id, data in sent.items():
            photos.send_photo(photo_id, data, name=f"{photo_id}.img", mime="image/png" if photo_id == "p300k" else "image/jpeg")
        replies = await photos.replies_for(3)
        for reply, (photo_id, data) in zip(replies, sent.items()):
            assert reply == {"type": "photo-saved", "id": photo_id, "size": len(data), "sha256": hashlib.sha256(data).hexdigest()}

        photos.send_photo("bad", bytes(corrupt), name="bad.jpg")
        assert (await photos.reply())["error"] == "not-an-image"
        photos.send_photo("big", big, name="big.jpg")
        err = await photos.reply()
        assert err["id"] == "big" and err["error"] == "too-large"
        # the channel is still usable after errors
        photos.send_photo("again", sent["p10k"], name="again.jpg")
        assert (await photos.reply())["type"] == "photo-saved"

        call = srv.app[BOT].calls["alice"]
        await caller.hangup()
        await asyncio.wait_for(call.ended.wait(), 10)

        meta = json.loads(call.directory.manifest_path.read_text())
        assert meta["status"] == "complete" and meta["end_reason"] == "caller-closed"
        assert [p["name"] for p in meta["photos"]] == ["p10k.img", "p300k.img", "p3m.img", "again.jpg"]
        for entry, data in zip(meta["photos"], [*sent.values(), sent["p10k"]]):
            on_disk = (call.directory.path / entry["file"]).read_bytes()
            assert on_disk == data and entry["sha256"] == hashlib.sha256(data).hexdigest()
        files = {f["name"]: f for f in meta["files"]}
        assert all(files[p["file"]]["size"] == p["size"] for p in meta["photos"])
        # nothing partial or temporary left behind
        assert not [p for p in call.directory.path.iterdir() if p.name.startswith(".tmp")]
        await alice.close()


async def test_post_api_photos_keeps_a_server_copy_of_a_shared_photo(server, connect):
    await connect("alice")
    data = make_jpeg(20_000)
    sha = hashlib.sha256(data).hexdigest()
    async with aiohttp.ClientSession() as http:
        url = f"{server.url}/api/photos"
        params = {"user": "alice", "peer": "bob", "name": "snap.jpg", "id": "s1", "sha256": sha}
        async with http.post(url, params=params, data=data, headers={"Content-Type": "image/jpeg"}) as r:
            assert r.status == 200
            assert await r.json() == {"type": "photo-saved", "id": "s1", "size": len(data), "sha256": sha}
        async with http.post(url, params={**params, "user": "nobody"}, data=data, headers={"Content-Type": "image/jpeg"}) as r:
            assert r.status == 403 and (await r.json())["error"] == "not-online"
        async with http.post(url, params={**params, "user": "../x"}, data=data) as r:
            assert r.status == 400
    (meta_path,) = (server.app[BOT].config.calls_dir).glob("*/meta.json")
    meta = json.loads(meta_path.read_text())
    assert meta["kind"] == "peer-to-peer" and meta["caller"] == "alice" and meta["callee"] == "bob"
    assert (meta_path.parent / meta["photos"][0]["file"]).read_bytes() == data
