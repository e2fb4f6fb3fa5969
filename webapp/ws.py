"""The WebSocket adapter (``GET /ws``, and ``GET /`` with an upgrade). It
only moves frames; the rules live in ``signaling``.

Sending: :class:`WebSocketOutlet` writes each server frame straight to the
transport while its buffer is under ``TRANSPORT_HIGH_WATER`` (one
``transport.write`` of an unmasked text frame, RFC 6455 section 5.2), and
leaves the rest to aiohttp's ``send_frame``, which waits for the transport to
drain. With permessage-deflate negotiated (``--ws-compression``), every frame
goes through aiohttp, which compresses it.
"""

from __future__ import annotations

import asyncio
import logging
import struct

from aiohttp import WSMsgType, web
from aiohttp.http_websocket import WebSocketError

from media import metrics
from signaling.hub import CLOSE_NORMAL, CLOSE_UNSUPPORTED_DATA, TRANSPORT_HIGH_WATER
from webapp.access import authorize, check_origin
from webapp.keys import ADDRESS_LIMITER, CONFIG, HUB, WEBSOCKETS

logger = logging.getLogger(__name__)

_FIN_TEXT = 0x81  # FIN bit and opcode 0x1 (text), RFC 6455 section 5.2
_LEN16 = struct.Struct("!BBH")
_LEN64 = struct.Struct("!BBQ")


def text_frame_header(length: int) -> bytes:
    """The header of an unmasked, unfragmented text frame (server to client)."""
    if length < 126:
        return bytes((_FIN_TEXT, length))
    if length < 65536:
        return _LEN16.pack(_FIN_TEXT, 126, length)
    return _LEN64.pack(_FIN_TEXT, 127, length)


def is_websocket_upgrade(request: web.Request) -> bool:
    return request.headers.get("Upgrade", "").lower() == "websocket"


class WebSocketOutlet:
    """A connection's frames onto one aiohttp WebSocket."""

    def __init__(self, ws: web.WebSocketResponse, transport: asyncio.Transport | None) -> None:
        self._ws = ws
        # Frames are written straight to the transport only when they need
        # no compression: with permessage-deflate, aiohttp compresses.
        self._transport = transport if not ws.compress else None
        self._any_transport = transport

    def write_now(self, data: bytes) -> bool:
        transport = self._transport
        if transport is None or self._ws.closed or transport.is_closing():
            return False
        length = len(data)
        if transport.get_write_buffer_size() + length > TRANSPORT_HIGH_WATER:
            return False
        # The header inline (text_frame_header): this runs once per message.
        header = bytes((_FIN_TEXT, length)) if length < 126 else text_frame_header(length)
        transport.write(header + data)
        metrics.ws_message_out(data)
        return True

    async def send(self, data: bytes) -> None:
        await self._ws.send_frame(data, WSMsgType.TEXT)
        metrics.ws_message_out(data)

    def buffered(self) -> int:
        transport = self._any_transport
        return transport.get_write_buffer_size() if transport is not None else 0

    async def close(self, code: int, reason: str) -> None:
        await self._ws.close(code=code, message=reason.encode()[:120])

    def abort(self, code: int, reason: str) -> None:
        transport = self._any_transport
        if transport is None or transport.is_closing():
            return
        # Close frame (RFC 6455 section 5.5.1): 2-byte code, then the reason.
        payload = code.to_bytes(2, "big") + reason.encode()[:120]
        transport.write(bytes((0x88, len(payload))) + payload)
        transport.abort()

    def ping(self) -> None:
        transport = self._any_transport
        if transport is not None and not transport.is_closing():
            # A control frame is never compressed (RFC 7692 section 6.1), so
            # it may go straight to the transport whatever was negotiated.
            transport.write(b"\x89\x00")

    def lost(self) -> None:
        transport = self._any_transport
        if transport is not None:
            transport.abort()


async def websocket_handler(request: web.Request) -> web.WebSocketResponse:
    config = request.app[CONFIG]
    check_origin(request, config)
    claims = authorize(request, config)
    address = request.remote or "?"
    limiter = request.app[ADDRESS_LIMITER]
    limiter.acquire(address)
    try:
        return await _serve(
            request,
            claims.username if claims else None,
            claims.expires if claims else None,
        )
    finally:
        limiter.release(address)


async def _serve(request: web.Request, allowed_username: str | None, expires_at: float | None) -> web.WebSocketResponse:
    config = request.app[CONFIG]
    # Heartbeat: the hub pings a connection silent for `heartbeat` seconds
    # and drops it when nothing (no pong) comes back within half of that, so
    # a client that vanished without a close is gone within 1.5 to 2
    # heartbeats. aiohttp's own heartbeat is off (it re-arms a timer for
    # every chunk read), and so is its autoping: pings are answered here.
    # max_msg_size: aiohttp closes with 1009 (MESSAGE_TOO_BIG) past it.
    # compress: permessage-deflate (RFC 7692) only with --ws-compression; it
    # costs more CPU than it saves bytes on small JSON frames (see README).
    ws = web.WebSocketResponse(
        heartbeat=None,
        autoping=False,
        max_msg_size=config.max_message_size,
        compress=config.ws_compression,
    )
    await ws.prepare(request)
    request.app[WEBSOCKETS].add(ws)
    conn = request.app[HUB].connect(
        WebSocketOutlet(ws, request.transport), peer=request.remote or "?",
        allowed_username=allowed_username, expires_at=expires_at,
    )
    # goodbye: the client closed with 1000, a deliberate end; any other end
    # (no close frame, a heartbeat timeout, 1001 on a page reload) may be
    # resumed within the grace period.
    goodbye = False
    try:
        while True:
            msg = await ws.receive()
            kind = msg.type
            if kind is WSMsgType.TEXT:
                metrics.ws_message_in()
                pending = conn.handle_text(msg.data)
                if pending is not None:
                    await pending
            elif kind is WSMsgType.PONG:
                conn.alive()
            elif kind is WSMsgType.PING:
                conn.alive()
                await ws.pong(msg.data)  # RFC 6455 section 5.5.3: the same payload
            elif kind is WSMsgType.BINARY:
                # The protocol is JSON text only (RFC 6455 section 7.4.1: 1003).
                await conn.close(CLOSE_UNSUPPORTED_DATA, "binary frames are not accepted")
                break
            elif kind is WSMsgType.CLOSE:
                goodbye = msg.data == CLOSE_NORMAL
                break
            elif kind is WSMsgType.ERROR:
                exc = ws.exception()
                logger.info("conn #%d: websocket error: %s", conn.id, exc)
                # The client broke the protocol (e.g. 1009, a frame too big):
                # aiohttp closed the socket; that is not a connection loss.
                goodbye = isinstance(exc, WebSocketError)
                break
            else:  # CLOSING, CLOSED: closed by us, or the transport is gone
                break
    finally:
        await conn.disconnected(goodbye=goodbye)
        request.app[WEBSOCKETS].discard(ws)
    return ws
