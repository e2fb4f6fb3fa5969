"""Connection-level limits for every HTTP connection, before aiohttp parses a byte.

aiohttp bounds what a connection *sends* (header sizes, body sizes) and,
with ``keepalive_timeout`` (``--idle-timeout``), how long a connection may
wait for its next request after a response (the timer starts when a response
ends, and bytes of an unfinished request do not reset it, so trickled header
lines do not help). Before the first request only recent aiohttp versions
time a connection out, so the guard does it itself: a connection whose first
request head (up to its blank line, RFC 9112 section 2.1) has not arrived
within ``--idle-timeout`` is closed, silent or trickling. A TLS handshake
gets the same time.

What aiohttp does not bound at all is how many connections it holds: with
the process's descriptors used up by sockets that send nothing, ``accept()``
fails and every real request waits. So a connection is refused at once, with
a short 429 and a close, when its address holds ``--max-connections-per-address``
(trusted proxies are exempt; behind them the WebSocket limit counts
forwarded addresses), or with 503 when the server holds ``--max-connections``.

:func:`start_site` wraps aiohttp's protocol factory with the guard; the
server and the tests start sites through it, so the tests see what
production runs.
"""

from __future__ import annotations

import asyncio
import logging
import ssl
from collections import Counter
from typing import Any, Callable

from aiohttp import web

from webapp.access import RedactingAccessLogger
from webapp.config import Config
from webapp.netaddr import in_networks, parse_address, parse_networks

logger = logging.getLogger(__name__)

__all__ = ["ConnectionGuard", "start_site", "make_runner"]

def _refusal(status: bytes) -> bytes:
    body = b'{"error":"too-many-connections"}'
    return (
        b"HTTP/1.1 " + status + b"\r\nConnection: close\r\nContent-Type: application/json\r\n"
        b"Content-Length: " + str(len(body)).encode() + b"\r\n\r\n" + body
    )


#: Refusals: one address holds too many (RFC 6585 section 4), the server does.
_PER_ADDRESS = _refusal(b"429 Too Many Requests")
_TOTAL = _refusal(b"503 Service Unavailable")


class ConnectionGuard:
    """Counts open connections, in total and per address."""

    def __init__(self, *, max_total: int, max_per_address: int, exempt: tuple = (),
                 head_timeout: float | None = None) -> None:
        self.max_total = max_total
        self.head_timeout = head_timeout
        self.max_per_address = max_per_address
        self.exempt = exempt
        self.total = 0
        self.by_address: Counter[str] = Counter()
        #: Connections refused so far (for tests and /metrics).
        self.refused = 0

    def admit(self, address: str) -> bytes | None:
        """None if admitted, else the response to refuse with."""
        if self.total >= self.max_total:
            return _TOTAL
        exempt = in_networks(parse_address(address), self.exempt)
        if not exempt and self.by_address[address] >= self.max_per_address:
            return _PER_ADDRESS
        self.total += 1
        self.by_address[address] += 1
        return None

    def leave(self, address: str) -> None:
        self.total -= 1
        self.by_address[address] -= 1
        if self.by_address[address] <= 0:
            del self.by_address[address]

    def wrap(self, factory: Callable[[], asyncio.Protocol]) -> Callable[[], asyncio.Protocol]:
        return lambda: _GuardedProtocol(self, factory)


