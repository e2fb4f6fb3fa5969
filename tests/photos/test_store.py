"""Image checks (pure) and PhotoStore (real files in a temporary call dir)."""

from __future__ import annotations

import asyncio
import hashlib
import json
import random
import shutil
import struct
import threading
import zlib
from concurrent.futures import ThreadPoolExecutor

import pytest

from photos.errors import MimeMismatch, NotAnImage, StorageFailed, TooLarge
from photos.image import inspect_image, sniff_mime, verify_image
from photos.protocol import PhotoComplete, PhotoLimits, PhotoQuota
from photos.store import PhotoStore, clean_name
from media.storage import sha256_file

from tests.support.photos import make_jpeg, make_png, make_webp

LIMITS = PhotoLimits()


def _png_header(width: int, height: int) -> bytes:
    ihdr = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n"
        + struct.pack(">I", 13) + b"IHDR" + ihdr
        + struct.pack(">I", zlib.crc32(b"IHDR" + ihdr))
    )


# -- photos_image ----------------------------------------------------------------


@pytest.mark.parametrize(
    "make, mime", [(make_jpeg, "image/jpeg"), (make_png, "image/png"), (make_webp, "image/webp")]
)
def test_real_images_pass_with_their_dimensions(make, mime) -> None:
    import cv2
    import numpy as np

    data = make(20_000)
    decoded = cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_UNCHANGED)
    info = verify_image(data, mime, LIMITS)
    assert (info.mime, info.width, info.height) == (mime, decoded.shape[1], decoded.shape[0])
    assert sniff_mime(data) == mime


def test_webp_lossless_and_extended_headers() -> None:
    import cv2
    import numpy as np

    image = np.zeros((30, 41, 3), np.uint8)
    ok, lossless = cv2.imencode(".webp", image, [cv2.IMWRITE_WEBP_QUALITY, 101])
    assert inspect_image(lossless.tobytes(), "image/webp", LIMITS).width == 41
    vp8x = b"RIFF\0\0\0\0WEBPVP8X" + b"\x0a\0\0\0" + b"\0\0\0\0" + (40).to_bytes(3, "little") + (29).to_bytes(3, "little")
    info = inspect_image(vp8x, "image/webp", LIMITS)
    assert (info.width, info.height) == (41, 30)


def test_mime_mismatch_and_not_an_image(jpeg_10k) -> None:
    with pytest.raises(MimeMismatch):
        inspect_image(jpeg_10k, "image/png", LIMITS)
    for junk in [b"", b"hello world, not an image", random.Random(5000).randbytes(5000), b"\xff\xd8\xff", _png_header(0, 5)]:
        with pytest.raises(NotAnImage):
            inspect_image(junk, sniff_mime(junk) or "image/jpeg", LIMITS)


def test_pixel_bomb_is_refused_before_decoding() -> None:
    bomb = _png_header(60_000, 60_000) + b"\0" * 100
    with pytest.raises(TooLarge, match="60000x60000"):
        verify_image(bomb, "image/png", LIMITS)
    assert inspect_image(bomb, "image/png", PhotoLimits(max_pixels=None, max_decode_bytes=None)).width == 60_000


def test_decode_cost_counts_channels_and_bytes_per_sample_not_only_pixels() -> None:
    """Issue 14 #2: 10950x10950 16-bit RGBA is under 120 Mpx but ~1 GB decoded."""
    header = _png_header(10_950, 10_950)
    rgba16 = header[:24] + bytes([16, 6]) + header[26:]
    with pytest.raises(TooLarge, match="10950x10950 pixels x 4 channels x 2 bytes"):
        inspect_image(rgba16, "image/png", LIMITS)
    grey8 = _png_header(4000, 4000)  # 16 MB decoded: fine
    assert inspect_image(grey8[:24] + bytes([8, 0]) + grey8[26:], "image/png", LIMITS).channels == 1


def test_valid_header_but_corrupt_body_does_not_decode(jpeg_10k) -> None:
    png = make_png(5_000)
    corrupt = png[:40] + bytes(len(png) - 40)
    assert inspect_image(corrupt, "image/png", LIMITS)  # the header alone is fine
    with pytest.raises(NotAnImage):
        verify_image(corrupt, "image/png", LIMITS)
    with pytest.raises(NotAnImage):
        verify_image(jpeg_10k[:300], "image/jpeg", LIMITS)


