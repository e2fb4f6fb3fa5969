"""Photos over a real aiortc data channel: two peer connections over loopback."""

from __future__ import annotations

import asyncio
import hashlib
import json
import random

import pytest

from photos.protocol import PhotoLimits

from tests.support.photos import begin_message, chunked, end_message, make_jpeg

pytestmark = [pytest.mark.timeout(120), pytest.mark.slow]


def _files(call) -> dict[str, bytes]:
    return {
        p.name: p.read_bytes()
        for p in call.store.directory.path.iterdir()
    }


def _saved(photo_id, data: bytes) -> dict:
    return {"type": "photo-saved", "id": photo_id, "size": len(data), "sha256": hashlib.sha256(data).hexdigest()}


async def test_photos_back_to_back_arrive_byte_identical(photo_call, jpeg_10k, jpeg_300k, jpeg_3m, png_300k) -> None:
    photos = [("small", jpeg_10k, "image/jpeg"), (2, jpeg_300k, "image/jpeg"),
              ("big", jpeg_3m, "image/jpeg"), (4, png_300k, "image/png")]
    # All four are sent before the first reply is read.
    for photo_id, data, mime in photos:
        photo_call.caller.send_photo(photo_id, data, mime=mime, name=f"{photo_id}.x")
    replies = await photo_call.caller.replies_for(4)
    assert replies == [_saved(photo_id, data) for photo_id, data, _ in photos]
    assert _files(photo_call) == {
        "photo-0001.jpg": jpeg_10k,
        "photo-0002.jpg": jpeg_300k,
        "photo-0003.jpg": jpeg_3m,
        "photo-0004.png": png_300k,
    }
    assert [(e["id"], e["name"], e["source"]) for e in photo_call.store.entries] == [
        ("small", "small.x", "datachannel"), (2, "2.x", "datachannel"),
        ("big", "big.x", "datachannel"), (4, "4.x", "datachannel"),
    ]


async def test_bad_photos_get_one_error_each_and_the_channel_stays_usable(photo_call, jpeg_10k, jpeg_300k) -> None:
    caller = photo_call.caller
    noise = random.Random(40_000).randbytes(40_000)
    caller.send_photo(1, noise)                                        # valid hash, not an image
    caller.send_photo(2, jpeg_300k, sha256="0" * 64)                   # hash mismatch
    caller.send_photo(3, jpeg_300k, size=len(jpeg_300k) - 1)           # more bytes than declared
    caller.send_photo(4, jpeg_300k, size=len(jpeg_300k) + 1)           # fewer bytes than declared
    caller.send_photo(5, jpeg_10k, mime="image/gif")                   # unknown mime
    caller.send_photo(6, jpeg_10k, mime="image/png")                   # a JPEG called PNG
    caller.send_photo(7, jpeg_300k, size=20 * 1024 * 1024 + 1)         # over the size limit
    caller.channel.send(b"stray chunk")
    caller.channel.send(b"stray chunk")
    caller.channel.send(end_message(8))
    caller.channel.send(end_message(9))
    caller.channel.send("{not json")
    caller.send_photo(10, jpeg_10k)
    replies = await caller.replies_for(11)
    assert [(r["type"], r["id"], r.get("error")) for r in replies] == [
        ("photo-error", 1, "not-an-image"),
        ("photo-error", 2, "hash-mismatch"),
        ("photo-error", 3, "size-mismatch"),
        ("photo-error", 4, "size-mismatch"),
        ("photo-error", 5, "unknown-mime"),
        ("photo-error", 6, "mime-mismatch"),
        ("photo-error", 7, "too-large"),
        ("photo-error", None, "unexpected-chunk"),  # one for the run of stray chunks + end 8
        ("photo-error", 9, "unexpected-end"),
        ("photo-error", None, "bad-message"),
        ("photo-saved", 10, None),
    ]
    assert all(isinstance(r["message"], str) and r["message"] for r in replies[:-1])
    assert _files(photo_call) == {"photo-0001.jpg": jpeg_10k}


async def test_a_new_begin_interrupts_an_unfinished_photo(photo_call, jpeg_300k, jpeg_10k) -> None:
    caller = photo_call.caller
    caller.channel.send(begin_message("a", jpeg_300k))
    caller.channel.send(jpeg_300k[:1000])
    caller.send_photo("b", jpeg_10k)
    assert [(r["id"], r.get("error")) for r in await caller.replies_for(2)] == [("a", "interrupted"), ("b", None)]
    assert _files(photo_call) == {"photo-0001.jpg": jpeg_10k}


async def test_an_error_reply_never_overtakes_an_earlier_save(photo_call, jpeg_3m) -> None:
    caller = photo_call.caller
    caller.send_photo(1, jpeg_3m)
    caller.channel.send("junk")  # answered at once by the assembler, but queued behind photo 1
    replies = await caller.replies_for(2)
    assert [(r["type"], r["id"]) for r in replies] == [("photo-saved", 1), ("photo-error", None)]


