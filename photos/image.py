"""Is this really an image of the declared type, and is it safe to decode?

:func:`inspect_image` is pure and cheap: it reads the signature and the
dimensions from the header, so a 20 MB PNG that claims 50000x50000 pixels is
refused before anything allocates a gigabyte for it. :func:`verify_image` then
decodes the bytes with OpenCV; it costs milliseconds per megabyte, so callers
on an event loop run it in an executor (``PhotoStore`` does).
"""

from __future__ import annotations

import struct
from dataclasses import dataclass

from photos.errors import MimeMismatch, NotAnImage, TooLarge
from photos.protocol import PhotoLimits

__all__ = ["ImageInfo", "sniff_mime", "inspect_image", "verify_image"]


@dataclass(frozen=True)
class ImageInfo:
    mime: str
    width: int
    height: int


_PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
# JPEG SOFn markers carry the frame size (ITU T.81 B.2.2); C4 (DHT), C8 (JPG)
# and CC (DAC) share the range but are not frames.
_JPEG_SOF = frozenset(range(0xC0, 0xD0)) - {0xC4, 0xC8, 0xCC}
# Markers without a length field (T.81 B.1.1.3): TEM, RSTn, SOI.
_JPEG_STANDALONE = frozenset([0x01, 0xD8, *range(0xD0, 0xD8)])


def sniff_mime(data: bytes | bytearray) -> str | None:
    """The image type the bytes' signature says, or None."""
    head = bytes(data[:16])
    if head.startswith(b"\xff\xd8\xff"):
        return "image/jpeg"
    if head.startswith(_PNG_SIGNATURE):
        return "image/png"
    if len(head) >= 12 and head[:4] == b"RIFF" and head[8:12] == b"WEBP":
        return "image/webp"
    return None


def _png_size(data: bytes | bytearray) -> tuple[int, int] | None:
    # The first chunk must be IHDR (PNG spec 11.2.2): length, type, w, h.
    if len(data) < 24 or data[12:16] != b"IHDR":
        return None
    return struct.unpack(">II", data[16:24])


def _jpeg_size(data: bytes | bytearray) -> tuple[int, int] | None:
    pos, n = 2, len(data)
    while pos + 4 <= n:
        if data[pos] != 0xFF:
            return None
        marker = data[pos + 1]
        if marker == 0xFF:  # fill byte (T.81 B.1.1.2)
            pos += 1
            continue
        if marker in _JPEG_STANDALONE:
            pos += 2
            continue
        if marker in (0xD9, 0xDA):  # EOI or start of scan before any frame
            return None
        (length,) = struct.unpack(">H", data[pos + 2 : pos + 4])
        if length < 2:
            return None
        if marker in _JPEG_SOF:
            if pos + 9 > n:
                return None
            height, width = struct.unpack(">HH", data[pos + 5 : pos + 9])
            return width, height
        pos += 2 + length
    return None


def _webp_size(data: bytes | bytearray) -> tuple[int, int] | None:
    if len(data) < 30:
        return None
    fourcc = bytes(data[12:16])
    if fourcc == b"VP8 ":  # lossy: key frame header (RFC 6386 section 9.1)
        if data[23:26] != b"\x9d\x01\x2a":
            return None
        w, h = struct.unpack("<HH", data[26:30])
        return w & 0x3FFF, h & 0x3FFF
    if fourcc == b"VP8L":  # lossless: 14-bit width-1 and height-1 (RFC 9649 3.2)
        if data[20] != 0x2F:
            return None
        (bits,) = struct.unpack("<I", data[21:25])
        return (bits & 0x3FFF) + 1, ((bits >> 14) & 0x3FFF) + 1
    if fourcc == b"VP8X":  # extended: 24-bit canvas width-1 and height-1
        w = int.from_bytes(data[24:27], "little") + 1
        h = int.from_bytes(data[27:30], "little") + 1
        return w, h
    return None


_SIZE_READERS = {"image/jpeg": _jpeg_size, "image/png": _png_size, "image/webp": _webp_size}


def inspect_image(data: bytes | bytearray, declared_mime: str, limits: PhotoLimits) -> ImageInfo:
    """Check signature, declared type and pixel count, without decoding."""
    actual = sniff_mime(data)
    if actual is None:
        raise NotAnImage("the bytes are not a JPEG, PNG or WebP image")
    if actual != declared_mime:
        raise MimeMismatch(f"the bytes are {actual}, declared {declared_mime}")
    size = _SIZE_READERS[actual](data)
    if size is None or size[0] <= 0 or size[1] <= 0:
        raise NotAnImage(f"no valid {actual} header")
    width, height = size
    if limits.max_pixels is not None and width * height > limits.max_pixels:
        raise TooLarge(f"{width}x{height} pixels is over the limit of {limits.max_pixels}")
    return ImageInfo(actual, width, height)


def verify_image(data: bytes | bytearray, declared_mime: str, limits: PhotoLimits) -> ImageInfo:
    """:func:`inspect_image`, then a full decode with OpenCV. Blocking."""
    import cv2  # imported here: the pure protocol modules must not need it
    import numpy as np

    info = inspect_image(data, declared_mime, limits)
    buf = np.frombuffer(data, dtype=np.uint8)
    if info.mime == "image/jpeg":
        # libjpeg's 1/8 scaling still entropy-decodes every block (so a broken
        # stream fails the same way) but skips most of the IDCT and colour
        # conversion: about 40% less CPU for a 2 MB photo.
        flags, scale = cv2.IMREAD_REDUCED_GRAYSCALE_8, 8
    else:
        flags, scale = cv2.IMREAD_UNCHANGED, 1  # reduced modes decode PNG/WebP in full anyway
    # EXIF orientation would swap width and height; we check the stored frame.
    flags |= cv2.IMREAD_IGNORE_ORIENTATION
    try:
        image = cv2.imdecode(buf, flags)
    except cv2.error:
        image = None
    if image is None:
        raise NotAnImage(f"the {info.mime} data does not decode")
    height, width = image.shape[:2]
    expected = (-(-info.width // scale), -(-info.height // scale))
    if (width, height) != expected:
        raise NotAnImage(f"header says {info.width}x{info.height}, the data decodes differently")
    return info
