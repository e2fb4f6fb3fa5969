"""WHIP (RFC 9725): publishers send WebRTC straight into the recorder.

    OPTIONS /whip         204; ICE servers as Link headers (section 4.6), CORS
    POST    /whip         application/sdp offer -> 201 Created, the answer
                          (application/sdp), Location /whip/<id>, ETag
    PATCH   /whip/<id>    application/trickle-ice-sdpfrag (RFC 8840): trickled
                          candidates and end of candidates -> 204
    DELETE  /whip/<id>    -> 200 once the session ended and its recording and
                          manifest are final
    OPTIONS /whip/<id>    CORS preflight for browser publishers

A session is a bot call without signaling (``BotRuntime.start_whip``): the
same call directory, recording, sampled frames, manifest (``"source": "whip"``
and ``publisher``), bot hooks and ``--max-calls``. Errors are JSON
``{"error": CODE, "message": TEXT}``:

====  =====================================================================
400   a body that is not an SDP offer with audio or video, a bad fragment
401   no valid token while ``--auth-secret`` is set (``webapp.access``)
403   the bot refused the call (``RefuseCall``; ``error`` is its code), or a
      browser origin ``--allowed-origin`` does not admit
404   an unknown resource, or one of another publisher
412   a PATCH whose If-Match is not the session's ETag (section 4.3.1)
413   an offer over 64 KiB or a fragment over 16 KiB
415   another Content-Type (with Accept-Post / Accept-Patch)
422   a PATCH that restarts ICE (not supported; section 4.3.1)
503   over ``--max-calls``, low disk, shutting down: with Retry-After
====  =====================================================================

The helpers at the top (CORS, bounded bodies, trickle fragments, Link headers)
serve WHEP too (``webapp.whep``).
"""

from __future__ import annotations

import json
import logging
from typing import Awaitable, Callable

from aiohttp import web

from peer.api import RefuseCall
from peer.call import BadOffer, check_offer
from peer.ice import client_ice_servers
from peer.sdp import CandidateError, parse_candidate
from peer.sdpfrag import SdpFrag, SdpFragError, parse_sdpfrag
from peer.whip import ANONYMOUS, SessionRefused, WhipSession, clean_text, offer_software
from signaling.protocol import IceCandidate
from webapp.access import authorize, check_origin
from webapp.auth import TokenClaims
from webapp.config import Config
from webapp.keys import BOT, CONFIG

logger = logging.getLogger(__name__)

SDP = "application/sdp"
SDPFRAG = "application/trickle-ice-sdpfrag"
#: A browser's offer with every codec it has is about 10 KB.
MAX_SDP_BYTES = 64 * 1024
MAX_SDPFRAG_BYTES = 16 * 1024
#: HTTP status for each refusal code (SessionRefused, RefuseCall).
STATUS = {
    "too-many-calls": 503,
    "too-many-viewers": 503,
    "shutting-down": 503,
    "disk-full": 503,
    "storage-unavailable": 503,
    "bot-error": 500,
    "no-media-yet": 409,
    "codec-not-accepted": 406,
}
#: Response headers a browser client must be able to read (CORS).
_EXPOSED = "Location, ETag, Link, Accept-Post, Accept-Patch, Retry-After"

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


# -- shared with WHEP -------------------------------------------------------------


def http_error(status: int, code: str, message: str, headers: dict[str, str] | None = None) -> web.HTTPException:
    """A JSON error response to raise."""
    exc = web.HTTPException(headers=headers, text=json.dumps({"error": code, "message": message}),
                            content_type="application/json")
    exc.set_status(status)
    return exc


def refused(exc: SessionRefused | RefuseCall) -> web.HTTPException:
    if isinstance(exc, RefuseCall):
        return http_error(403, exc.code, exc.message)
    headers = {"Retry-After": str(exc.retry_after)} if exc.retry_after is not None else None
    return http_error(STATUS.get(exc.code, 503), exc.code, exc.message, headers)