def test_clean_name() -> None:
    assert clean_name("IMG_2041.jpg", 255) == "IMG_2041.jpg"
    assert clean_name("../../etc/passwd", 255) == "../../etc/passwd"  # harmless: never a path
    assert clean_name("a\x00b\nc\u202egpj.exe\ud800", 255) == "abcgpj.exe"
    assert clean_name("  e\u0301  ", 255) == "\u00e9"
    assert clean_name("x" * 1000, 255) == "x" * 255
    json.dumps(clean_name("\udfff\ud800ok", 10), ensure_ascii=False).encode()


# -- PhotoStore ----------------------------------------------------------------------


def _photo(data: bytes, quota: PhotoQuota, mime: str = "image/jpeg", photo_id=1, name="a.jpg"):
    return PhotoComplete(photo_id, name, mime, bytearray(data), hashlib.sha256(data).hexdigest(), quota.reserve())


async def test_save_writes_the_file_and_returns_the_entry(call_dir, jpeg_10k) -> None:
    seen = []
    store = PhotoStore(call_dir, on_saved=seen.append, clock=lambda: 1795300501.25)
    entry = await store.save(_photo(jpeg_10k, store.quota, name="caf\u00e9\u202e.jpg"))
    assert entry == {
        "file": "photo-0001.jpg",
        "id": 1,
        "name": "caf\u00e9.jpg",
        "mime": "image/jpeg",
        "size": len(jpeg_10k),
        "sha256": hashlib.sha256(jpeg_10k).hexdigest(),
        "width": entry["width"],
        "height": entry["height"],
        "source": "datachannel",
        "received_at": "2026-11-21T22:35:01.250Z",
    }
    assert entry["width"] > 0 and entry["height"] > 0
    path = call_dir.file("photo-0001.jpg")
    assert path.read_bytes() == jpeg_10k
    assert sha256_file(path) == entry["sha256"]
    assert seen == [entry] and store.entries == [entry]
    assert (store.quota.saved, store.quota.reserved) == (1, 0)
    assert sorted(p.name for p in call_dir.path.iterdir()) == ["photo-0001.jpg"]


async def test_files_are_numbered_and_typed_by_the_server(call_dir, jpeg_10k) -> None:
    store = PhotoStore(call_dir, fsync=False)
    png, webp = make_png(2_000), make_webp(2_000)
    names = [
        (await store.save(_photo(d, store.quota, mime, name="../x"), source=s))["file"]
        for d, mime, s in [(jpeg_10k, "image/jpeg", "http"), (png, "image/png", "datachannel"), (webp, "image/webp", "http")]
    ]
    assert names == ["photo-0001.jpg", "photo-0002.png", "photo-0003.webp"]
    # A second store on the same directory (say, after a restart) goes on numbering.
    again = PhotoStore(call_dir, fsync=False)
    assert (await again.save(_photo(jpeg_10k, again.quota)))["file"] == "photo-0004.jpg"


async def test_not_an_image_leaves_nothing_and_frees_the_slot(call_dir) -> None:
    store = PhotoStore(call_dir, limits=PhotoLimits(max_photos=1))
    # A JPEG start, then bytes with no 0xFF: no marker, so no frame header that
    # could by chance declare huge dimensions (random bytes sometimes did).
    junk = b"\xff\xd8\xff" + bytes((i * 7) % 255 for i in range(3000))
    with pytest.raises(NotAnImage):
        await store.save(_photo(junk, store.quota))
    assert list(call_dir.path.iterdir()) == []
    assert (store.quota.saved, store.quota.reserved) == (0, 0)
    with pytest.raises(MimeMismatch):
        await store.save(_photo(make_png(1000), store.quota, "image/jpeg"))
    assert store.entries == [] and list(call_dir.path.iterdir()) == []


async def test_storage_failure_is_typed_and_frees_the_slot(call_dir, jpeg_10k) -> None:
    store = PhotoStore(call_dir)
    shutil.rmtree(call_dir.path)
    with pytest.raises(StorageFailed):
        await store.save(_photo(jpeg_10k, store.quota))
    assert (store.quota.saved, store.quota.reserved) == (0, 0)
    assert store.entries == []


async def test_a_failing_on_saved_does_not_lose_the_photo(call_dir, jpeg_10k) -> None:
    def broken(entry):
        raise RuntimeError("manifest is broken")

    store = PhotoStore(call_dir, on_saved=broken)
    entry = await store.save(_photo(jpeg_10k, store.quota))
    assert call_dir.file(entry["file"]).read_bytes() == jpeg_10k


