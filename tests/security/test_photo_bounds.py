"""Issue 14 #1, #2, #4: what a client declares or withholds costs the server
no memory; measured on a real server process (/proc/<pid>/status)."""

from __future__ import annotations

import asyncio
import hashlib
import json
from typing import Any, AsyncIterator

import aiohttp
import pytest

from tests.support.caller import Caller
from tests.support.photos import PhotoCaller, begin_message, end_message, make_jpeg, png_bomb
from tests.support.process import ServerProcess
from tests.support.resources import peak_rss_bytes, reset_peak_rss, rss_bytes
from tests.support.server import Client

MB = 1024 * 1024


@pytest.fixture
async def server(tmp_path) -> AsyncIterator[ServerProcess]:
    proc = await ServerProcess.start(tmp_path, "--no-record", "--frame-interval", "0")
    yield proc
    await proc.stop()


def call_dirs(tmp_path) -> list[str]:
    calls = tmp_path / "calls"
    return sorted(p.name for p in calls.iterdir()) if calls.exists() else []


async def upload(http: aiohttp.ClientSession, url: str, user: str, upload_token: str | None, data: bytes,
                 mime: str = "image/png", **params: str) -> tuple[int, dict[str, Any]]:
    headers = {"Content-Type": mime}
    if upload_token:
        headers["X-Upload-Token"] = upload_token
    query = {"user": user, "peer": "bob", **params}
    async with http.post(url + "/api/photos", params=query, data=data, headers=headers) as r:
        return r.status, await r.json()


async def test_twenty_photos_channels_declaring_20_mb_each_cost_no_memory(server, tmp_path):
    """20 `photos` channels on one call, each with a photo-begin declaring
    20 MB: the old code allocated 20 x 20 MB (106 MB -> 493 MB in the audit)."""
    alice = await Client.connect(server.ws_url)
    await alice.login("alice")
    caller = Caller(alice, tracks=[])
    channels = [caller.pc.createDataChannel("photos") for _ in range(20)]
    states: list[asyncio.Future[str]] = []
    for ch in channels:
        fut: asyncio.Future[str] = asyncio.get_running_loop().create_future()
        ch.on("open", lambda f=fut: f.done() or f.set_result("open"))
        ch.on("close", lambda f=fut: f.done() or f.set_result("closed"))
        states.append(fut)
    await caller.call()
    await asyncio.wait_for(asyncio.gather(*states), 15)
    pid = server.proc.pid
    before = rss_bytes(pid)

    replies: list[asyncio.Future[Any]] = []
    for i, ch in enumerate(channels):
        fut = asyncio.get_running_loop().create_future()
        replies.append(fut)
        if ch.readyState != "open":
            fut.set_result("closed")
            continue
        ch.on("message", lambda m, f=fut: f.done() or f.set_result(json.loads(m)))
        ch.on("close", lambda f=fut: f.done() or f.set_result("closed"))
        # A begin declaring 20 MB, then an end for another id: the id-mismatch
        # reply proves the begin was processed (the photo stays in flight).
        ch.send(begin_message(f"big{i}", b"x", size=20_000_000))
        ch.send(end_message("probe"))
    outcomes = await asyncio.wait_for(asyncio.gather(*replies), 20)
    answered = [o for o in outcomes if isinstance(o, dict)]
    assert all(o["error"] == "id-mismatch" for o in answered), answered
    # One photos channel per call: the others were closed by the server.
    assert len(answered) == 1 and sum(1 for ch in channels if ch.readyState == "open") == 1
    grown = rss_bytes(pid) - before
    assert grown < 30 * MB, f"server RSS grew by {grown / MB:.0f} MB"
    await caller.pc.close()
    await alice.close()


async def test_decompression_bomb_is_refused_from_its_header_without_a_directory(server, tmp_path):
    """A 950 KB PNG declaring 10950x10950 16-bit RGBA (about 1 GB decoded):
    the old code decoded it whole (1.45 GB) and saved it."""
    bomb = png_bomb(10950, 10950)
    assert len(bomb) < MB
    alice = await Client.connect(server.ws_url)
    login = await alice.login("alice")
    pid = server.proc.pid
    reset_peak_rss(pid)
    base = peak_rss_bytes(pid)
    async with aiohttp.ClientSession() as http:
        status, reply = await upload(http, server.url, "alice", login.get("uploadToken"), bomb)
    assert (status, reply["error"]) == (413, "too-large"), reply
    peak = peak_rss_bytes(pid) - base
    assert peak < 60 * MB, f"server peak RSS grew by {peak / MB:.0f} MB"
    assert call_dirs(tmp_path) == []  # issue 14 #5: refused work leaves no directory

    # The same over the data channel of a bot call.
    caller = Caller(alice, tracks=[])
    photos = PhotoCaller(caller.pc.createDataChannel("photos"))
    opened = asyncio.Event()
    photos.channel.on("open", opened.set)
    await caller.call()
    await asyncio.wait_for(opened.wait(), 10)
    photos.send_photo("bomb", bomb, mime="image/png")
    reply = await photos.reply()
    assert (reply["id"], reply["error"]) == ("bomb", "too-large")
    assert peak_rss_bytes(pid) - base < 60 * MB
    await caller.pc.close()
    await alice.close()


