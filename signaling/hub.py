"""The asyncio side of signaling: runs sessions' actions against a registry.

Transport-agnostic: a :class:`ClientConnection` writes through an
:class:`Outlet` (the aiohttp WebSocket adapter, ``webapp/ws.py``, is one).

**Sending.** Every server message is serialised once (orjson) and written
straight to the socket while the socket's buffer has room: no queue and no
task switch per message. Only when the kernel stops taking data (a slow
reader) do messages wait in a per-connection queue, drained by a writer task
that exists only while there is something to drain. What waits is bounded
twice, by count (``backlog``) and by bytes (``backlog_bytes``, counting what
the transport buffers too); past either bound the reader is dropped with 1013
and everyone else is still served.

**Resume.** A logged-in connection that is lost (no close frame, a heartbeat
timeout, or a close frame with any code but 1000) keeps its slot for
``resume_grace`` seconds: the username stays claimed, partners are not told,
and messages routed to it are queued (bounded as above; overflow ends the slot
at once). A login on a new connection carrying the slot's resume token
re-attaches to it and receives the queued messages, in order, after its login
reply. A close frame with 1000 is a deliberate goodbye: partners get
``close`` at once, as without resume. Closes the server decides (slow reader,
binary or oversized frame, lost presence, shutdown) end the session at once.
When the grace period ends, the session ends as it would have at the drop.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import hmac
import itertools
import logging
import secrets
import time
from collections import deque
from time import monotonic
from typing import Any, Awaitable, Callable, Protocol

from orjson import dumps as orjson_dumps

from signaling.limits import TokenBucket
from signaling.protocol import dumps, error_message, presence_delta, presence_snapshot
from signaling.registry import Registry, RegistryUnavailable
from signaling.rules import (
    Action,
    Claim,
    PresenceBatcher,
    Release,
    Reply,
    Resume,
    Route,
    SendPresence,
    SignalingSession,
    State,
)

logger = logging.getLogger(__name__)

#: WebSocket close codes (RFC 6455 section 7.4.1).
CLOSE_NORMAL = 1000
CLOSE_GOING_AWAY = 1001
CLOSE_UNSUPPORTED_DATA = 1003
CLOSE_POLICY_VIOLATION = 1008
CLOSE_MESSAGE_TOO_BIG = 1009
CLOSE_TRY_AGAIN_LATER = 1013

#: Bytes the transport may hold before messages wait in our own queue.
TRANSPORT_HIGH_WATER = 64 * 1024

_ids = itertools.count(1)


class Outlet(Protocol):
    """Where a connection's frames go (one WebSocket)."""

    def write_now(self, data: bytes) -> bool:
        """Write one text frame now if the transport has room; False if not
        (the caller queues it and sends it with :meth:`send`)."""

    async def send(self, data: bytes) -> None:
        """Write one text frame, waiting for the transport to drain."""

    def buffered(self) -> int:
        """Bytes written but not yet taken by the kernel."""

    async def close(self, code: int, reason: str) -> None:
        """Close with the WebSocket closing handshake."""

    def abort(self, code: int, reason: str) -> None:
        """Close at once, without waiting for a peer that does not read: a
        close frame if it fits, then the transport is dropped."""

    def ping(self) -> None:
        """Send a ping frame (RFC 6455 section 5.5.2)."""

    def lost(self) -> None:
        """The peer stopped answering: drop the transport (no close frame)."""


def _digest(token: str) -> bytes:
    return hashlib.sha256(token.encode()).digest()


