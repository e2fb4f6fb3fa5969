"""POST /api/photos through a real aiohttp server on port 0."""

from __future__ import annotations

import hashlib
import os
import random
from typing import AsyncIterator

import aiohttp
import pytest
from aiohttp import web

from webapp.photo_upload import handle_photo_upload
from photos.protocol import PhotoLimits
from photos.store import PhotoStore

pytestmark = pytest.mark.timeout(60)


class Uploads:
    def __init__(self, session: aiohttp.ClientSession, url: str, store: PhotoStore) -> None:
        self.session = session
        self.url = url
        self.store = store

    async def post(self, body, *, mime: str | None = "image/jpeg", **params) -> tuple[int, dict]:
        headers = {"Content-Type": mime} if mime is not None else {}
        async with self.session.post(self.url, data=body, params=params, headers=headers) as resp:
            return resp.status, await resp.json()


@pytest.fixture
async def uploads(call_dir, request) -> AsyncIterator[Uploads]:
    limits = getattr(request, "param", None) or PhotoLimits(max_bytes=4 * 1024 * 1024, max_photos=3)
    store = PhotoStore(call_dir, limits=limits, fsync=False)

    async def upload(req: web.Request) -> web.Response:
        return await handle_photo_upload(req, store)

    app = web.Application()
    app.router.add_post("/api/photos", upload)
    runner = web.AppRunner(app, shutdown_timeout=1.0)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = runner.addresses[0][1]
    try:
        async with aiohttp.ClientSession() as session:
            yield Uploads(session, f"http://127.0.0.1:{port}/api/photos", store)
    finally:
        await runner.cleanup()


def _sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


async def test_upload_saves_and_answers_like_the_channel(uploads, jpeg_300k, png_300k) -> None:
    status, reply = await uploads.post(jpeg_300k, name="Holiday \u2600.jpg", id="p7", sha256=_sha(jpeg_300k))
    assert (status, reply) == (
        200, {"type": "photo-saved", "id": "p7", "size": len(jpeg_300k), "sha256": _sha(jpeg_300k)},
    )
    status, reply = await uploads.post(png_300k, mime="image/png; charset=binary")
    assert (status, reply["type"], reply["id"]) == (200, "photo-saved", None)
    d = uploads.store.directory
    assert d.file("photo-0001.jpg").read_bytes() == jpeg_300k
    assert d.file("photo-0002.png").read_bytes() == png_300k
    first = uploads.store.entries[0]
    assert (first["name"], first["id"], first["source"]) == ("Holiday \u2600.jpg", "p7", "http")


async def test_streamed_body_without_content_length(uploads, jpeg_300k) -> None:
    async def body():
        for i in range(0, len(jpeg_300k), 10_000):
            yield jpeg_300k[i : i + 10_000]

    status, reply = await uploads.post(body())
    assert (status, reply["type"]) == (200, "photo-saved")


@pytest.mark.parametrize(
    "case, status, code",
    [
        ("no content type", 415, "unknown-mime"),
        ("gif", 415, "unknown-mime"),
        ("png called jpeg", 422, "mime-mismatch"),
        ("random bytes", 422, "not-an-image"),
        ("hash mismatch", 422, "hash-mismatch"),
        ("bad sha256 param", 400, "bad-message"),
        ("bad id param", 400, "bad-message"),
        ("empty body", 400, "bad-message"),
        ("content-length over limit", 413, "too-large"),
        ("chunked body over limit", 413, "too-large"),
    ],
)
async def test_upload_errors(uploads, jpeg_10k, png_300k, case, status, code) -> None:
    big = os.urandom(4 * 1024 * 1024 + 1)

    async def chunked_big():
        for i in range(0, len(big), 1 << 16):
            yield big[i : i + (1 << 16)]

    request = {
        "no content type": dict(body=jpeg_10k, mime=None),
        "gif": dict(body=jpeg_10k, mime="image/gif"),
        "png called jpeg": dict(body=png_300k),
        "random bytes": dict(body=random.Random(1000).randbytes(1000)),
        "hash mismatch": dict(body=jpeg_10k, sha256="0" * 64),
        "bad sha256 param": dict(body=jpeg_10k, sha256="ABC"),
        "bad id param": dict(body=jpeg_10k, id="a\x01"),
        "empty body": dict(body=b""),
        "content-length over limit": dict(body=big),
        "chunked body over limit": dict(body=chunked_big()),
    }[case]
    body = request.pop("body")
    got_status, reply = await uploads.post(body, **request)
    assert (got_status, reply["type"], reply["error"]) == (status, "photo-error", code)
    assert reply["message"]
    assert list(uploads.store.directory.path.iterdir()) == []
    assert uploads.store.quota.reserved == 0
    # And the next upload goes through.
    status, reply = await uploads.post(jpeg_10k)
    assert (status, reply["type"]) == (200, "photo-saved")


async def test_upload_never_reads_past_the_limit(uploads, monkeypatch) -> None:
    from aiohttp import streams

    read_sizes: list[int] = []
    real_read = streams.StreamReader.read

    async def counting_read(self, n=-1):
        block = await real_read(self, n)
        if n >= 0:  # the handler's reads; the test client reads its reply with -1
            read_sizes.append(len(block))
        return block

    monkeypatch.setattr(streams.StreamReader, "read", counting_read)

    async def endless():
        while True:
            yield b"\xff" * (1 << 16)

    status, reply = await uploads.post(endless())
    assert (status, reply["error"]) == (413, "too-large")
    assert sum(read_sizes) == uploads.store.limits.max_bytes + 1


async def test_upload_photo_count_limit(uploads, jpeg_10k) -> None:
    for _ in range(3):
        assert (await uploads.post(jpeg_10k))[0] == 200
    status, reply = await uploads.post(jpeg_10k, id="4")
    assert (status, reply["id"], reply["error"]) == (429, "4", "too-many-photos")


async def test_upload_and_channel_share_the_call_quota(call_dir, jpeg_10k) -> None:
    from photos.protocol import PhotoAssembler

    from tests.support.photos import begin_message, end_message

    store = PhotoStore(call_dir, limits=PhotoLimits(max_photos=1))
    assembler = PhotoAssembler(store.limits, quota=store.quota)
    [complete] = [*assembler.receive(begin_message(1, jpeg_10k)), *assembler.receive(jpeg_10k),
                  *assembler.receive(end_message(1))]
    await store.save(complete)
    [failed] = assembler.receive(begin_message(2, jpeg_10k))
    assert failed.error.code == "too-many-photos"
