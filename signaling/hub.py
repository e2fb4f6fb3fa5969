"""The asyncio side of signaling: runs sessions' actions against a registry.

Transport-agnostic: a :class:`ClientConnection` is given two coroutines, one
that sends a text frame and one that closes the transport. The aiohttp
WebSocket handler (``callbot.web.ws``) is a thin adapter around it.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import json
import logging
from typing import Any, Awaitable, Callable

from signaling.limits import TokenBucket
from signaling.protocol import error_message, presence_delta, presence_snapshot
from signaling.registry import Registry, RegistryUnavailable
from signaling.rules import (
    Action,
    Claim,
    PresenceBatcher,
    Release,
    Reply,
    Route,
    SendPresence,
    SignalingSession,
    State,
)

logger = logging.getLogger(__name__)

SendText = Callable[[str], Awaitable[None]]
CloseTransport = Callable[[int, str], Awaitable[None]]

#: WebSocket close codes (RFC 6455 section 7.4.1).
CLOSE_GOING_AWAY = 1001
CLOSE_UNSUPPORTED_DATA = 1003
CLOSE_POLICY_VIOLATION = 1008
CLOSE_MESSAGE_TOO_BIG = 1009
CLOSE_TRY_AGAIN_LATER = 1013

_ids = itertools.count(1)


class SignalingHub:
    """All local connections of one server process."""

    def __init__(
        self,
        registry: Registry,
        *,
        reserved: frozenset[str] = frozenset(),
        presence_interval: float = 0.25,
        backlog: int = 256,
        rate_limit: float = 20.0,
        rate_burst: float = 40.0,
        login_extra: Callable[[str], dict[str, Any]] | None = None,
    ) -> None:
        self.registry = registry
        self.reserved = reserved
        self.presence_interval = presence_interval
        self.backlog = backlog
        self.rate_limit = rate_limit
        self.rate_burst = rate_burst
        #: Extra login-reply fields for a user (their ICE servers, for example).
        self.login_extra = login_extra or (lambda username: {})
        self._logged_in: set[ClientConnection] = set()
        self._batcher = PresenceBatcher()
        self._changed = asyncio.Event()
        self._flusher: asyncio.Task[None] | None = None
        registry.subscribe(self._on_presence)

    async def start(self) -> None:
        self._flusher = asyncio.create_task(self._flush_presence(), name="presence-flusher")

    async def close(self) -> None:
        if self._flusher is not None:
            self._flusher.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._flusher
            self._flusher = None

    def connect(
        self, send_text: SendText, close: CloseTransport, *, peer: str = "?", allowed_username: str | None = None
    ) -> ClientConnection:
        return ClientConnection(self, send_text, close, peer=peer, allowed_username=allowed_username)

    @property
    def online_here(self) -> int:
        return len(self._logged_in)

    # -- presence ----------------------------------------------------------------

    def _on_presence(self, username: str, online: bool) -> None:
        (self._batcher.joined if online else self._batcher.left)(username)
        self._changed.set()

    async def _flush_presence(self) -> None:
        """Send one coalesced delta per interval: cost O(clients) per interval,
        however many logins happened in it."""
        while True:
            await self._changed.wait()
            # Let changes accumulate for one interval, then send them together.
            await asyncio.sleep(self.presence_interval)
            self._changed.clear()
            joined, left = self._batcher.drain()
            if not joined and not left:
                continue
            text = json.dumps(presence_delta(joined, left))  # serialised once for all
            for conn in list(self._logged_in):
                conn.enqueue(text)


class ClientConnection:
    """One client: its session, a bounded outbox, and a writer task."""

    def __init__(
        self, hub: SignalingHub, send_text: SendText, close: CloseTransport, *, peer: str,
        allowed_username: str | None = None,
    ) -> None:
        self.hub = hub
        self.id = next(_ids)
        self.peer = peer
        self.session = SignalingSession(reserved=hub.reserved, allowed_username=allowed_username)
        self._bucket = TokenBucket(hub.rate_limit, hub.rate_burst)
        self._send_text = send_text
        self._close = close
        self._outbox: asyncio.Queue[str | None] = asyncio.Queue(maxsize=hub.backlog)
        self._writer = asyncio.create_task(self._write(), name=f"ws-writer-{self.id}")
        self._closing = False

    def __repr__(self) -> str:
        return f"<ClientConnection #{self.id} {self.session.username or '-'} {self.session.state.value}>"

    # -- Endpoint ------------------------------------------------------------------

    def deliver(self, payload: dict[str, Any]) -> None:
        for action in self.session.incoming(payload):
            assert isinstance(action, Reply)
            self.enqueue(json.dumps(action.message))
        if payload.get("type") == "error" and payload.get("code") == "presence-lost":
            # Another node holds this name now: this connection must not go
            # on speaking as it. The client is told, then disconnected.
            asyncio.ensure_future(self._close_after_outbox(CLOSE_TRY_AGAIN_LATER, "username lost"))

    def enqueue(self, text: str) -> None:
        if self._closing:
            return
        try:
            self._outbox.put_nowait(text)
        except asyncio.QueueFull:
            # A reader that cannot keep up is dropped: memory stays bounded and
            # everyone else keeps being served.
            logger.warning("conn #%d: outbox full (%d), dropping slow reader", self.id, self.hub.backlog)
            self._closing = True
            asyncio.ensure_future(self._close(CLOSE_TRY_AGAIN_LATER, "backlog full"))

    async def _close_after_outbox(self, code: int, reason: str) -> None:
        self._closing = True
        with contextlib.suppress(asyncio.QueueFull):
            self._outbox.put_nowait(None)  # the writer stops after what is queued
        with contextlib.suppress(asyncio.CancelledError):
            await self._writer
        await self._close(code, reason)

    async def _write(self) -> None:
        while True:
            text = await self._outbox.get()
            if text is None:
                return
            try:
                await self._send_text(text)
            except (ConnectionError, RuntimeError) as exc:
                logger.debug("conn #%d: send failed: %s", self.id, exc)
                return

    # -- frames from the client ----------------------------------------------------

    async def handle_text(self, frame: str) -> None:
        if not self._bucket.take(asyncio.get_running_loop().time()):
            self.enqueue(json.dumps(error_message("rate-limited", "too many messages; slow down")))
            return
        await self._run(self.session.receive_text(frame))

    async def close(self, code: int, reason: str) -> None:
        self._closing = True
        await self._close(code, reason)

    async def disconnected(self) -> None:
        """The transport is gone (closed, dropped, or timed out)."""
        self.hub._logged_in.discard(self)
        await self._run(self.session.disconnected())
        self._closing = True
        self._writer.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await self._writer

    async def _run(self, actions: list[Action]) -> None:
        registry = self.hub.registry
        while actions:
            action = actions.pop(0)
            if isinstance(action, Reply):
                self.enqueue(json.dumps(action.message))
            elif isinstance(action, Route):
                if not await registry.route(action.target, action.message):
                    if self.session.state is State.LOGGED_IN:
                        actions += self.session.route_failed(action.target)
            elif isinstance(action, Claim):
                try:
                    claimed = await registry.claim(action.username, self)
                except RegistryUnavailable:
                    if self.session.state is State.CLAIMING:
                        actions += self.session.claim_failed(
                            "unavailable", "signaling is briefly unavailable; try again in a moment"
                        )
                    continue
                if claimed:
                    if self.session.state is not State.CLAIMING:
                        # Disconnected while claiming; disconnected() released.
                        await registry.release(action.username, self)
                        continue
                    self.hub._logged_in.add(self)
                    logger.info("conn #%d (%s): logged in as %r", self.id, self.peer, action.username)
                    actions += self.session.claimed(await registry.users(), self.hub.login_extra(action.username))
                elif self.session.state is State.CLAIMING:
                    actions += self.session.claim_failed()
            elif isinstance(action, Release):
                await registry.release(action.username, self)
                logger.info("conn #%d: %r left", self.id, action.username)
            elif isinstance(action, SendPresence):
                self.enqueue(json.dumps(presence_snapshot(await registry.users())))
