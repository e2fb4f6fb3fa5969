"""WHEP: watch a call while it happens.

    POST    /whep/<call id>        application/sdp offer (receive-only) ->
                                   201 Created, the answer, Location
                                   /whep/<call id>/<viewer id>, ETag
    PATCH   /whep/<call id>/<id>   trickled candidates -> 204
    DELETE  /whep/<call id>/<id>   stop viewing -> 200
    OPTIONS on both                CORS preflight

The viewer receives the call's incoming audio and video as the caller sends
them (encoded frames forwarded, never decoded; ``peer.whep``). Who may watch:
with ``--auth-secret``, an admin token or the caller themself; without it,
anyone, as the gallery is readable by anyone. A call that is not live, or
not the requester's, is 404. More viewers than ``--max-viewers`` (in total)
or ``--max-viewers-per-call`` get 503 with Retry-After; a viewer whose offer
accepts none of the call's codecs gets 406. A viewer who comes before the
call's first frame waits for it (up to 5 s, then 409 with Retry-After). The
gallery's summaries say ``"live": true`` and give the ``whep`` URL for calls
in progress (:func:`live_fields`).
"""

from __future__ import annotations

import logging
from typing import Any

from aiohttp import web

from media.storage import is_valid_call_id
from peer.call import BadOffer
from peer.sdp import parse_candidate
from peer.whep import WhepViewer
from peer.whip import ANONYMOUS, SessionRefused
from webapp.access import authorize
from webapp.keys import BOT, CONFIG, VIEWERS
from webapp.whip import (
    MAX_SDP_BYTES,
    MAX_SDPFRAG_BYTES,
    SDP,
    SDPFRAG,
    check_if_match,
    check_sdp_offer,
    http_error,
    may_use,
    read_body,
    refused,
    session_created,
    trickle_candidates,
    with_cors,
)

logger = logging.getLogger(__name__)


def whep_url(call_id: str) -> str:
    return f"/whep/{call_id}"


def live_fields(app: web.Application, call_id: str) -> dict[str, Any]:
    """For a gallery summary: whether the call is in progress here, and
    where to watch it (None when not live or WHEP is off)."""
    runtime = app.get(BOT)
    live = runtime is not None and runtime.live_session(call_id) is not None
    watchable = live and app[CONFIG].bot.max_viewers > 0
    return {"live": live, "whep": whep_url(call_id) if watchable else None}


def _viewer(request: web.Request) -> WhepViewer:
    claims = authorize(request, request.app[CONFIG])
    viewer = request.app[VIEWERS].get(request.match_info["call_id"], request.match_info["viewer_id"])
    if viewer is None or not may_use(claims, viewer.viewer):
        raise http_error(404, "not-found", "no such viewer")
    return viewer


@with_cors("OPTIONS, POST")
async def whep_options(request: web.Request) -> web.Response:
    return web.Response(status=204, headers={"Allow": "OPTIONS, POST", "Accept-Post": SDP})


@with_cors("OPTIONS, POST")
async def whep_post(request: web.Request) -> web.Response:
    config = request.app[CONFIG]
    claims = authorize(request, config)
    call_id = request.match_info["call_id"]
    session = request.app[BOT].live_session(call_id) if is_valid_call_id(call_id) else None
    # The gallery's rule: a call is its caller's and the admins'. 404 rather
    # than 403, so whether another user's call exists is not told either.
    if session is None or not (claims is None or claims.admin or claims.username == session.caller):
        raise http_error(404, "not-found", "no such call in progress")
    offer = await read_body(request, SDP, MAX_SDP_BYTES, accept="Accept-Post")
    check_sdp_offer(offer)
    name = claims.username if claims is not None else ANONYMOUS
    try:
        viewer, answer = await request.app[VIEWERS].start(session, offer, name)
    except BadOffer as exc:
        raise http_error(400, "bad-offer", str(exc)) from None
    except SessionRefused as exc:
        logger.info("viewer %s of call %s refused: %s", name, call_id, exc)
        raise refused(exc) from None
    return session_created(answer, f"/whep/{call_id}/{viewer.id}", viewer.etag, config, claims)


@with_cors("OPTIONS, PATCH, DELETE")
async def whep_viewer_options(request: web.Request) -> web.Response:
    return web.Response(status=204, headers={"Allow": "OPTIONS, PATCH, DELETE", "Accept-Patch": SDPFRAG})


@with_cors("OPTIONS, PATCH, DELETE")
async def whep_patch(request: web.Request) -> web.Response:
    viewer = _viewer(request)
    text = await read_body(request, SDPFRAG, MAX_SDPFRAG_BYTES, accept="Accept-Patch")
    check_if_match(request, viewer.etag)
    candidates, end = trickle_candidates(text, viewer.ice_ufrag)
    for init in candidates:
        try:
            await viewer.add_candidate(parse_candidate(init))
        except Exception as exc:  # aiortc raises assorted errors on odd input
            raise http_error(400, "bad-candidate", f"candidate refused: {exc}") from None
    if end:
        await viewer.add_candidate(None)
    return web.Response(status=204)


@with_cors("OPTIONS, PATCH, DELETE")
async def whep_delete(request: web.Request) -> web.Response:
    viewer = _viewer(request)
    await viewer.end("viewer-closed")
    return web.Response(status=200)


def add_whep_routes(app: web.Application) -> None:
    app.router.add_route("OPTIONS", "/whep/{call_id}", whep_options)
    app.router.add_post("/whep/{call_id}", whep_post)
    app.router.add_route("OPTIONS", "/whep/{call_id}/{viewer_id}", whep_viewer_options)
    app.router.add_patch("/whep/{call_id}/{viewer_id}", whep_patch)
    app.router.add_delete("/whep/{call_id}/{viewer_id}", whep_delete)
