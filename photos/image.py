"""Is this really an image of the declared type, and is it safe to decode?

:func:`inspect_image` is pure and cheap: it reads the signature, the
dimensions, the channels and the bits per sample from the header, so a 900 KB
PNG that claims 11000x11000 16-bit RGBA (a gigabyte decoded) is refused
before anything allocates it. Two bounds apply: ``max_pixels`` (width x
height) and ``max_decode_bytes``, the bytes the decode allocates: width x
height x channels x bytes per sample at the size we decode at. JPEG is
decoded at 1/8 scale (libjpeg's DCT scaling), except progressive JPEG, whose
decoder keeps every coefficient of the image (2 bytes per sample, full
size); PNG and WebP decoders have no reduced mode, so they count at full
size (and PNG is then decoded to 8-bit grey, which needs less still).

:func:`verify_image` then decodes the bytes with OpenCV; it costs milliseconds
per megabyte, so callers on an event loop run it in an executor
(``PhotoStore`` does). At most :data:`MAX_DECODES` decodes run at once in the
process, whatever number of calls and uploads ask, so memory spent decoding is
bounded by ``MAX_DECODES x max_decode_bytes``.
"""

from __future__ import annotations

import struct
import threading
from dataclasses import dataclass

from photos.errors import MimeMismatch, NotAnImage, TooLarge
from photos.protocol import PhotoLimits

__all__ = ["ImageInfo", "MAX_DECODES", "decode_cost", "sniff_mime", "inspect_image", "verify_image"]

#: Decodes running at once in the process (a semaphore, shared by every thread).
MAX_DECODES = 2
_decode_slots = threading.BoundedSemaphore(MAX_DECODES)


@dataclass(frozen=True)
class ImageInfo:
    mime: str
    width: int
    height: int
    #: Samples per pixel and bytes per sample, from the header.
    channels: int = 3
    sample_bytes: int = 1
    #: Progressive JPEG: its decoder buffers the whole image's coefficients.
    progressive: bool = False


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


# PNG colour type -> samples per pixel (PNG spec 11.2.2); a palette expands to RGB.
_PNG_CHANNELS = {0: 1, 2: 3, 3: 3, 4: 2, 6: 4}

_Header = tuple[int, int, int, int, bool]  # width, height, channels, bytes per sample, progressive


def _png_size(data: bytes | bytearray) -> _Header | None:
    # The first chunk must be IHDR (PNG spec 11.2.2): length, type, w, h,
    # bit depth, colour type.
    if len(data) < 26 or data[12:16] != b"IHDR":
        return None
    width, height = struct.unpack(">II", data[16:24])
    depth, colour = data[24], data[25]
    if colour not in _PNG_CHANNELS or depth not in (1, 2, 4, 8, 16):
        return None
    return width, height, _PNG_CHANNELS[colour], 2 if depth == 16 else 1, False


# SOF2, SOF6, SOF10, SOF14: progressive (ITU T.81 table B.1).
_JPEG_PROGRESSIVE = frozenset([0xC2, 0xC6, 0xCA, 0xCE])


def _jpeg_size(data: bytes | bytearray) -> _Header | None:
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
            # Lf, P (sample precision), Y, X, Nf (components): T.81 B.2.2.
            if pos + 10 > n:
                return None
            precision = data[pos + 4]
            height, width = struct.unpack(">HH", data[pos + 5 : pos + 9])
            components = data[pos + 9]
            if components < 1:
                return None
            return width, height, components, 2 if precision > 8 else 1, marker in _JPEG_PROGRESSIVE
        pos += 2 + length
    return None


