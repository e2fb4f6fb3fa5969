"""``POST /api/photos``: a server copy of a photo shared in a browser-to-browser
call (the page sends it to its peer over its own data channel, and here).

Who uploads:

* with token auth, the token's user (``Authorization: Bearer``);
* without it, ``?user=U`` together with the ``uploadToken`` U's login reply
  carried, in an ``X-Upload-Token`` header (or ``upload_token`` parameter),
  and U must be online. Without the upload token the old form (``?user=U``
  alone) is accepted from loopback clients only, where anyone able to send
  it could log in as U anyway.

``peer`` names the other side of the call. Uploads from one user to one peer
go into one directory under ``data/calls/`` whose ``meta.json`` has
``"kind": "peer-to-peer"``, so they are listed beside bot calls; it is
created only once a photo has passed every check. The request format and
the replies are those of :mod:`webapp.photo_upload`; uploads are bounded per
user and in total (``--max-uploads-per-user``, ``--max-uploads``).
"""

from __future__ import annotations

import asyncio
import json
import logging

from aiohttp import web

from photos.errors import PhotoError
from photos.image import verify_image
from signaling.protocol import is_valid_username
from media import metrics
from webapp.access import authorize, is_local_client
from webapp.keys import CONFIG, REGISTRY, SHARED_PHOTOS, UPLOAD_TOKENS
from webapp.photo_upload import UploadTimeouts, error_response, photo_id_of, receive_upload

logger = logging.getLogger(__name__)


def _error(status: int, code: str, message: str) -> web.Response:
    body = {"type": "photo-error", "id": None, "error": code, "message": message}
    return web.Response(status=status, text=json.dumps(body), content_type="application/json")


async def upload_photo(request: web.Request) -> web.Response:
    config = request.app[CONFIG]
    claims = authorize(request, config)
    user = claims.username if claims else request.query.get("user", "")
    peer = request.query.get("peer", "")
    if not is_valid_username(user) or not is_valid_username(peer):
        return _error(400, "bad-message", "user and peer must be valid usernames")
    if claims is None:
        token = request.headers.get("X-Upload-Token") or request.query.get("upload_token")
        if token is not None:
            if not request.app[UPLOAD_TOKENS].verify(user, token):
                return _error(403, "bad-upload-token", "the upload token is not the one this user's login got")
        elif not is_local_client(request):
            return _error(403, "upload-token-required", "send the login reply's uploadToken in X-Upload-Token")
        if user not in await request.app[REGISTRY].users():
            return _error(403, "not-online", "the uploading user must be logged in")

    shared = request.app[SHARED_PHOTOS]
    slots = shared.slots_for(config)
    photo_id = None
    try:
        photo_id = photo_id_of(request, config.photo_limits())
        slots.acquire(user)
    except PhotoError as exc:
        metrics.photo_refused(exc.code)
        return error_response(photo_id, exc)
    try:
        limits = config.photo_limits()
        quota = shared.quota_for(config, user, peer)
        timeouts = UploadTimeouts(idle=config.security.idle_timeout, total=config.photos.upload_timeout)
        photo = await receive_upload(request, limits, quota, config.data_dir / "uploads", photo_id,
                                     timeouts=timeouts)
        loop = asyncio.get_running_loop()
        try:
            # Checked before a directory exists for it: refused photos leave nothing.
            info = await loop.run_in_executor(None, verify_image, photo.data, photo.mime, limits)
            store = await shared.store_for(config, user, peer)
        except BaseException:
            photo.slot.release()
            raise
        entry = await store.save(photo, source="http", info=info)
    except PhotoError as exc:
        logger.info("photos: upload %r from %s for %s: %s", photo_id, user, peer, exc.code)
        metrics.photo_refused(exc.code)
        return error_response(photo_id, exc)
    finally:
        slots.release(user)
        shared.drop_idle_quota(user, peer)
    metrics.photo_saved("http")
    return web.json_response({"type": "photo-saved", "id": photo_id, "size": entry["size"], "sha256": entry["sha256"]})