class _GuardedProtocol(asyncio.Protocol):
    """Stands between the transport and aiohttp's protocol: admits or refuses
    the connection, and counts it until it is lost."""

    def __init__(self, guard: ConnectionGuard, factory: Callable[[], asyncio.Protocol]) -> None:
        self._guard = guard
        self._factory = factory
        self._inner: Any = None
        self._address: str | None = None
        self._transport: asyncio.BaseTransport | None = None
        self._head_timer: asyncio.TimerHandle | None = None
        self._tail = b""

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        peer = transport.get_extra_info("peername")
        address = str(peer[0]) if isinstance(peer, tuple) and peer else "?"
        refusal = self._guard.admit(address)
        if refusal is not None:
            self._guard.refused += 1
            if self._guard.refused in (1, 10, 100) or self._guard.refused % 1000 == 0:
                logger.warning("refused a connection from %s: %d open in total, %d from it (%d refused so far)",
                               address, self._guard.total, self._guard.by_address.get(address, 0),
                               self._guard.refused)
            try:
                transport.write(refusal)  # type: ignore[attr-defined]
            finally:
                transport.close()
            return
        self._address = address
        self._transport = transport
        if self._guard.head_timeout is not None:
            self._head_timer = asyncio.get_running_loop().call_later(self._guard.head_timeout, self._head_late)
        self._inner = self._factory()
        self._inner.connection_made(transport)

    def _head_late(self) -> None:
        self._head_timer = None
        logger.debug("closing a connection from %s: no request within %.0f s", self._address,
                     self._guard.head_timeout)
        if self._transport is not None:
            self._transport.close()

    def data_received(self, data: bytes) -> None:
        if self._head_timer is not None:
            # The first request's head ends at its first blank line (CRLF,
            # or the bare LF RFC 9112 section 2.2 lets a server accept).
            seen = self._tail + data
            if b"\n\r\n" in seen or b"\n\n" in seen:
                self._head_timer.cancel()
                self._head_timer = None
                self._tail = b""
            else:
                self._tail = seen[-3:]
        if self._inner is not None:
            self._inner.data_received(data)

    def eof_received(self) -> bool | None:
        if self._inner is not None:
            return self._inner.eof_received()
        return None

    def pause_writing(self) -> None:
        if self._inner is not None:
            self._inner.pause_writing()

    def resume_writing(self) -> None:
        if self._inner is not None:
            self._inner.resume_writing()

    def connection_lost(self, exc: Exception | None) -> None:
        if self._head_timer is not None:
            self._head_timer.cancel()
            self._head_timer = None
        self._transport = None
        if self._address is not None:
            self._guard.leave(self._address)
            self._address = None
        if self._inner is not None:
            self._inner.connection_lost(exc)


def make_runner(app: web.Application, config: Config, *, shutdown_timeout: float = 5.0) -> web.AppRunner:
    """aiohttp's runner with our timeouts and access log (see the module docstring)."""
    return web.AppRunner(
        app,
        shutdown_timeout=shutdown_timeout,
        handle_signals=False,
        keepalive_timeout=config.security.idle_timeout,
        access_log_class=RedactingAccessLogger,
    )


class _GuardedSite(web.TCPSite):
    def __init__(self, runner: web.AppRunner, host: str, port: int, guard: ConnectionGuard,
                 ssl_context: ssl.SSLContext | None) -> None:
        super().__init__(runner, host, port, ssl_context=ssl_context, backlog=512)
        self.guard = guard

    async def start(self) -> None:
        await web.BaseSite.start(self)  # registers the site with the runner
        server = self._runner.server
        assert server is not None
        loop = asyncio.get_running_loop()
        extra = {"ssl_handshake_timeout": self.guard.head_timeout} if self._ssl_context and self.guard.head_timeout else {}
        self._server = await loop.create_server(
            self.guard.wrap(server), self._host, self._port, ssl=self._ssl_context, backlog=self._backlog, **extra,
        )


async def start_site(runner: web.AppRunner, config: Config, host: str, port: int,
                     ssl_context: ssl.SSLContext | None = None) -> tuple[ConnectionGuard, int]:
    """Listen on ``host``:``port`` behind a :class:`ConnectionGuard`; returns it and the bound port."""
    sec = config.security
    guard = ConnectionGuard(max_total=sec.max_connections, max_per_address=sec.max_connections_per_address,
                            exempt=parse_networks(sec.trusted_proxies), head_timeout=sec.idle_timeout)
    site = _GuardedSite(runner, host, port, guard, ssl_context)
    await site.start()
    assert site._server is not None and site._server.sockets
    return guard, site._server.sockets[0].getsockname()[1]
