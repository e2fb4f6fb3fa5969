"""The signaling rules, sans I/O.

A :class:`SignalingSession` is one client connection's state. Frames and events
go in; a list of :class:`Action` comes out, which the WebSocket adapter carries
out (send a reply, route a message, claim or release a username). Nothing here
touches a socket, a clock or an event loop, so every rule is tested directly.

States::

    CONNECTED --login--> CLAIMING --claimed--> LOGGED_IN --disconnected--> CLOSED
                            |      --resumed-->     |   --handed_over-->
                            |--claim_failed--> CONNECTED

A login takes an asynchronous claim (in memory or in Redis), hence CLAIMING.
A login carrying a ``resume`` token asks for the slot an earlier connection
of that username left behind (:class:`Resume`); the adapter answers with
``resumed`` (the old session's partners carry over, and the old session is
``handed_over``), or ``claim_failed``, or falls back to a plain claim.

A session remembers its *partners*: the users it exchanged an offer or answer
with, in either direction. When the connection ends, each partner is sent a
``close`` from it, so nobody is left in a call with a vanished peer. Every
change of the partner set is reported to ``on_partner`` (if set), so the
adapter can find the partners of a user who left on another node.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass, field
from typing import Any, Callable, Union

from media.errors import InvalidState
from signaling.protocol import (
    Answer,
    ClientMessage,
    Close,
    Login,
    Offer,
    Presence,
    ProtocolError,
    Routed,
    error_message,
    login_failed,
    login_ok,
    parse_client_message,
    routed_payload,
)


class State(enum.Enum):
    CONNECTED = "connected"
    CLAIMING = "claiming"
    LOGGED_IN = "logged-in"
    CLOSED = "closed"


# -- Actions -------------------------------------------------------------------


# Reply and Route are built for every relayed message: slotted, not frozen
# (half the cost to build; see signaling/protocol.py). Never mutated.


@dataclass(slots=True)
class Reply:
    """Send ``message`` to this connection."""

    message: dict[str, Any]


@dataclass(slots=True)
class Route:
    """Deliver ``message`` to ``target``; if offline, call ``route_failed``."""

    target: str
    message: dict[str, Any]


@dataclass(frozen=True)
class Claim:
    """Claim ``username`` atomically; then call ``claimed`` or ``claim_failed``."""

    username: str


@dataclass(frozen=True)
class Resume:
    """Re-attach to the slot ``username`` holds if ``token`` is its resume
    token; then call ``resumed``, ``claim_failed``, or claim afresh."""

    username: str
    token: str


@dataclass(frozen=True)
class Release:
    username: str


@dataclass(frozen=True)
class SendPresence:
    """Reply with the current user list."""


Action = Union[Reply, Route, Claim, Resume, Release, SendPresence]

#: Told (partner, added) on every change of a session's partner set.
PartnerListener = Callable[[str, bool], None]


@dataclass
class SignalingSession:
    """One connection's signaling state machine."""

    reserved: frozenset[str] = frozenset()
    #: With token auth, the one username this connection may log in as.
    allowed_username: str | None = None
    state: State = State.CONNECTED
    username: str | None = None
    partners: set[str] = field(default_factory=set)
    on_partner: PartnerListener | None = None

    # -- frames from the client ------------------------------------------------

    def receive_text(self, frame: str | bytes) -> list[Action]:
        if self.state is State.CLOSED:
            raise InvalidState("receive_text", self.state)
        try:
            message = parse_client_message(frame)
        except ProtocolError as exc:
            if exc.message_type == "login":
                return [Reply(login_failed(exc.code, exc.message))]
            return [Reply(error_message(exc.code, exc.message))]
        return self.receive(message)

    def receive(self, message: ClientMessage) -> list[Action]:
        kind = type(message)
        if kind is Login:
            return self._login(message)  # type: ignore[arg-type]
        if self.state is not State.LOGGED_IN:
            return [Reply(error_message("not-logged-in", "log in first"))]
        if kind is Presence:
            return [SendPresence()]
        return self._route(message)  # type: ignore[arg-type]

    def _login(self, message: Login) -> list[Action]:
        if self.state is not State.CONNECTED:
            return [Reply(login_failed("already-logged-in", "this connection is already logged in"))]
        if self.allowed_username is not None and message.username != self.allowed_username:
            return [Reply(login_failed("not-authorized", "your token is for another username"))]
        if message.username in self.reserved:
            return [Reply(login_failed("username-taken", f"{message.username!r} is taken"))]
        self.state = State.CLAIMING
        self.username = message.username
        if message.resume is not None:
            return [Resume(message.username, message.resume)]
        return [Claim(message.username)]

    def _route(self, message: Routed) -> list[Action]:
        assert self.username is not None
        target = message.other_username
        if target == self.username:
            return [Reply(error_message("self-message", "a message cannot target its sender"))]
        kind = type(message)
        if kind is Offer or kind is Answer:
            if target not in self.partners:
                self._add_partner(target)
        elif kind is Close:
            self._drop_partner(target)
        return [Route(target, routed_payload(message, self.username))]

    def _add_partner(self, name: str) -> None:
        if name not in self.partners:
            self.partners.add(name)
            if self.on_partner is not None:
                self.on_partner(name, True)

    def _drop_partner(self, name: str) -> None:
        if name in self.partners:
            self.partners.discard(name)
            if self.on_partner is not None:
                self.on_partner(name, False)

    def _drop_all_partners(self) -> list[str]:
        gone = sorted(self.partners)
        for name in gone:
            self._drop_partner(name)
        return gone

    # -- results of actions ----------------------------------------------------

    def claimed(self, users: list[str], extra: dict[str, Any] | None = None) -> list[Action]:
        """The claim succeeded; ``extra`` fields (e.g. ``iceServers``) join the reply."""
        if self.state is not State.CLAIMING:
            raise InvalidState("claimed", self.state)
        assert self.username is not None
        self.state = State.LOGGED_IN
        return [Reply({**login_ok(self.username, users), **(extra or {})})]

    def resumed(self, partners: list[str], users: list[str], extra: dict[str, Any] | None = None) -> list[Action]:
        """The slot was re-attached: the earlier session's partners are this
        session's now, and the reply says ``resumed``."""
        if self.state is not State.CLAIMING:
            raise InvalidState("resumed", self.state)
        assert self.username is not None
        self.state = State.LOGGED_IN
        for name in partners:
            self._add_partner(name)
        return [Reply({**login_ok(self.username, users), "resumed": True, **(extra or {})})]

    def handed_over(self) -> list[str]:
        """A newer connection resumed this session's slot: this one ends
        without a word to anyone (its partners carry over); returns them."""
        if self.state is not State.LOGGED_IN:
            raise InvalidState("handed_over", self.state)
        self.state = State.CLOSED
        return self._drop_all_partners()

    def claim_failed(self, code: str = "username-taken", message: str | None = None) -> list[Action]:
        """The claim did not succeed: the name is taken, or (``unavailable``)
        the registry could not be asked; the client may try again."""
        if self.state is not State.CLAIMING:
            raise InvalidState("claim_failed", self.state)
        name, self.username = self.username, None
        self.state = State.CONNECTED
        return [Reply(login_failed(code, message or f"{name!r} is taken"))]

    def route_failed(self, target: str) -> list[Action]:
        self._drop_partner(target)
        return [Reply(error_message("user-offline", f"{target!r} is not online"))]

    # -- messages routed to this connection ---------------------------------------

    def incoming(self, payload: dict[str, Any]) -> list[Action]:
        """A message another user routed here; returns what to send the client."""
        sent = self.incoming_payload(payload)
        return [] if sent is None else [Reply(sent)]

    def incoming_payload(self, payload: dict[str, Any]) -> dict[str, Any] | None:
        """:meth:`incoming` without the list and the Reply (the hot path):
        the message to send the client, or None."""
        if self.state is not State.LOGGED_IN:
            return None
        sender = payload.get("username")
        if type(sender) is str:
            kind = payload.get("type")
            if kind == "offer" or kind == "answer":
                if sender not in self.partners:
                    self._add_partner(sender)
            elif kind == "close":
                self._drop_partner(sender)
        return payload

    def disconnected(self) -> list[Action]:
        """The connection is gone: tell partners, give the name back."""
        previous, self.state = self.state, State.CLOSED
        if previous is State.CLOSED or self.username is None:
            return []
        actions: list[Action] = []
        partners = self._drop_all_partners()
        if previous is State.LOGGED_IN:
            actions += [Route(p, routed_payload(Close(p), self.username)) for p in partners]
        # A claim may still be in flight (CLAIMING): releasing makes sure the
        # name is not left behind whichever way the claim ends.
        actions.append(Release(self.username))
        return actions


@dataclass
class PresenceBatcher:
    """Coalesces joins and leaves into one delta per flush.

    With N users online, telling everyone of every login costs N messages per
    login, N^2 for a login storm. Instead the server collects changes and, once
    per presence interval, sends each client a single delta naming everyone who
    joined or left since the last one. A user who joins and leaves within one
    interval is not mentioned at all.
    """

    _initial: dict[str, bool] = field(default_factory=dict)
    _final: dict[str, bool] = field(default_factory=dict)

    def joined(self, username: str) -> None:
        self._change(username, True)

    def left(self, username: str) -> None:
        self._change(username, False)

    def _change(self, username: str, online: bool) -> None:
        self._initial.setdefault(username, not online)
        self._final[username] = online

    def __bool__(self) -> bool:
        return bool(self._final)

    def drain(self) -> tuple[list[str], list[str]]:
        joined = sorted(n for n, on in self._final.items() if on and not self._initial[n])
        left = sorted(n for n, on in self._final.items() if not on and self._initial[n])
        self._initial.clear()
        self._final.clear()
        return joined, left
