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
or ``photo-error`` with the error's 4xx/5xx status (see ``photos.errors``).

Bounds (issue 14): a Content-Length over the limit is refused before any of
the body is read; the body is streamed to a temporary file (``.upload-*``,
never listed) in 64 KiB reads, never read past ``max_bytes + 1`` bytes, so
an unfinished upload holds a descriptor and a few KiB, not its declared size;
a read that waits longer than ``idle_timeout`` or a body that takes longer
than ``total_timeout`` ends it with ``timeout`` (408). Only a complete body
whose size and hash match is read back into memory, against the process's
photo byte budget, to be checked and saved.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
import os
import tempfile
from dataclasses import dataclass
from pathlib import Path

from aiohttp import web

from photos.errors import BadMessage, DiskFull, HashMismatch, PhotoError, TimedOut, TooLarge, UnknownMime
from photos.protocol import (
    MIME_TYPES,
    PhotoComplete,
    PhotoId,
    PhotoLimits,
    PhotoQuota,
    error_reply,
    saved_reply,
    validate_id,
    validate_sha256,
)
from photos.store import PhotoStore

__all__ = ["UploadTimeouts", "handle_photo_upload", "receive_upload", "error_response"]

logger = logging.getLogger(__name__)

_READ_SIZE = 1 << 16


@dataclass(frozen=True)
class UploadTimeouts:
    #: Seconds one read of the body may wait.
    idle: float = 15.0
    #: Seconds the whole body may take.
    total: float = 120.0


def error_response(photo_id: PhotoId | None, exc: PhotoError) -> web.Response:
    response = web.json_response(error_reply(photo_id, exc), status=exc.http_status)
    if isinstance(exc, (TooLarge, TimedOut, DiskFull)):
        # The rest of the body is not wanted; do not keep the connection.
        response.force_close()
    return response


def photo_id_of(request: web.Request, limits: PhotoLimits) -> PhotoId | None:
    raw_id = request.query.get("id")
    return validate_id(raw_id, limits) if raw_id is not None else None


async def handle_photo_upload(
    request: web.Request, store: PhotoStore, *, timeouts: UploadTimeouts = UploadTimeouts()
) -> web.Response:
    """Check and save one uploaded photo into ``store``; see the module docstring."""
    photo_id: PhotoId | None = None
    try:
        photo_id = photo_id_of(request, store.limits)
        photo = await receive_upload(request, store.limits, store.quota, store.directory.path, photo_id,
                                     timeouts=timeouts)
        entry = await store.save(photo, source="http")
    except PhotoError as exc:
        logger.info("photos %s: upload %r: %s", store.directory.call_id, photo_id, exc.code)
        return error_response(photo_id, exc)
    return web.json_response(saved_reply(photo_id, entry["size"], entry["sha256"]))


def _free_bytes(path: Path) -> int:
    import shutil  # noqa: PLC0415

    return shutil.disk_usage(path).free


async def receive_upload(
    request: web.Request,
    limits: PhotoLimits,
    quota: PhotoQuota,
    spool_dir: Path,
    photo_id: PhotoId | None,
    *,
    timeouts: UploadTimeouts = UploadTimeouts(),
) -> PhotoComplete:
    """The body as a :class:`PhotoComplete` (its slot reserved in ``quota``,
    its bytes held against the budget), or a :class:`PhotoError`."""
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
    floor = limits.min_free_bytes
    if floor is not None:
        spool_dir.mkdir(parents=True, exist_ok=True)
        need = floor + (length if length is not None else (limit or 0))
        if await asyncio.to_thread(_free_bytes, spool_dir) < need:
            raise DiskFull("the server is low on disk space and cannot store photos")

    slot = quota.reserve()
    spool: Path | None = None
    try:
        spool_dir.mkdir(parents=True, exist_ok=True)
        fd, name_on_disk = tempfile.mkstemp(dir=spool_dir, prefix=".upload-")
        spool = Path(name_on_disk)
        hasher = hashlib.sha256()
        size = 0
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeouts.total
        with os.fdopen(fd, "wb") as out:
            while True:
                want = _READ_SIZE if limit is None else min(_READ_SIZE, limit + 1 - size)
                wait = min(timeouts.idle, deadline - loop.time())
                if wait <= 0:
                    raise TimedOut(f"the body did not arrive within {timeouts.total:g} s")
                try:
                    block = await asyncio.wait_for(request.content.read(want), wait)
                except asyncio.TimeoutError:
                    raise TimedOut("the body stalled; send it without pauses") from None
                if not block:
                    break
                size += len(block)
                if limit is not None and size > limit:
                    raise TooLarge(f"the body is over the limit of {limit} bytes")
                hasher.update(block)
                # Small writes to the page cache: cheaper than a thread hop per block.
                out.write(block)
        if size == 0:
            raise BadMessage("the body is empty")
        sha256 = hasher.hexdigest()
        if declared_sha256 is not None and sha256 != declared_sha256:
            raise HashMismatch("the body does not match the sha256 parameter")
        slot.hold(size)  # Busy when the server holds too many photo bytes
        data = await asyncio.to_thread(spool.read_bytes)
    except BaseException:
        slot.release()
        raise
    finally:
        if spool is not None:
            spool.unlink(missing_ok=True)
    return PhotoComplete(photo_id, name, mime, data, sha256, slot)
