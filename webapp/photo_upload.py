"""``POST /api/photos``: the data channel's photo checks, over HTTP.

Request (what a page sends with ``fetch``)::

    POST /api/photos?name=IMG_2041.jpg&id=p7&sha256=<64 lowercase hex>
    Content-Type: image/jpeg            (or image/png, image/webp)
    Content-Length: 2097152             (optional; chunked bodies are fine)

    <the image bytes, as they are>

    fetch("/api/photos?" + new URLSearchParams({name: file.name, id, sha256}),
          {method: "POST", headers: {"Content-Type": file.type}, body: file})

Query parameters, all optional: ``name`` (kept in the manifest only, default
empty), ``id`` (echoed back, *as a string*, so the page can match the reply to
the photo it also sent over its own data channel; default null), ``sha256``
(checked if given). Content-Type parameters (``; charset=...``) are ignored.

Response: the same JSON as on the data channel, ``photo-saved`` with HTTP 200
or ``photo-error`` with the error's 4xx/5xx status (see ``photos_errors``).
The body is streamed and never read past ``max_bytes + 1`` bytes; a
Content-Length over the limit is refused before any of the body is read.
"""

from __future__ import annotations

import hashlib
import logging

from aiohttp import web

from photos.errors import BadMessage, HashMismatch, PhotoError, TooLarge, UnknownMime
from photos.protocol import (
    MIME_TYPES,
    PhotoComplete,
    PhotoId,
    error_reply,
    saved_reply,
    validate_id,
    validate_sha256,
)
from photos.store import PhotoStore

__all__ = ["handle_photo_upload"]

logger = logging.getLogger(__name__)

_READ_SIZE = 1 << 16


async def handle_photo_upload(request: web.Request, store: PhotoStore) -> web.Response:
    """Check and save one uploaded photo into ``store``; see the module docstring."""
    photo_id: PhotoId | None = None
    try:
        raw_id = request.query.get("id")
        if raw_id is not None:
            photo_id = validate_id(raw_id, store.limits)
        photo = await _receive(request, store, photo_id)
        entry = await store.save(photo, source="http")
    except PhotoError as exc:
        logger.info("photos %s: upload %r: %s", store.directory.call_id, photo_id, exc.code)
        response = web.json_response(error_reply(photo_id, exc), status=exc.http_status)
        if isinstance(exc, TooLarge):
            # The rest of the body is not wanted; do not keep the connection.
            response.force_close()
        return response
    return web.json_response(saved_reply(photo_id, entry["size"], entry["sha256"]))


async def _receive(request: web.Request, store: PhotoStore, photo_id: PhotoId | None) -> PhotoComplete:
    limits = store.limits
    mime = request.content_type.lower()
    if mime not in MIME_TYPES:
        raise UnknownMime(f"Content-Type: must be one of {', '.join(MIME_TYPES)}")
    name = request.query.get("name", "")
    declared_sha256 = request.query.get("sha256")
    if declared_sha256 is not None:
        validate_sha256(declared_sha256)
    limit = limits.max_bytes
    length = request.content_length
    if limit is not None and length is not None and length > limit:
        raise TooLarge(f"Content-Length: {length} bytes is over the limit of {limit}")

    slot = store.quota.reserve()
    try:
        data = bytearray()
        hasher = hashlib.sha256()
        while True:
            want = _READ_SIZE if limit is None else min(_READ_SIZE, limit + 1 - len(data))
            block = await request.content.read(want)
            if not block:
                break
            data += block
            hasher.update(block)
            if limit is not None and len(data) > limit:
                raise TooLarge(f"the body is over the limit of {limit} bytes")
        if not data:
            raise BadMessage("the body is empty")
        sha256 = hasher.hexdigest()
        if declared_sha256 is not None and sha256 != declared_sha256:
            raise HashMismatch("the body does not match the sha256 parameter")
    except BaseException:
        slot.release()
        raise
    return PhotoComplete(photo_id, name, mime, data, sha256, slot)