async def test_decoding_runs_off_the_event_loop(call_dir, jpeg_10k, monkeypatch) -> None:
    import photos.store as photos_store

    threads = []
    real = photos_store.verify_image

    def spy(*args):
        threads.append(threading.get_ident())
        return real(*args)

    monkeypatch.setattr(photos_store, "verify_image", spy)
    store = PhotoStore(call_dir)
    await store.save(_photo(jpeg_10k, store.quota))
    assert threads and threads[0] != threading.get_ident()


async def test_cancel_while_decoding_leaves_nothing(call_dir, jpeg_10k) -> None:
    gate = threading.Event()
    started = asyncio.get_running_loop().create_future()
    loop = asyncio.get_running_loop()

    class GatedExecutor(ThreadPoolExecutor):
        def submit(self, fn, *args, **kwargs):
            def gated():
                loop.call_soon_threadsafe(lambda: started.done() or started.set_result(None))
                gate.wait(10)
                return fn(*args, **kwargs)
            return super().submit(gated)

    with GatedExecutor(1) as executor:
        store = PhotoStore(call_dir, executor=executor)
        task = asyncio.create_task(store.save(_photo(jpeg_10k, store.quota)))
        await asyncio.wait_for(started, 10)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        gate.set()
    assert list(call_dir.path.iterdir()) == []
    assert (store.quota.saved, store.quota.reserved) == (0, 0)


async def test_cancel_while_writing_finishes_the_write_and_records_it(call_dir, jpeg_10k, monkeypatch) -> None:
    import photos.store as photos_store

    loop = asyncio.get_running_loop()
    writing = loop.create_future()
    gate = threading.Event()
    real = photos_store.atomic_write_bytes

    def slow_write(*args, **kwargs):
        loop.call_soon_threadsafe(writing.set_result, None)
        gate.wait(10)
        return real(*args, **kwargs)

    monkeypatch.setattr(photos_store, "atomic_write_bytes", slow_write)
    seen = []
    store = PhotoStore(call_dir, on_saved=seen.append)
    task = asyncio.create_task(store.save(_photo(jpeg_10k, store.quota)))
    await asyncio.wait_for(writing, 10)
    task.cancel()  # cancels the future the task awaits: lands while the thread is blocked
    gate.set()
    with pytest.raises(asyncio.CancelledError):
        await asyncio.wait_for(task, 10)
    # Complete on disk, and recorded: the manifest and the directory agree.
    assert call_dir.file("photo-0001.jpg").read_bytes() == jpeg_10k
    assert [e["file"] for e in seen] == ["photo-0001.jpg"]
    assert (store.quota.saved, store.quota.reserved) == (1, 0)


def _with_exif_orientation(jpeg: bytes, orientation: int) -> bytes:
    # APP1 "Exif" with a big-endian TIFF header and one IFD entry:
    # tag 0x0112 (Orientation), type SHORT, count 1.
    tiff = b"MM\x00*" + struct.pack(">I", 8) + struct.pack(">H", 1)
    tiff += struct.pack(">HHIHH", 0x0112, 3, 1, orientation, 0) + struct.pack(">I", 0)
    app1 = b"Exif\x00\x00" + tiff
    return jpeg[:2] + b"\xff\xe1" + struct.pack(">H", len(app1) + 2) + app1 + jpeg[2:]


def test_rotated_jpeg_is_checked_as_stored(jpeg_10k) -> None:
    import cv2
    import numpy as np

    rotated = _with_exif_orientation(jpeg_10k, 6)  # "rotate 90 degrees to display"
    shown = cv2.imdecode(np.frombuffer(rotated, np.uint8), cv2.IMREAD_COLOR)
    stored = cv2.imdecode(np.frombuffer(jpeg_10k, np.uint8), cv2.IMREAD_COLOR)
    assert shown.shape[:2] == stored.shape[1::-1]  # the tag took effect
    info = verify_image(rotated, "image/jpeg", LIMITS)
    assert (info.width, info.height) == (stored.shape[1], stored.shape[0])


async def test_below_the_free_space_floor_nothing_is_written(call_dir, jpeg_10k) -> None:
    """Issue 14 #5: --min-free-bytes applies to photos, not only to new calls."""
    from photos.errors import DiskFull

    store = PhotoStore(call_dir, limits=PhotoLimits(min_free_bytes=10**18), fsync=False)
    with pytest.raises(DiskFull):
        await store.save(_photo(jpeg_10k, store.quota))
    assert list(call_dir.path.iterdir()) == [] and (store.quota.saved, store.quota.reserved) == (0, 0)
    assert DiskFull.code == "disk-full" and DiskFull.http_status == 507
