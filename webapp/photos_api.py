"""``POST /api/photos``: a server copy of a photo shared in a browser-to-browser
call (the page sends it to its peer over its own data channel, and here).

Who uploads: with ``--auth-secret``, the token's user; otherwise the ``user``
query parameter, which must name a user online right now. ``peer`` names the
other side of the call. Uploads from one user to one peer go into one
directory under ``data/calls/`` whose ``meta.json`` has ``"kind": "peer-to-peer"``,
so they are listed beside bot calls. The request format and the replies are
those of :func:`webapp.photo_upload.handle_photo_upload`.
"""

from __future__ import annotations

import asyncio
import json
import logging
from typing import Any

from aiohttp import web

from signaling.protocol import is_valid_username
from webapp.access import authorize
from webapp.keys import CONFIG, REGISTRY, SHARED_PHOTOS
from webapp.photo_upload import handle_photo_upload

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
    if claims is None and user not in await request.app[REGISTRY].users():
        return _error(403, "not-online", "the uploading user must be logged in")
    store = await request.app[SHARED_PHOTOS].store_for(config, user, peer)
    return await handle_photo_upload(request, store)
