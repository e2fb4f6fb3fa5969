"""Presence and routing: who is online, and how a message reaches them.

One small interface, :class:`Registry`, with an in-memory implementation for a
single process. A Redis-backed one (``--redis-url``) implements the same
interface so that users on different nodes share one signaling space.

An :class:`Endpoint` is whatever receives messages for a username on this node:
a WebSocket connection, or the bot. ``deliver`` never blocks: an endpoint
queues the message (bounded) or drops its own connection if it cannot keep up.
"""

from __future__ import annotations

import bisect
import logging
from typing import Any, Callable, Protocol

from signaling.protocol import SignalingError

logger = logging.getLogger(__name__)

#: Called with (username, online) whenever a user joins (True) or leaves.
PresenceListener = Callable[[str, bool], None]
#: Called with a username that departed: released its name, or was reaped
#: with its dead node. Not called for presence corrections after an outage.
DepartureListener = Callable[[str], None]


class RegistryUnavailable(SignalingError):
    """The shared registry (Redis) cannot be reached right now; the
    operation was not done."""


class Endpoint(Protocol):
    def deliver(self, payload: dict[str, Any]) -> None:
        """Take a message routed to this endpoint's username (non-blocking)."""


class Registry(Protocol):
    """Presence and routing for one signaling space."""

    async def start(self) -> None: ...

    async def close(self) -> None: ...

    def add_service(self, username: str, endpoint: Endpoint) -> None:
        """A name that is always online and served on every node (the bot)."""

    async def claim(self, username: str, endpoint: Endpoint) -> bool:
        """Atomically take ``username`` for ``endpoint``; False if taken."""

    async def release(self, username: str, endpoint: Endpoint) -> None:
        """Give ``username`` back, if ``endpoint`` still holds it."""

    def replace(self, username: str, old: Endpoint, new: Endpoint) -> bool:
        """Hand ``username``'s claim from ``old`` to ``new`` on this node
        (a resumed session); False if ``old`` no longer holds it. The claim
        itself (and, with Redis, its owner node) does not change."""

    async def users(self) -> list[str]:
        """Everyone online: services first, then users in sorted order."""

    async def route(self, target: str, payload: dict[str, Any]) -> bool:
        """Deliver ``payload`` to ``target``; False if ``target`` is offline."""

    def route_now(self, target: str, payload: dict[str, Any]) -> bool | None:
        """:meth:`route` without waiting, when the answer is known here:
        True (delivered on this node), False (offline), None (the target is
        elsewhere or unknown: use :meth:`route`)."""

    def subscribe(self, listener: PresenceListener) -> None:
        """Be told of every join and leave, on any node."""

    def subscribe_departures(self, listener: DepartureListener) -> None:
        """Be told of every user who departed, on any node (after the
        messages it routed before leaving)."""


class InMemoryRegistry:
    """The single-process default: dicts, no I/O."""

    def __init__(self) -> None:
        self._services: dict[str, Endpoint] = {}
        self._users: dict[str, Endpoint] = {}
        self._listeners: list[PresenceListener] = []
        self._departure_listeners: list[DepartureListener] = []
        #: The users in sorted order, kept so (bisect): a login storm of n
        #: users costs n insertions, not n sorts of everyone.
        self._sorted: list[str] = []

    async def start(self) -> None:
        pass

    async def close(self) -> None:
        self._users.clear()
        self._sorted.clear()

    def add_service(self, username: str, endpoint: Endpoint) -> None:
        self._services[username] = endpoint

    async def claim(self, username: str, endpoint: Endpoint) -> bool:
        if username in self._services or username in self._users:
            return False
        self._users[username] = endpoint
        bisect.insort(self._sorted, username)
        self._notify(username, True)
        return True

    async def release(self, username: str, endpoint: Endpoint) -> None:
        if self._users.get(username) is endpoint:
            del self._users[username]
            del self._sorted[bisect.bisect_left(self._sorted, username)]
            self._notify(username, False)
            for departed in self._departure_listeners:
                try:
                    departed(username)
                except Exception:
                    logger.exception("departure listener failed")

    def replace(self, username: str, old: Endpoint, new: Endpoint) -> bool:
        if self._users.get(username) is not old:
            return False
        self._users[username] = new
        return True

    async def users(self) -> list[str]:
        return list(self._services) + self._sorted

    async def route(self, target: str, payload: dict[str, Any]) -> bool:
        return self.route_now(target, payload)

    def route_now(self, target: str, payload: dict[str, Any]) -> bool:
        endpoint = self._users.get(target) or self._services.get(target)
        if endpoint is None:
            return False
        endpoint.deliver(payload)
        return True

    def subscribe(self, listener: PresenceListener) -> None:
        self._listeners.append(listener)

    def subscribe_departures(self, listener: DepartureListener) -> None:
        self._departure_listeners.append(listener)

    def _notify(self, username: str, online: bool) -> None:
        for listener in self._listeners:
            try:
                listener(username, online)
            except Exception:  # one broken listener must not stop the others
                logger.exception("presence listener failed")