def with_cors(methods: str) -> Callable[[Handler], Handler]:
    """CORS (Fetch standard) for browser clients on origins the server admits.

    ``--allowed-origin`` decides, as for the WebSocket (``check_origin``): a
    request from another origin is refused with 403, and a preflight from
    one gets no CORS headers, so the browser stops it. Requests without
    ``Origin`` (FFmpeg, GStreamer, OBS) are not browsers and pass.
    """

    def decorate(handler: Handler) -> Handler:
        async def wrapped(request: web.Request) -> web.StreamResponse:
            headers: dict[str, str] = {}
            origin = request.headers.get("Origin")
            if origin is not None:
                check_origin(request, request.app[CONFIG])
                headers = {"Access-Control-Allow-Origin": origin, "Vary": "Origin",
                           "Access-Control-Expose-Headers": _EXPOSED}
                if request.method == "OPTIONS" and "Access-Control-Request-Method" in request.headers:
                    headers.update({
                        "Access-Control-Allow-Methods": methods,
                        "Access-Control-Allow-Headers": "Authorization, Content-Type, If-Match",
                        "Access-Control-Max-Age": "600",
                    })
            try:
                response = await handler(request)
            except web.HTTPException as exc:
                exc.headers.update(headers)
                raise
            response.headers.update(headers)
            return response

        wrapped.__name__ = handler.__name__
        wrapped.__doc__ = handler.__doc__
        return wrapped

    return decorate


async def read_body(request: web.Request, content_type: str, limit: int, *, accept: str) -> str:
    """The request body as text: 415 for another type, 413 over ``limit``
    (whatever Content-Length says), 400 if it is not UTF-8."""
    if request.content_type != content_type:
        raise http_error(415, "unsupported-media-type", f"the body must be {content_type}", {accept: content_type})
    if request.content_length is not None and request.content_length > limit:
        raise http_error(413, "too-large", f"the body is over {limit} bytes")
    body = bytearray()
    async for chunk in request.content.iter_any():
        body += chunk
        if len(body) > limit:
            raise http_error(413, "too-large", f"the body is over {limit} bytes")
    try:
        return body.decode("utf-8")
    except UnicodeDecodeError:
        raise http_error(400, "bad-offer", "the body is not UTF-8") from None


def check_sdp_offer(offer: str) -> None:
    """400 unless ``offer`` parses and has audio or video (RFC 9725 section 4.2)."""
    try:
        kinds, _ = check_offer(offer)
    except BadOffer as exc:
        raise http_error(400, "bad-offer", str(exc)) from None
    if not kinds & {"audio", "video"}:
        raise http_error(400, "bad-offer", "the offer has no audio or video section")


def check_if_match(request: web.Request, etag: str) -> None:
    """412 when If-Match names another entity tag (RFC 9725 section 4.3.1,
    RFC 9110 section 13.1.1); no If-Match is accepted, as most clients send none."""
    header = request.headers.get("If-Match")
    if header is None:
        return
    tags = [t.strip() for t in header.split(",")]
    if "*" not in tags and etag not in tags:
        raise http_error(412, "precondition-failed", "If-Match does not name this session's ETag")


def trickle_candidates(text: str, ice_ufrag: str | None) -> tuple[list[IceCandidate], bool]:
    """The candidates of a trickle fragment, each checked, and whether it ends
    them. 400 for a bad fragment or candidate, 422 for an ICE restart."""
    try:
        frag: SdpFrag = parse_sdpfrag(text)
    except SdpFragError as exc:
        raise http_error(400, "bad-fragment", str(exc)) from None
    if frag.ice_ufrag is not None and ice_ufrag is not None and frag.ice_ufrag != ice_ufrag:
        # New credentials are an ICE restart (RFC 9725 section 4.3.2), which
        # aiortc cannot do; 422 is what section 4.3.1 asks for then.
        raise http_error(422, "ice-restart-unsupported", "ICE restarts are not supported; publish again")
    out = []
    for candidate in frag.candidates:
        init = IceCandidate(candidate.candidate, candidate.sdp_mid, candidate.sdp_mline_index)
        try:
            parse_candidate(init)
        except CandidateError as exc:
            raise http_error(400, "bad-candidate", str(exc)) from None
        out.append(init)
    return out, frag.end_of_candidates


def ice_server_links(config: Config, username: str | None) -> list[str]:
    """The ICE servers as RFC 9725 section 4.6 Link headers, with TURN
    credentials minted for ``username`` (as for the page)."""
    links = []
    for server in client_ice_servers(config.ice, config.turn, username):
        urls = server["urls"] if isinstance(server["urls"], list) else [server["urls"]]
        for url in urls:
            link = f'<{url}>; rel="ice-server"'
            if "username" in server:
                link += (f'; username="{_quoted(server["username"])}"; '
                         f'credential="{_quoted(server.get("credential", ""))}"; credential-type="password"')
            links.append(link)
    return links


def _quoted(value: str) -> str:
    # RFC 9110 section 5.6.4 quoted-string.
    return str(value).replace("\\", "\\\\").replace('"', '\\"')