class SignalingHub:
    """All local connections of one server process."""

    def __init__(
        self,
        registry: Registry,
        *,
        reserved: frozenset[str] = frozenset(),
        presence_interval: float = 0.25,
        backlog: int = 256,
        backlog_bytes: int = 1024 * 1024,
        rate_limit: float = 20.0,
        rate_burst: float = 40.0,
        resume_grace: float = 15.0,
        heartbeat: float | None = None,
        login_extra: Callable[[str], dict[str, Any]] | None = None,
    ) -> None:
        self.registry = registry
        self.reserved = reserved
        self.presence_interval = presence_interval
        self.backlog = backlog
        self.backlog_bytes = backlog_bytes
        self.rate_limit = rate_limit
        self.rate_burst = rate_burst
        self.resume_grace = resume_grace
        #: Seconds of silence before a ping; a ping unanswered for half of
        #: that drops the connection (None: no pings from the hub).
        self.heartbeat = heartbeat
        self._connections: set[ClientConnection] = set()
        self._pinger: asyncio.Task[None] | None = None
        #: Extra login-reply fields for a user (their ICE servers, for example).
        self.login_extra = login_extra or (lambda username: {})
        self._logged_in: set[ClientConnection] = set()
        #: Username -> the local connection that holds it (live or held).
        self._owners: dict[str, ClientConnection] = {}
        #: Username -> local connections that count it as a partner.
        self._partners_of: dict[str, set[ClientConnection]] = {}
        self._batcher = PresenceBatcher()
        self._changed = asyncio.Event()
        self._flusher: asyncio.Task[None] | None = None
        self._tasks: set[asyncio.Task[Any]] = set()
        self._stopping = False
        registry.subscribe(self._on_presence)
        registry.subscribe_departures(self._on_departure)

    async def start(self) -> None:
        self._flusher = asyncio.create_task(self._flush_presence(), name="presence-flusher")
        if self.heartbeat is not None:
            self._pinger = asyncio.create_task(self._keep_alive(self.heartbeat), name="heartbeat")

    async def _keep_alive(self, interval: float) -> None:
        """One timer for every connection, instead of one reset per frame
        received (aiohttp's own heartbeat reschedules a timer for each
        chunk it reads, a measurable share of a relayed message's cost).
        A connection silent for ``interval`` is pinged; one that has sent
        nothing (no pong either) ``interval / 2`` after the ping is dropped,
        so a vanished client is gone within 1.5 to 2 intervals."""
        tick = interval / 2
        while True:
            await asyncio.sleep(tick)  # the heartbeat period itself, not a wait for an event
            now = monotonic()
            for conn in list(self._connections):
                conn.check_alive(now, interval)

    def stop_holding(self) -> None:
        """Shutting down: connections closing from now on end their sessions
        at once instead of holding their slots."""
        self._stopping = True

    async def close(self) -> None:
        self._stopping = True
        for conn in list(self._owners.values()):
            if conn.held:
                await conn.end_held("shutdown")
        for task in (self._flusher, self._pinger):
            if task is not None:
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await task
        self._flusher = self._pinger = None
        for task in list(self._tasks):
            task.cancel()
        for task in list(self._tasks):
            with contextlib.suppress(asyncio.CancelledError):
                await task

    def connect(
        self, outlet: Outlet, *, peer: str = "?", allowed_username: str | None = None,
        expires_at: float | None = None,
    ) -> ClientConnection:
        """A new connection; ``expires_at`` (Unix time): when its token ends."""
        conn = ClientConnection(self, outlet, peer=peer, allowed_username=allowed_username, expires_at=expires_at)
        self._connections.add(conn)
        return conn

    @property
    def online_here(self) -> int:
        return len(self._logged_in)

    @property
    def held(self) -> list[str]:
        """Usernames whose connection was lost and whose slot is held."""
        return sorted(name for name, conn in self._owners.items() if conn.held)

    def spawn(self, coro: Any) -> None:
        task = asyncio.ensure_future(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    # -- presence ----------------------------------------------------------------

    def _on_presence(self, username: str, online: bool) -> None:
        (self._batcher.joined if online else self._batcher.left)(username)
        self._changed.set()

    def _on_departure(self, username: str) -> None:
        """``username`` left (on any node, cleanly or by a crash): whoever
        here still counts it as a partner gets ``close`` from it, exactly as
        when both are on one node. A clean departure routed its closes first,
        which removed it from its partners' sets, so nobody hears it twice."""
        for conn in list(self._partners_of.get(username, ())):
            conn.deliver({"type": "close", "username": username})

    def _partner_changed(self, conn: ClientConnection, name: str, added: bool) -> None:
        if added:
            self._partners_of.setdefault(name, set()).add(conn)
        else:
            holders = self._partners_of.get(name)
            if holders is not None:
                holders.discard(conn)
                if not holders:
                    del self._partners_of[name]

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
            data = dumps(presence_delta(joined, left))  # serialised once for all
            for conn in list(self._logged_in):
                conn.send(data)


class ClientConnection:
    """One client: its session, and what is waiting to be written to it."""

    def __init__(
        self, hub: SignalingHub, outlet: Outlet, *, peer: str,
        allowed_username: str | None = None, expires_at: float | None = None,
    ) -> None:
        self.hub = hub
        self.id = next(_ids)
        self.peer = peer
        self.session = SignalingSession(
            reserved=hub.reserved, allowed_username=allowed_username, on_partner=self._on_partner,
        )
        self._bucket = TokenBucket(hub.rate_limit, hub.rate_burst)
        self._outlet: Outlet | None = outlet
        #: Frames waiting for room (None while the fast path is open).
        self._queue: deque[bytes] | None = None
        self._queued_bytes = 0
        self._writer: asyncio.Task[None] | None = None
        #: No more frames are sent (a close is under way).
        self._closing = False
        #: The server ended this connection: its slot is not held.
        self._ended_by_server = False
        self._resume_digest: bytes | None = None
        self._resume_fallback = False
        self.held = False
        #: When a frame last came in, and when the unanswered ping went out.
        self.seen = monotonic()
        self._ping_sent: float | None = None
        self._hold_timer: asyncio.TimerHandle | None = None
        self._expiry: asyncio.TimerHandle | None = None
        if expires_at is not None:
            delay = max(0.0, expires_at - time.time())
            self._expiry = asyncio.get_running_loop().call_later(delay, self._token_expired)

    def __repr__(self) -> str:
        held = " held" if self.held else ""
        return f"<ClientConnection #{self.id} {self.session.username or '-'} {self.session.state.value}{held}>"

    def _on_partner(self, name: str, added: bool) -> None:
        self.hub._partner_changed(self, name, added)

    # -- Endpoint ------------------------------------------------------------------

    def deliver(self, payload: dict[str, Any]) -> None:
        message = self.session.incoming_payload(payload)
        if message is not None:
            try:
                data = orjson_dumps(message)  # the hot path: no wrapper call
            except TypeError:
                data = dumps(message)
            self.send(data)
        if payload.get("code") == "presence-lost" and payload.get("type") == "error":
            # Another node holds this name now: this connection must not go
            # on speaking as it. The client is told, then disconnected.
            self._ended_by_server = True
            self.hub.spawn(self._close_after_outbox(CLOSE_TRY_AGAIN_LATER, "username lost"))

    # -- sending -------------------------------------------------------------------

    def send(self, data: bytes) -> None:
        """Write one serialised message (or queue it, bounded)."""
        if self._closing:
            return
        outlet = self._outlet
        if outlet is None:
            if self.held:
                self._queue_held(data)
            return
        queue = self._queue
        if queue is None:
            if outlet.write_now(data):
                return
            queue = self._queue = deque()
        queue.append(data)
        self._queued_bytes += len(data)
        hub = self.hub
        if len(queue) > hub.backlog or self._queued_bytes + outlet.buffered() > hub.backlog_bytes:
            # A reader that cannot keep up is dropped: memory stays bounded and
            # everyone else keeps being served.
            logger.warning("conn #%d: backlog over %d messages or %d bytes, dropping slow reader",
                           self.id, hub.backlog, hub.backlog_bytes)
            self._drop_queue()
            self._closing = self._ended_by_server = True
            # A reader this slow would not read a closing handshake either.
            outlet.abort(CLOSE_TRY_AGAIN_LATER, "backlog full")
            return
        if self._writer is None:
            self._writer = asyncio.ensure_future(self._write(outlet, queue))

    async def _write(self, outlet: Outlet, queue: deque[bytes]) -> None:
        try:
            while queue:
                data = queue.popleft()
                self._queued_bytes -= len(data)
                await outlet.send(data)
        except (ConnectionError, RuntimeError) as exc:
            # The transport is gone; the reader side notices and ends the
            # connection (and may hold its slot).
            logger.debug("conn #%d: send failed: %s", self.id, exc)
        finally:
            self._writer = None
            if not queue and self._queue is queue:
                self._queue = None

    def _drop_queue(self) -> None:
        self._queue = None
        self._queued_bytes = 0

    def _queue_held(self, data: bytes) -> None:
        queue = self._queue
        if queue is None:
            queue = self._queue = deque()
        queue.append(data)
        self._queued_bytes += len(data)
        if len(queue) > self.hub.backlog or self._queued_bytes > self.hub.backlog_bytes:
            logger.info("conn #%d: %r: more queued than a held slot keeps; ending it",
                        self.id, self.session.username)
            self._drop_queue()
            self.hub.spawn(self.end_held("overflow"))

    async def _close_after_outbox(self, code: int, reason: str) -> None:
        self._closing = True
        writer = self._writer
        if writer is not None:
            with contextlib.suppress(asyncio.CancelledError):
                await writer
        if self._outlet is not None:
            await self._outlet.close(code, reason)

    def _token_expired(self) -> None:
        """The token this connection was opened with has expired: say so,
        then close with 1008 (policy violation, RFC 6455 section 7.4.1). The
        slot is held as for a lost connection, so a client that reconnects
        with a fresh token (and its resume token) carries on."""
        self._expiry = None
        if self._closing or self._outlet is None:
            return
        logger.info("conn #%d: token expired", self.id)
        self.send(dumps(error_message("token-expired", "your token has expired; reconnect with a new one")))
        self.hub.spawn(self._close_after_outbox(CLOSE_POLICY_VIOLATION, "token expired"))

    # -- frames from the client ----------------------------------------------------

    def handle_text(self, frame: str) -> Awaitable[None] | None:
        """Take one text frame. Most frames are handled at once (a route to a
        user on this node, a reply); what has to wait (a claim, a route
        through Redis) comes back as an awaitable for the caller to await
        before reading the next frame, so frames are handled in order."""
        now = self.seen = monotonic()
        if not self._bucket.take(now):
            self.send(dumps(error_message("rate-limited", "too many messages; slow down")))
            return None
        actions = self.session.receive_text(frame)
        if len(actions) == 1:
            action = actions[0]
            kind = type(action)
            if kind is Route:
                delivered = self.hub.registry.route_now(action.target, action.message)
                if delivered is True:
                    return None
                if delivered is False:
                    if self.session.state is State.LOGGED_IN:
                        return self._run(self.session.route_failed(action.target))
                    return None
            elif kind is Reply:
                self.send(dumps(action.message))
                return None
        return self._run(actions)

    def alive(self) -> None:
        """A frame other than text came in (a pong, a ping)."""
        self.seen = monotonic()

    def check_alive(self, now: float, interval: float) -> None:
        outlet = self._outlet
        if outlet is None:
            return
        if self._ping_sent is not None:
            if self.seen >= self._ping_sent:
                self._ping_sent = None  # answered (or anything else arrived)
            elif now - self._ping_sent >= interval / 2:
                logger.info("conn #%d: no answer to ping within %.1fs; dropping", self.id, interval / 2)
                self._ping_sent = None
                outlet.lost()  # a lost connection: its slot may be held
            return
        if now - self.seen >= interval:
            self._ping_sent = now
            outlet.ping()

    async def close(self, code: int, reason: str) -> None:
        self._closing = self._ended_by_server = True
        if self._outlet is not None:
            await self._outlet.close(code, reason)

    async def disconnected(self, *, goodbye: bool = False) -> None:
        """The transport is gone. ``goodbye``: the client closed with 1000,
        so the session ends now; otherwise a logged-in session is held for
        the resume grace period (unless the server ended it)."""
        hub = self.hub
        hub._logged_in.discard(self)
        hub._connections.discard(self)
        if self._expiry is not None:
            self._expiry.cancel()
            self._expiry = None
        self._outlet = None
        writer, self._writer = self._writer, None
        if writer is not None:
            writer.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await writer
        if (
            not goodbye and not self._ended_by_server and not hub._stopping and hub.resume_grace > 0
            and self.session.state is State.LOGGED_IN and self._resume_digest is not None
        ):
            self._hold()
            return
        self._closing = True
        self._drop_queue()
        await self._end_session()

    async def _end_session(self) -> None:
        name = self.session.username
        await self._run(self.session.disconnected())
        if name is not None and self.hub._owners.get(name) is self:
            del self.hub._owners[name]

    # -- resume --------------------------------------------------------------------

    def _hold(self) -> None:
        """Keep the slot: still claimed, messages for it queued (what was
        waiting for the lost socket first), partners not told."""
        self.held = True
        self._closing = False
        logger.info("conn #%d: %r lost; slot held for %.0fs", self.id, self.session.username, self.hub.resume_grace)
        self._hold_timer = asyncio.get_running_loop().call_later(
            self.hub.resume_grace, lambda: self.hub.spawn(self.end_held("grace-expired")))

    async def end_held(self, why: str) -> None:
        """The held slot ends (grace over, overflow, shutdown): the session
        ends as it would have at the drop (partners get ``close``)."""
        if not self.held:
            return
        self.held = False
        self._closing = True
        self._drop_queue()
        if self._hold_timer is not None:
            self._hold_timer.cancel()
            self._hold_timer = None
        logger.info("conn #%d: held slot of %r ended (%s)", self.id, self.session.username, why)
        await self._end_session()

    def _take_over(self) -> tuple[list[str], deque[bytes] | None]:
        """A newer connection resumed this slot: hand over partners and
        whatever is queued; this connection is finished (closed if live)."""
        partners = self.session.handed_over()
        queue = self._queue
        self._drop_queue()
        if self._hold_timer is not None:
            self._hold_timer.cancel()
            self._hold_timer = None
        self.held = False
        self._closing = self._ended_by_server = True
        self.hub._logged_in.discard(self)
        outlet = self._outlet
        if outlet is not None:
            # The client reconnected before this socket was seen to drop.
            self.hub.spawn(outlet.close(CLOSE_NORMAL, "resumed on a new connection"))
        return partners, queue

    def _new_resume_extra(self, username: str) -> dict[str, Any]:
        extra = dict(self.hub.login_extra(username))
        if self.hub.resume_grace > 0:
            token = secrets.token_urlsafe(16)  # 128 bits: unguessable
            self._resume_digest = _digest(token)
            extra["resumeToken"] = token
            extra["resumeGrace"] = self.hub.resume_grace
        return extra

    async def _resume(self, action: Resume) -> list[Action]:
        hub = self.hub
        old = hub._owners.get(action.username)
        if old is None or old is self:
            # Nothing held here (grace over, or never ours): a plain login.
            self._resume_fallback = True
            return [Claim(action.username)]
        if old._resume_digest is None or not hmac.compare_digest(old._resume_digest, _digest(action.token)):
            return self.session.claim_failed()
        if old.session.state is not State.LOGGED_IN:
            return self.session.claim_failed()  # its ending is under way: the name is still taken
        if not hub.registry.replace(action.username, old, self):
            return self.session.claim_failed()
        partners, queue = old._take_over()
        hub._owners[action.username] = self
        hub._logged_in.add(self)
        logger.info("conn #%d (%s): resumed %r (%d queued)", self.id, self.peer, action.username,
                    len(queue) if queue else 0)
        users = await hub.registry.users()
        for reply in self.session.resumed(partners, users, self._new_resume_extra(action.username)):
            assert isinstance(reply, Reply)
            self.send(dumps(reply.message))
        for data in queue or ():
            self.send(data)
        return []

    # -- actions ---------------------------------------------------------------------

    async def _run(self, actions: list[Action]) -> None:
        hub = self.hub
        registry = hub.registry
        while actions:
            action = actions.pop(0)
            if isinstance(action, Route):
                if not await registry.route(action.target, action.message):
                    if self.session.state is State.LOGGED_IN:
                        actions += self.session.route_failed(action.target)
            elif isinstance(action, Reply):
                self.send(dumps(action.message))
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
                    hub._logged_in.add(self)
                    hub._owners[action.username] = self
                    logger.info("conn #%d (%s): logged in as %r", self.id, self.peer, action.username)
                    extra = self._new_resume_extra(action.username)
                    if self._resume_fallback:
                        extra["resumed"] = False
                    actions += self.session.claimed(await registry.users(), extra)
                elif self.session.state is State.CLAIMING:
                    actions += self.session.claim_failed()
            elif isinstance(action, Resume):
                actions += await self._resume(action)
            elif isinstance(action, Release):
                await registry.release(action.username, self)
                logger.info("conn #%d: %r left", self.id, action.username)
            elif isinstance(action, SendPresence):
                self.send(dumps(presence_snapshot(await registry.users())))
