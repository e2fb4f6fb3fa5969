"""Photos: a data-channel transfer (not audio/video), in both directions.

Photos arrive over the ``photos`` data channel or ``POST /api/photos`` (the
HTTP adapter is ``webapp.photo_upload``), and a bot can send photos back on
the same channel. One module per idea; this one gathers the public names::

    errors    PhotoError tree: stable wire codes + HTTP status hints
    protocol  wire messages, limits, quota, PhotoAssembler (pure, sans-I/O)
    image     signature / dimensions check (pure) + OpenCV decode check
    store     PhotoStore: verify off the loop, write atomically, manifest entry
    channel   attach_photo_channel: PhotoAssembler on an aiortc RTCDataChannel

What the rest of the server calls, per call::

    store = PhotoStore(call_dir, limits=PhotoLimits(...), on_saved=add_to_manifest)

    @pc.on("datachannel")
    def on_datachannel(channel):
        if channel.label == PHOTOS_LABEL:
            photo_channels.append(attach_photo_channel(channel, store))

    # route:  POST /api/photos  ->  await webapp.photo_upload.handle_photo_upload(request, store)
    # teardown:  await photo_channel.wait_closed()  (after pc.close())
"""

from __future__ import annotations

from photos.channel import PHOTOS_LABEL, PhotoChannel, attach_photo_channel
from photos.errors import (
    ERROR_CODES,
    BadMessage,
    Busy,
    ChunkTooLarge,
    HashMismatch,
    IdMismatch,
    Interrupted,
    MimeMismatch,
    NotAnImage,
    PeerError,
    PhotoError,
    ServerError,
    SizeMismatch,
    StorageFailed,
    DiskFull,
    TooLarge,
    TooManyChunks,
    TooManyPhotos,
    TimedOut,
    UnexpectedChunk,
    UnexpectedEnd,
    UnknownMime,
)
from photos.image import ImageInfo, inspect_image, verify_image
from photos.protocol import (
    MIME_TYPES,
    MessageRejected,
    PhotoAssembler,
    PhotoBegin,
    PhotoChunk,
    PhotoComplete,
    PhotoEnd,
    PhotoFailed,
    PhotoLimits,
    PhotoQuota,
    PhotoSlot,
    State,
    error_reply,
    parse_message,
    saved_reply,
)
from photos.store import PhotoStore, clean_name
from photos import errors as _errors

__all__ = [
    "PHOTOS_LABEL",
    "MIME_TYPES",
    *_errors.__all__,  # the whole error tree, ERROR_CODES included
    "PhotoLimits",
    "PhotoQuota",
    "PhotoSlot",
    "PhotoAssembler",
    "State",
    "PhotoBegin",
    "PhotoEnd",
    "PhotoChunk",
    "PhotoComplete",
    "PhotoFailed",
    "MessageRejected",
    "parse_message",
    "saved_reply",
    "error_reply",
    "ImageInfo",
    "inspect_image",
    "verify_image",
    "PhotoStore",
    "clean_name",
    "PhotoChannel",
    "attach_photo_channel",
]
