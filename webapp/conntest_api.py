"""``/api/connection-test``: the server side of the page's "Test my connection".

    POST   /api/connection-test       {"sdp": OFFER}  ->  200 {"id": ID, "sdp": ANSWER}
    GET    /api/connection-test/{id}  ->  200 {"state": STATE,
                                               "selected": {"local": TYPE, "remote": TYPE,
                                                            "protocol": PROTO, "rtt": SECONDS} | null}
    DELETE /api/connection-test/{id}  ->  200 {"id": ID, "state": "closed"}

OFFER offers a data channel only, with its candidates gathered (no trickle).
The server's peer echoes every message it receives on any data channel back
verbatim. STATE is the peer's ``connectionState``; TYPE is host, srflx,
prflx or relay; PROTO is udp, or how the server reaches its TURN server
(udp, tcp, tls) when its side is relay; ``rtt`` is seconds (like
``RTCIceCandidatePairStats.currentRoundTripTime``), null until measured.
A test ends on DELETE or by itself after 30 s; then its id gives 404.
At most 4 run at once: 503 ``{"error":"busy"}`` with ``Retry-After``.
Errors: 400 ``bad-request`` (not JSON, no ``sdp``), 400 ``bad-offer``,
413 ``too-large``, 503 ``ports-exhausted``, 404 ``no-such-test``; auth as
every ``/api`` route (``webapp.access.authorize``). Nothing is written to disk.
"""

from __future__ import annotations

import json
import logging
from typing import Any, AsyncIterator

from aiohttp import web

from peer.call import BadOffer
from peer.compat import PortsExhausted
from peer.conntest import ConnectionTests, TestsBusy
from webapp.access import authorize
from webapp.keys import CONFIG, CONNECTION_TESTS

logger = logging.getLogger(__name__)

#: Largest request body: an offer with a data channel and its candidates is
#: a few KB; a browser with many interfaces stays well under this.
MAX_BODY = 64 * 1024


def _error(status: type[web.HTTPException], code: str, message: str, **headers: str) -> web.HTTPException:
    return status(text=json.dumps({"error": code, "message": message}), content_type="application/json",
                  headers=headers or None)


def _too_large(size: int) -> web.HTTPException:
    return web.HTTPRequestEntityTooLarge(
        max_size=MAX_BODY, actual_size=size, content_type="application/json",
        text=json.dumps({"error": "too-large", "message": f"the body is over {MAX_BODY} bytes"}))


async def _read_offer(request: web.Request) -> str:
    if request.content_length is not None and request.content_length > MAX_BODY:
        raise _too_large(request.content_length)
    body = b""
    while len(body) <= MAX_BODY:  # never more than this, whatever is declared
        chunk = await request.content.read(MAX_BODY + 1 - len(body))
        if not chunk:
            break
        body += chunk
    if len(body) > MAX_BODY:
        raise _too_large(len(body))
    try:
        data = json.loads(body)
    except (ValueError, UnicodeDecodeError):
        raise _error(web.HTTPBadRequest, "bad-request", "the body is not JSON") from None
    if not isinstance(data, dict) or not isinstance(data.get("sdp"), str) or not data["sdp"].strip():
        raise _error(web.HTTPBadRequest, "bad-request", 'want {"sdp": "<offer>"}')
    return data["sdp"]


async def start_test(request: web.Request) -> web.Response:
    claims = authorize(request, request.app[CONFIG])
    offer = await _read_offer(request)
    tests = request.app[CONNECTION_TESTS]
    try:
        test, answer = await tests.start(offer, claims.username if claims else None)
    except TestsBusy as exc:
        raise _error(web.HTTPServiceUnavailable, "busy", str(exc), **{"Retry-After": str(exc.retry_after)}) from None
    except BadOffer as exc:
        raise _error(web.HTTPBadRequest, "bad-offer", str(exc)) from None
    except PortsExhausted as exc:
        logger.warning("connection test refused: %s", exc)
        raise _error(web.HTTPServiceUnavailable, exc.code, "no free media port; try later",
                     **{"Retry-After": "5"}) from None
    except Exception as exc:  # aiortc refuses odd SDP in assorted ways
        logger.info("connection test: cannot answer: %r", exc)
        raise _error(web.HTTPBadRequest, "bad-offer", f"the offer could not be answered: {exc}") from None
    return web.json_response({"id": test.id, "sdp": answer}, headers={"Cache-Control": "no-store"})


def _find(request: web.Request) -> Any:
    claims = authorize(request, request.app[CONFIG])
    test = request.app[CONNECTION_TESTS].get(
        request.match_info["test_id"], claims.username if claims else None, bool(claims and claims.admin))
    if test is None:
        raise _error(web.HTTPNotFound, "no-such-test", "no such connection test (ended, or never started)")
    return test


async def status_of_test(request: web.Request) -> web.Response:
    return web.json_response(_find(request).status(), headers={"Cache-Control": "no-store"})


async def end_test(request: web.Request) -> web.Response:
    test = _find(request)
    await test.close()
    return web.json_response({"id": test.id, "state": "closed"}, headers={"Cache-Control": "no-store"})


def add_connection_test_routes(app: web.Application) -> None:
    """Adds the routes and the tests' life cycle; call from ``create_app``."""
    config = app[CONFIG]

    async def tests_ctx(app: web.Application) -> AsyncIterator[None]:
        app[CONNECTION_TESTS] = ConnectionTests(config.peer())
        yield
        await app[CONNECTION_TESTS].close()

    app.cleanup_ctx.append(tests_ctx)
    app.router.add_post("/api/connection-test", start_test)
    app.router.add_get("/api/connection-test/{test_id}", status_of_test)
    app.router.add_delete("/api/connection-test/{test_id}", end_test)
