"""``GET /ws``: the WebSocket adapter. It only moves frames; the rules live in
``signaling``."""

from __future__ import annotations

import logging

from aiohttp import WSMsgType, web

from signaling.hub import CLOSE_UNSUPPORTED_DATA
from webapp import metrics
from webapp.access import authorize, check_origin
from webapp.keys import ADDRESS_LIMITER, CONFIG, HUB, WEBSOCKETS

logger = logging.getLogger(__name__)


async def websocket_handler(request: web.Request) -> web.WebSocketResponse:
    config = request.app[CONFIG]
    check_origin(request, config)
    claims = authorize(request, config)
    address = request.remote or "?"
    limiter = request.app[ADDRESS_LIMITER]
    limiter.acquire(address)
    try:
        return await _serve(request, claims.username if claims else None)
    finally:
        limiter.release(address)


async def _serve(request: web.Request, allowed_username: str | None) -> web.WebSocketResponse:
    config = request.app[CONFIG]
    # heartbeat: aiohttp pings every `heartbeat` seconds and closes the socket
    # when no pong comes back within half of that, so a client that vanished
    # without a close is gone within 1.5 heartbeats.
    # max_msg_size: aiohttp closes with 1009 (MESSAGE_TOO_BIG) past it.
    ws = web.WebSocketResponse(
        heartbeat=config.heartbeat,
        max_msg_size=config.max_message_size,
    )
    await ws.prepare(request)
    request.app[WEBSOCKETS].add(ws)

    async def close(code: int, reason: str) -> None:
        await ws.close(code=code, message=reason.encode()[:120])

    conn = request.app[HUB].connect(
        metrics.counting_send(ws.send_str), close, peer=request.remote or "?", allowed_username=allowed_username
    )
    try:
        async for msg in ws:
            if msg.type is WSMsgType.TEXT:
                metrics.ws_message_in()
                await conn.handle_text(msg.data)
            elif msg.type is WSMsgType.BINARY:
                # The protocol is JSON text only (RFC 6455 section 7.4.1: 1003).
                await conn.close(CLOSE_UNSUPPORTED_DATA, "binary frames are not accepted")
                break
            elif msg.type is WSMsgType.ERROR:
                logger.info("conn #%d: websocket error: %s", conn.id, ws.exception())
                break
    finally:
        await conn.disconnected()
        request.app[WEBSOCKETS].discard(ws)
    return ws
