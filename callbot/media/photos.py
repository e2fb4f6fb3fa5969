"""Photos sent by callers: over the ``photos`` data channel or ``POST /api/photos``.

One module per idea; this one gathers the public names::

    photos_errors    PhotoError tree: stable wire codes + HTTP status hints
    photos_protocol  wire messages, limits, quota, PhotoAssembler (pure, sans-I/O)
    photos_image     signature / dimensions check (pure) + OpenCV decode check
    photos_store     PhotoStore: verify off the loop, write atomically, manifest entry
    photos_channel   attach_photo_channel: PhotoAssembler on an aiortc RTCDataChannel
    photos_http      handle_photo_upload: the same checks for an HTTP body

What the rest of callbot calls, per call::

    store = PhotoStore(call_dir, limits=PhotoLimits(...), on_saved=add_to_manifest)

    @pc.on("datachannel")
    def on_datachannel(channel):
        if channel.label == PHOTOS_LABEL:
            photo_channels.append(attach_photo_channel(channel, store))

    # route:  POST /api/photos  ->  await handle_photo_upload(request, store)
    # teardown:  await photo_channel.wait_closed()  (after pc.close())
"""

from __future__ import annotations

from .photos_channel import PHOTOS_LABEL, PhotoChannel, attach_photo_channel
from .photos_errors import (
    ERROR_CODES,
    BadMessage,
    Busy,
    ChunkTooLarge,
    HashMismatch,
    IdMismatch,
    Interrupted,
    InvalidState,
    MimeMismatch,
    NotAnImage,
    PeerError,
    PhotoError,
    ServerError,
    SizeMismatch,
    StorageFailed,
    TooLarge,
    TooManyChunks,
    TooManyPhotos,
    UnexpectedChunk,
    UnexpectedEnd,
    UnknownMime,
)
from .photos_http import handle_photo_upload
from .photos_image import ImageInfo, inspect_image, verify_image
from .photos_protocol import (
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
from .photos_store import PhotoStore, clean_name
from . import photos_errors as _errors

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
    "handle_photo_upload",
]