async def test_concurrent_big_decodes_are_bounded(server, tmp_path):
    """Six allowed but big PNGs (4000x4000 RGBA, 64 MB decoded in full) at
    once: at most two decodes run, each at 8-bit grey (16 MB)."""
    image = png_bomb(4000, 4000, bit_depth=8, colour_type=6)
    users = ["alice", "bob", "carol"]
    clients, tokens = [], {}
    for user in users:
        client = await Client.connect(server.ws_url)
        tokens[user] = (await client.login(user)).get("uploadToken")
        clients.append(client)
    pid = server.proc.pid
    reset_peak_rss(pid)
    base = peak_rss_bytes(pid)
    async with aiohttp.ClientSession() as http:
        results = await asyncio.gather(*(
            upload(http, server.url, user, tokens[user], image, name=f"{user}-{i}.png")
            for user in users for i in range(2)
        ))
    assert [status for status, _ in results] == [200] * 6, results
    peak = peak_rss_bytes(pid) - base
    # Old code: six 64 MB decodes at once (~400 MB).
    assert peak < 120 * MB, f"server peak RSS grew by {peak / MB:.0f} MB"
    for client in clients:
        await client.close()


async def test_stalled_uploads_hold_no_memory(server, tmp_path):
    """Ten unfinished 19.99 MB uploads (the body's first 4 MB, then nothing):
    the old code buffered them in memory (210 MB in the audit)."""
    alice = await Client.connect(server.ws_url)
    login = await alice.login("alice")
    pid = server.proc.pid
    before = rss_bytes(pid)
    prefix = make_jpeg(200_000) + bytes(4 * MB)
    writers = []
    port = int(server.url.rsplit(":", 1)[1])
    for i in range(10):
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        head = (
            f"POST /api/photos?user=alice&peer=p{i} HTTP/1.1\r\nHost: 127.0.0.1\r\n"
            f"Content-Type: image/jpeg\r\nContent-Length: 19990000\r\n"
            f"X-Upload-Token: {login.get('uploadToken', '')}\r\n\r\n"
        ).encode()
        writer.write(head + prefix)
        writers.append((reader, writer))
    for _, writer in writers:
        await writer.drain()
    # Two are taken (per user), the rest answered busy at once.
    statuses = []
    for reader, _ in writers[2:]:
        line = await asyncio.wait_for(reader.readline(), 10)
        statuses.append(line.split()[1])
    assert statuses == [b"503"] * 8
    grown = rss_bytes(pid) - before
    assert grown < 30 * MB, f"server RSS grew by {grown / MB:.0f} MB"
    for _, writer in writers:
        writer.close()
    await alice.close()


async def test_a_slow_upload_body_times_out(tmp_path):
    proc = await ServerProcess.start(tmp_path, "--idle-timeout", "1", "--upload-timeout", "2")
    try:
        alice = await Client.connect(proc.ws_url)
        login = await alice.login("alice")
        port = int(proc.url.rsplit(":", 1)[1])
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        writer.write((
            "POST /api/photos?user=alice&peer=bob HTTP/1.1\r\nHost: 127.0.0.1\r\n"
            "Content-Type: image/jpeg\r\nContent-Length: 1000000\r\n"
            f"X-Upload-Token: {login.get('uploadToken', '')}\r\n\r\n"
        ).encode() + b"\xff\xd8\xff")
        await writer.drain()
        status = await asyncio.wait_for(reader.readline(), 10)
        assert status.split()[1] == b"408"
        writer.close()
        assert call_dirs(tmp_path) == []
        await alice.close()
    finally:
        await proc.stop()


def test_png_bomb_helper_is_a_real_png():
    import cv2
    import numpy as np

    image = cv2.imdecode(np.frombuffer(png_bomb(300, 200), np.uint8), cv2.IMREAD_UNCHANGED)
    assert image.shape == (200, 300, 4) and image.dtype == np.uint16 and not image.any()
    assert hashlib.sha256(png_bomb(10, 10)).hexdigest() == hashlib.sha256(png_bomb(10, 10)).hexdigest()