async def test_photo_count_limit(photo_call_factory, jpeg_10k) -> None:
    call = await photo_call_factory(PhotoLimits(max_photos=2))
    for i in range(4):
        call.caller.send_photo(i, jpeg_10k)
    replies = await call.caller.replies_for(4)
    assert [(r["id"], r["type"], r.get("error")) for r in replies] == [
        (0, "photo-saved", None), (1, "photo-saved", None),
        (2, "photo-error", "too-many-photos"), (3, "photo-error", "too-many-photos"),
    ]
    assert sorted(_files(call)) == ["photo-0001.jpg", "photo-0002.jpg"]


async def test_chunks_over_the_limit_are_refused(photo_call_factory, jpeg_300k) -> None:
    call = await photo_call_factory(PhotoLimits(max_chunk_bytes=64 * 1024))
    call.caller.send_photo(1, jpeg_300k, chunk=128 * 1024)
    call.caller.send_photo(2, jpeg_300k, chunk=64 * 1024)
    replies = await call.caller.replies_for(2)
    assert [(r["id"], r.get("error")) for r in replies] == [(1, "chunk-too-large"), (2, None)]


async def test_closing_mid_photo_stops_cleanly(photo_call, jpeg_3m) -> None:
    caller = photo_call.caller
    caller.channel.send(begin_message(1, jpeg_3m))
    for part in chunked(jpeg_3m)[:3]:
        caller.channel.send(part)
    # A ping that is answered proves the chunks before it were taken in.
    caller.channel.send(end_message("ping"))
    assert (await caller.reply())["error"] == "id-mismatch"
    assert photo_call.store.quota.reserved == 1
    await photo_call.close()
    assert photo_call.photo_channel.closed
    assert photo_call.store.quota.reserved == 0
    assert _files(photo_call) == {}
    assert not [t for t in asyncio.all_tasks() if t.get_name().startswith("photos ")]


async def test_closing_while_a_photo_is_being_saved(photo_call, jpeg_3m) -> None:
    store = photo_call.store
    saved = asyncio.get_running_loop().create_future()
    real_save = store.save

    async def save_then_hang(photo, **kw):
        saved.set_result(photo.id)
        await asyncio.Event().wait()  # until cancelled by the channel closing

    store.save = save_then_hang  # type: ignore[method-assign]
    photo_call.caller.send_photo(1, jpeg_3m)
    assert await asyncio.wait_for(saved, 30) == 1
    await photo_call.close()
    store.save = real_save  # type: ignore[method-assign]
    assert photo_call.photo_channel._task.cancelled()
    assert not [t for t in asyncio.all_tasks() if t.get_name().startswith("photos ")]


async def test_aclose_detaches_from_an_open_channel(photo_call, jpeg_10k) -> None:
    old = photo_call.photo_channel
    await asyncio.wait_for(old.aclose(), 10)
    assert old.closed and old._task.done()
    assert old._on_message not in old.channel.listeners("message")
    # The channel itself is the bot's to close; a new handler can take it over.
    from photos.channel import attach_photo_channel

    photo_call.photo_channel = attach_photo_channel(old.channel, photo_call.store)
    photo_call.caller.send_photo(1, jpeg_10k)
    photo_call.caller.channel.send(end_message("ping"))
    replies = await photo_call.caller.replies_for(2)
    assert [(r["id"], r["type"]) for r in replies] == [(1, "photo-saved"), ("ping", "photo-error")]
    assert photo_call.caller.replies.empty()
    assert _files(photo_call) == {"photo-0001.jpg": jpeg_10k}


async def test_a_flooding_peer_is_disconnected(photo_call_factory, jpeg_10k) -> None:
    call = await photo_call_factory(max_queue=8)
    saving = asyncio.get_running_loop().create_future()

    async def hang(photo, **kw):  # keeps the reply task busy: replies back up
        saving.set_result(None)
        await asyncio.Event().wait()

    call.store.save = hang  # type: ignore[method-assign]
    closed = asyncio.get_running_loop().create_future()
    call.caller.channel.on("close", lambda: closed.done() or closed.set_result(None))
    call.caller.send_photo(1, jpeg_10k)
    await asyncio.wait_for(saving, 30)
    for _ in range(20):  # more bad messages than replies may queue up
        call.caller.channel.send("junk")
    await asyncio.wait_for(closed, 30)
    assert call.photo_channel.closed
    await asyncio.wait_for(call.photo_channel.wait_closed(), 10)


async def test_two_megabytes_in_one_go(photo_call) -> None:
    data = make_jpeg(2 * 1024 * 1024, seed=9)
    photo_call.caller.send_photo("2mb", data)
    assert await photo_call.caller.reply() == _saved("2mb", data)
    assert json.loads(json.dumps(photo_call.store.entries))[0]["size"] == len(data)


async def test_the_peers_talk_over_loopback_only(photo_call) -> None:
    candidates = [
        line for line in photo_call.caller_pc.localDescription.sdp.splitlines()
        if line.startswith("a=candidate:")
    ]
    assert candidates and all(" 127.0.0.1 " in line for line in candidates), candidates