def _webp_size(data: bytes | bytearray) -> _Header | None:
    # libwebp decodes to 8-bit BGR or BGRA; counted as 4 channels either way.
    if len(data) < 30:
        return None
    fourcc = bytes(data[12:16])
    if fourcc == b"VP8 ":  # lossy: key frame header (RFC 6386 section 9.1)
        if data[23:26] != b"\x9d\x01\x2a":
            return None
        w, h = struct.unpack("<HH", data[26:30])
        return w & 0x3FFF, h & 0x3FFF, 4, 1, False
    if fourcc == b"VP8L":  # lossless: 14-bit width-1 and height-1 (RFC 9649 3.2)
        if data[20] != 0x2F:
            return None
        (bits,) = struct.unpack("<I", data[21:25])
        return (bits & 0x3FFF) + 1, ((bits >> 14) & 0x3FFF) + 1, 4, 1, False
    if fourcc == b"VP8X":  # extended: 24-bit canvas width-1 and height-1
        w = int.from_bytes(data[24:27], "little") + 1
        h = int.from_bytes(data[27:30], "little") + 1
        return w, h, 4, 1, False
    return None


_SIZE_READERS = {"image/jpeg": _jpeg_size, "image/png": _png_size, "image/webp": _webp_size}


def _scale(info: ImageInfo) -> int:
    """The factor each side is decoded smaller by."""
    return 8 if info.mime == "image/jpeg" and not info.progressive else 1


def decode_cost(info: ImageInfo) -> int:
    """Bytes the decode of ``info`` allocates, from its header (see the module
    docstring): width x height x channels x bytes per sample at decode size."""
    if info.mime == "image/jpeg" and info.progressive:
        # libjpeg keeps a 16-bit coefficient per sample of the whole image.
        return info.width * info.height * info.channels * 2
    scale = _scale(info)
    w, h = -(-info.width // scale), -(-info.height // scale)
    return w * h * info.channels * info.sample_bytes


def inspect_image(data: bytes | bytearray, declared_mime: str, limits: PhotoLimits) -> ImageInfo:
    """Check signature, declared type, pixel count and decode cost, without decoding."""
    actual = sniff_mime(data)
    if actual is None:
        raise NotAnImage("the bytes are not a JPEG, PNG or WebP image")
    if actual != declared_mime:
        raise MimeMismatch(f"the bytes are {actual}, declared {declared_mime}")
    header = _SIZE_READERS[actual](data)
    if header is None or header[0] <= 0 or header[1] <= 0:
        raise NotAnImage(f"no valid {actual} header")
    width, height, channels, sample_bytes, progressive = header
    if limits.max_pixels is not None and width * height > limits.max_pixels:
        raise TooLarge(f"{width}x{height} pixels is over the limit of {limits.max_pixels}")
    info = ImageInfo(actual, width, height, channels, sample_bytes, progressive)
    cost = decode_cost(info)
    if limits.max_decode_bytes is not None and cost > limits.max_decode_bytes:
        raise TooLarge(
            f"{width}x{height} pixels x {channels} channels x {sample_bytes} bytes would take {cost} bytes "
            f"to check, over the limit of {limits.max_decode_bytes}"
        )
    return info


def verify_image(data: bytes | bytearray, declared_mime: str, limits: PhotoLimits) -> ImageInfo:
    """:func:`inspect_image`, then a full decode with OpenCV. Blocking."""
    import cv2  # imported here: the pure protocol modules must not need it
    import numpy as np

    info = inspect_image(data, declared_mime, limits)
    buf = np.frombuffer(data, dtype=np.uint8)
    scale = _scale(info)
    if scale == 8:
        # libjpeg's 1/8 scaling still entropy-decodes every block (so a broken
        # stream fails the same way) but skips most of the IDCT and colour
        # conversion: about 40% less CPU for a 2 MB photo, 1/64 of the memory.
        flags = cv2.IMREAD_REDUCED_GRAYSCALE_8
    else:
        # Reduced modes decode PNG/WebP in full anyway; 8-bit grey is the
        # smallest output (libpng strips 16-bit samples and alpha per row).
        flags = cv2.IMREAD_GRAYSCALE
    # EXIF orientation would swap width and height; we check the stored frame.
    flags |= cv2.IMREAD_IGNORE_ORIENTATION
    with _decode_slots:
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