@pytest.mark.slow
async def test_a_recording_stops_cleanly_when_the_disk_fills(tmp_path):
    """Issue 14 #5: the free-space floor applies to a recording in progress."""
    import shutil
    import subprocess

    from tests.support.wait import eventually

    free = shutil.disk_usage(tmp_path).free
    floor = free - 2 * 1024 * MB  # 2 GB above the floor now; other work on the machine writes too
    proc = await ServerProcess.start(tmp_path, "--min-free-bytes", str(floor))
    filler = tmp_path / "filler"
    try:
        alice = await Client.connect(proc.ws_url)
        await alice.login("alice")
        caller = Caller(alice)
        await caller.call()
        (call_dir,) = list((tmp_path / "calls").iterdir())

        def recording() -> dict | None:
            meta = json.loads((call_dir / "meta.json").read_text())
            return meta.get("recording") or None

        await eventually(lambda: any(p.name.startswith("recording.") for p in call_dir.iterdir()), 15)
        subprocess.run(["fallocate", "-l", str(4 * 1024 * MB), str(filler)], check=True)
        error = await alice.recv_type("error", timeout=15)
        assert (error["code"], error["username"]) == ("disk-full", "bot")
        rec = await eventually(lambda: (r := recording()) and r.get("stop_reason") == "disk-full" and r, 10)
        assert rec["file"] and (call_dir / rec["file"]).stat().st_size > 0
        assert rec["state"] in ("complete", "incomplete") and rec["stop_reason"] == "disk-full"
        assert caller.pc.connectionState == "connected"  # the call goes on
        filler.unlink()
        await caller.hangup()
        final = await eventually(lambda: (m := json.loads((call_dir / "meta.json").read_text()))["status"] == "complete" and m, 15)
        assert final["recording"]["stop_reason"] == "disk-full" and final["recording"]["state"] == "complete"
        import av
        with av.open(str(call_dir / final["recording"]["file"])) as container:  # the file plays
            assert sum(1 for _ in container.demux(video=0)) > 0
        await alice.close()
    finally:
        filler.unlink(missing_ok=True)
        await proc.stop()


@pytest.mark.slow
async def test_photo_bytes_in_memory_are_bounded_for_the_whole_server(tmp_path):
    """Five calls, each 5.5 MB into a photo declared 19.5 MB, against
    --max-photo-memory 24 MB: four fit, the fifth is answered busy, and the
    server holds about 24 MB (the old code: 5 x 19.5 MB at the photo-begins)."""
    proc = await ServerProcess.start(tmp_path, "--no-record", "--frame-interval", "0",
                                     "--max-photo-memory", str(24 * 1000 * 1000))
    clients, callers = [], []
    try:
        pid = proc.proc.pid
        links = []
        for i in range(5):
            client = await Client.connect(proc.ws_url)
            await client.login(f"user{i}")
            caller = Caller(client, tracks=[])
            link = PhotoCaller(caller.pc.createDataChannel("photos"))
            opened = asyncio.Event()
            link.channel.on("open", opened.set)
            await caller.call()
            await asyncio.wait_for(opened.wait(), 10)
            clients.append(client)
            callers.append(caller)
            links.append(link)
        before = rss_bytes(pid)
        part = (bytes(range(256)) * 21500)[:5_500_000]  # the first 5.5 MB of the photo
        for i, link in enumerate(links):
            link.channel.send(begin_message(f"p{i}", b"x", size=19_500_000))
            for start in range(0, len(part), 64 * 1024):
                link.channel.send(part[start:start + 64 * 1024])
            link.channel.send(end_message("probe"))  # answered once the chunks before it are in
        outcomes = []
        for link in links:
            outcomes.append(await link.reply(30))
            if outcomes[-1]["error"] == "busy":
                outcomes[-1] = {"error": "busy", "then": await link.reply(30)}
        busy = [o for o in outcomes if o["error"] == "busy"]
        assert len(busy) == 1 and busy[0]["then"]["error"] == "id-mismatch", outcomes
        assert sum(1 for o in outcomes if o["error"] == "id-mismatch") == 4
        grown = rss_bytes(pid) - before
        assert grown < 50 * MB, f"server RSS grew by {grown / MB:.0f} MB"
    finally:
        for caller in callers:
            await caller.pc.close()
        for client in clients:
            await client.close()
        await proc.stop()