def add_links(response: web.StreamResponse, links: list[str]) -> None:
    for link in links:
        response.headers.add("Link", link)


def session_created(answer: str, location: str, etag: str, config: Config,
                    claims: TokenClaims | None) -> web.Response:
    """201 Created for a WHIP or WHEP offer: the SDP answer, the session's
    URL and ETag, and the ICE servers as Link headers (RFC 9725 section 4.2)."""
    response = web.Response(
        status=201,
        body=answer.encode(),
        content_type=SDP,
        headers={"Location": location, "ETag": etag, "Accept-Patch": SDPFRAG},
    )
    add_links(response, ice_server_links(config, claims.username if claims else None))
    return response


def may_use(claims: TokenClaims | None, owner: str) -> bool:
    """With auth on, a resource is its owner's (or an admin's); without, the
    unguessable resource id is the only key."""
    return claims is None or claims.admin or claims.username == owner


# -- WHIP ---------------------------------------------------------------------------


def _resource(request: web.Request, claims: TokenClaims | None) -> WhipSession:
    resource = request.app[BOT].whip.get(request.match_info["resource_id"])
    if resource is None or resource.session.ending or not may_use(claims, resource.publisher):
        # 404 for another publisher's too: whether it exists is not told.
        raise http_error(404, "not-found", "no such WHIP session")
    return resource


@with_cors("OPTIONS, POST")
async def whip_options(request: web.Request) -> web.Response:
    config = request.app[CONFIG]
    response = web.Response(status=204, headers={"Allow": "OPTIONS, POST", "Accept-Post": SDP})
    # A CORS preflight carries no credentials, so with auth on the ICE
    # servers (and fresh TURN credentials) go only to a request with a token.
    claims = None
    if config.security.auth_secret is not None:
        if "Access-Control-Request-Method" in request.headers or not request.headers.get("Authorization"):
            return response
        claims = authorize(request, config)
    add_links(response, ice_server_links(config, claims.username if claims else None))
    return response


@with_cors("OPTIONS, POST")
async def whip_post(request: web.Request) -> web.Response:
    config = request.app[CONFIG]
    claims = authorize(request, config)
    offer = await read_body(request, SDP, MAX_SDP_BYTES, accept="Accept-Post")
    check_sdp_offer(offer)
    publisher = claims.username if claims is not None else ANONYMOUS
    details = {
        "address": clean_text(request.remote),
        "user_agent": clean_text(request.headers.get("User-Agent")),
        "software": offer_software(offer),
    }
    try:
        resource, answer = await request.app[BOT].start_whip(offer, publisher, details)
    except BadOffer as exc:
        raise http_error(400, "bad-offer", str(exc)) from None
    except (SessionRefused, RefuseCall) as exc:
        logger.info("WHIP offer from %s (%s) refused: %s", publisher, request.remote, exc)
        raise refused(exc) from None
    return session_created(answer, f"/whip/{resource.id}", resource.etag, config, claims)


@with_cors("OPTIONS, PATCH, DELETE")
async def whip_resource_options(request: web.Request) -> web.Response:
    return web.Response(status=204, headers={"Allow": "OPTIONS, PATCH, DELETE", "Accept-Patch": SDPFRAG})


@with_cors("OPTIONS, PATCH, DELETE")
async def whip_patch(request: web.Request) -> web.Response:
    claims = authorize(request, request.app[CONFIG])
    resource = _resource(request, claims)
    text = await read_body(request, SDPFRAG, MAX_SDPFRAG_BYTES, accept="Accept-Patch")
    check_if_match(request, resource.etag)
    candidates, end = trickle_candidates(text, resource.ice_ufrag)
    for candidate in candidates:
        resource.session.add_candidate(candidate)
    if end:
        resource.session.add_candidate(None)
    return web.Response(status=204)


@with_cors("OPTIONS, PATCH, DELETE")
async def whip_delete(request: web.Request) -> web.Response:
    claims = authorize(request, request.app[CONFIG])
    resource = _resource(request, claims)
    # The publisher hung up: "caller-closed" for the bot and the manifest.
    await resource.session.end("caller-closed")
    return web.Response(status=200)


def add_whip_routes(app: web.Application) -> None:
    app.router.add_route("OPTIONS", "/whip", whip_options)
    app.router.add_post("/whip", whip_post)
    app.router.add_route("OPTIONS", "/whip/{resource_id}", whip_resource_options)
    app.router.add_patch("/whip/{resource_id}", whip_patch)
    app.router.add_delete("/whip/{resource_id}", whip_delete)
