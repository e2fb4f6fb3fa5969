"""Helpers shared by the photo tests: real images and protocol messages."""

from __future__ import annotations

import hashlib
import json

import cv2
import numpy as np


def _noise_image(pixels: int, seed: int) -> np.ndarray:
    # Smooth gradients plus noise: compresses like a photo, not like a flat fill.
    side = max(8, int(pixels**0.5))
    h, w = side, side * 4 // 3
    rng = np.random.default_rng(seed)
    y, x = np.mgrid[0:h, 0:w]
    base = np.stack([(x * 255 // w), (y * 255 // h), ((x + y) * 127 // (w + h))], axis=-1)
    noise = rng.integers(0, 64, size=(h, w, 3))
    return ((base + noise) % 256).astype(np.uint8)


def _encode(ext: str, image: np.ndarray, params: list[int]) -> bytes:
    ok, buf = cv2.imencode(ext, image, params)
    assert ok
    return buf.tobytes()


def _sized(ext: str, target: int, params: list[int], seed: int) -> bytes:
    """An image whose encoding is within about 15% of ``target`` bytes."""
    pixels = max(64, target)
    for _ in range(8):
        data = _encode(ext, _noise_image(pixels, seed), params)
        if abs(len(data) - target) <= target * 0.15:
            return data
        pixels = max(64, int(pixels * target / len(data)))
    return data


def make_jpeg(target: int, seed: int = 1) -> bytes:
    return _sized(".jpg", target, [cv2.IMWRITE_JPEG_QUALITY, 92], seed)


def make_png(target: int, seed: int = 2) -> bytes:
    return _sized(".png", target, [cv2.IMWRITE_PNG_COMPRESSION, 1], seed)


def make_webp(target: int, seed: int = 3) -> bytes:
    return _sized(".webp", target, [cv2.IMWRITE_WEBP_QUALITY, 90], seed)


def begin_message(photo_id, data: bytes, *, name: str = "photo.jpg", mime: str = "image/jpeg", **over) -> str:
    message = {
        "type": "photo-begin",
        "id": photo_id,
        "name": name,
        "mime": mime,
        "size": len(data),
        "sha256": hashlib.sha256(data).hexdigest(),
    }
    message.update(over)
    return json.dumps(message)


def end_message(photo_id) -> str:
    return json.dumps({"type": "photo-end", "id": photo_id})


def chunked(data: bytes, size: int = 256 * 1024) -> list[bytes]:
    return [data[i : i + size] for i in range(0, len(data), size)]


class PhotoCaller:
    """The browser's side of the ``photos`` channel: send photos, read replies."""

    def __init__(self, channel) -> None:
        import asyncio

        self.channel = channel
        self.replies: asyncio.Queue[dict] = asyncio.Queue()
        channel.on("message", self._on_message)

    def _on_message(self, message) -> None:
        self.replies.put_nowait(json.loads(message))

    def send_photo(self, photo_id, data: bytes, *, chunk: int = 256 * 1024, **over) -> None:
        self.channel.send(begin_message(photo_id, data, **over))
        for part in chunked(data, chunk):
            self.channel.send(part)
        self.channel.send(end_message(photo_id))

    async def reply(self, timeout: float = 30.0) -> dict:
        import asyncio

        return await asyncio.wait_for(self.replies.get(), timeout)

    async def replies_for(self, n: int, timeout: float = 30.0) -> list[dict]:
        return [await self.reply(timeout) for _ in range(n)]


class PhotoPeer(PhotoCaller):
    """Both ends of the ``photos`` channel for a test caller, as the page does
    it: sends photos and reads the replies, and receives photos (checked by
    the server's own assembler) and answers them ``photo-saved``."""

    def __init__(self, channel) -> None:
        import asyncio

        from photos.protocol import PhotoAssembler

        self.received: asyncio.Queue = asyncio.Queue()
        self._assembler = PhotoAssembler()
        super().__init__(channel)

    def _on_message(self, message) -> None:
        from photos.protocol import PhotoComplete, PhotoFailed, error_reply, saved_reply

        if isinstance(message, str):
            parsed = json.loads(message)
            if parsed.get("type") in ("photo-saved", "photo-error"):
                self.replies.put_nowait(parsed)
                return
        for event in self._assembler.receive(message):
            if isinstance(event, PhotoComplete):
                event.slot.commit()
                self.received.put_nowait(event)
                self.channel.send(json.dumps(saved_reply(event.id, event.size, event.sha256)))
            elif isinstance(event, PhotoFailed):
                self.channel.send(json.dumps(error_reply(event.id, event.error)))

    async def photo(self, timeout: float = 30.0):
        """The next photo received (a ``PhotoComplete``)."""
        import asyncio

        return await asyncio.wait_for(self.received.get(), timeout)


def png_bomb(width: int, height: int, *, bit_depth: int = 16, colour_type: int = 6) -> bytes:
    """A valid PNG of ``width`` x ``height`` black pixels (16-bit RGBA by
    default) that compresses to about a thousandth of its decoded size: the
    decompression bomb of issue 14 #2 (10950x10950: ~930 KB, ~1 GB decoded).

    Every byte of the image data is 0 (filter type 0, black samples), so the
    zlib stream (RFC 1950) is built from one deflated MiB of zeros repeated:
    after a full flush deflate keeps no history, so each repetition is the
    same bytes. The Adler-32 of N zeros is 1 + (N mod 65521) << 16.
    """
    import struct
    import zlib

    channels = {0: 1, 2: 3, 4: 2, 6: 4}[colour_type]
    total = height * (1 + width * channels * bit_depth // 8)
    block = bytes(1 << 20)
    whole, rest = divmod(total, len(block))
    unit_z = zlib.compressobj(9, zlib.DEFLATED, -15)
    unit = unit_z.compress(block) + unit_z.flush(zlib.Z_FULL_FLUSH)
    tail_z = zlib.compressobj(9, zlib.DEFLATED, -15)
    tail = tail_z.compress(bytes(rest)) + tail_z.flush()
    adler = ((total % 65521) << 16) | 1
    idat = b"\x78\xda" + unit * whole + tail + struct.pack(">I", adler)

    def chunk(kind: bytes, body: bytes) -> bytes:
        return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))

    ihdr = struct.pack(">IIBBBBB", width, height, bit_depth, colour_type, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", idat) + chunk(b"IEND", b"")
