"""The signaling wire protocol: JSON text frames, parsed once at the edge.

Every frame a client sends is turned by :func:`parse_client_message` into one
of the frozen dataclasses below, or raises :class:`ProtocolError` carrying the
error code the client is told. Nothing deeper than this module sees a raw dict.

The protocol is compatible with the signaling of the common Node.js tutorial:
users are keyed by username and a message names its target in
``otherUsername``. Field names inside ``offer``/``answer``/``candidate`` are the
W3C ones (``type``, ``sdp``, ``candidate``, ``sdpMid``, ``sdpMLineIndex``) so a
browser can send ``pc.localDescription`` unchanged.

Exception tree (the whole project's is drawn in ``media/errors.py``)::

    SignalingError
    ├── ProtocolError        the peer broke the protocol; has .code, .message
    └── RegistryUnavailable  (signaling.registry) Redis cannot be reached

Error codes (stable; clients match on them):

=================== =========================================================
``bad-json``        the frame is not valid JSON (or not UTF-8 text)
``not-an-object``   the JSON is valid but not an object
``unknown-type``    ``type`` is missing, not a string, or not a known type
``invalid-field``   a field is missing or has the wrong type or size
``not-logged-in``   the message needs a login first
``already-logged-in`` a second login on the same connection
``invalid-username`` a username outside the safe set
``username-taken``  somebody (or the bot) already has that name
``user-offline``    the target is not online
``self-message``    the target is the sender
=================== =========================================================
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from typing import Any, Union

import orjson

from media.errors import CallbotError

#: A username is 1 to 64 characters of ASCII letters, digits, ``_``, ``-``,
#: ``.`` and ``@``, starting with a letter or digit. It is only ever a key in
#: maps and a value in JSON, never part of a path.
USERNAME_PATTERN = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.@-]{0,63}")

#: Upper bounds for fields inside a frame (the frame itself is bounded by the
#: server's max message size, which is checked before parsing).
MAX_SDP_LENGTH = 60_000
MAX_CANDIDATE_LENGTH = 1_024
MAX_MID_LENGTH = 64
#: A resume token is ours (22 url-safe characters); anything much longer is junk.
MAX_RESUME_TOKEN_LENGTH = 128
#: No real message nests deeper than 4; 32 leaves room and keeps the parser
#: far from Python's recursion limit, so the answer never depends on the stack.
MAX_NESTING = 32


class SignalingError(CallbotError):
    """Root of the errors this package raises."""


class ProtocolError(SignalingError):
    """The client broke the protocol. ``code`` is sent back to it verbatim."""

    def __init__(self, code: str, message: str, *, message_type: str | None = None) -> None:
        super().__init__(f"{code}: {message}")
        self.code = code
        self.message = message
        #: The ``type`` of the offending message when it was a known one, so a
        #: bad ``login`` can be answered in the login reply's own shape.
        self.message_type = message_type


def is_valid_username(value: object) -> bool:
    return isinstance(value, str) and USERNAME_PATTERN.fullmatch(value) is not None


# -- Typed pieces --------------------------------------------------------------

# Messages built for every relayed frame are slotted, not frozen: a frozen
# dataclass costs twice as much to build (object.__setattr__ per field), and
# several are built per message. They are never mutated all the same.


@dataclass(slots=True)
class SessionDescription:
    """An RTCSessionDescriptionInit: ``{"type": "offer"|"answer", "sdp": str}``."""

    type: str
    sdp: str

    def to_json(self) -> dict[str, Any]:
        return {"type": self.type, "sdp": self.sdp}


@dataclass(slots=True)
class IceCandidate:
    """An RTCIceCandidateInit. ``candidate`` may be ``""`` (end of candidates)."""

    candidate: str
    sdp_mid: str | None = None
    sdp_mline_index: int | None = None
    username_fragment: str | None = None

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "candidate": self.candidate,
            "sdpMid": self.sdp_mid,
            "sdpMLineIndex": self.sdp_mline_index,
        }
        if self.username_fragment is not None:
            out["usernameFragment"] = self.username_fragment
        return out


# -- Client messages -----------------------------------------------------------


@dataclass(frozen=True)
class Login:
    username: str
    #: The ``resumeToken`` of an earlier login of this username, to re-attach
    #: to its slot within the resume grace period (None: a fresh login).
    resume: str | None = None


@dataclass(frozen=True)
class Presence:
    pass


@dataclass(slots=True)
class Offer:
    other_username: str
    offer: SessionDescription


@dataclass(slots=True)
class Answer:
    other_username: str
    answer: SessionDescription


@dataclass(slots=True)
class Candidate:
    other_username: str
    candidate: IceCandidate | None  # None: end of candidates


@dataclass(slots=True)
class Close:
    other_username: str


ClientMessage = Union[Login, Presence, Offer, Answer, Candidate, Close]
Routed = Union[Offer, Answer, Candidate, Close]


def routed_payload(message: Routed, sender: str) -> dict[str, Any]:
    """What the target of a routed message receives (re-built, never echoed raw)."""
    kind = type(message)
    if kind is Offer:
        return {"type": "offer", "offer": message.offer.to_json(), "username": sender}  # type: ignore[union-attr]
    if kind is Answer:
        return {"type": "answer", "answer": message.answer.to_json(), "username": sender}  # type: ignore[union-attr]
    if kind is Candidate:
        cand = message.candidate.to_json() if message.candidate is not None else None  # type: ignore[union-attr]
        return {"type": "candidate", "candidate": cand, "username": sender}
    return {"type": "close", "username": sender}


@dataclass(frozen=True)
class Delivered:
    """A routed message as a service (the bot) receives it: who sent it, and
    the typed message, whose ``other_username`` is the service itself."""

    sender: str
    message: Routed


# -- Parsing -------------------------------------------------------------------


def _field(obj: dict[str, Any], name: str, kind: type | tuple[type, ...], *, where: str = "") -> Any:
    label = f"{where}{name}"
    if name not in obj:
        raise ProtocolError("invalid-field", f"missing field {label!r}")
    value = obj[name]
    # bool is a subclass of int in Python; JSON true is never a number here.
    if isinstance(value, bool) and bool not in (kind if isinstance(kind, tuple) else (kind,)):
        raise ProtocolError("invalid-field", f"field {label!r} has the wrong type")
    if not isinstance(value, kind):
        raise ProtocolError("invalid-field", f"field {label!r} has the wrong type")
    return value


def _target(obj: dict[str, Any]) -> str:
    value = _field(obj, "otherUsername", str)
    if not is_valid_username(value):
        raise ProtocolError("invalid-field", "field 'otherUsername' is not a valid username")
    return value


def _description(obj: dict[str, Any], name: str) -> SessionDescription:
    desc = _field(obj, name, dict)
    sdp_type = _field(desc, "type", str, where=f"{name}.")
    if sdp_type != name:
        raise ProtocolError("invalid-field", f"field '{name}.type' must be {name!r}")
    sdp = _field(desc, "sdp", str, where=f"{name}.")
    if not sdp or len(sdp) > MAX_SDP_LENGTH:
        raise ProtocolError("invalid-field", f"field '{name}.sdp' is empty or too long")
    return SessionDescription(sdp_type, sdp)


def _optional(obj: dict[str, Any], name: str, kind: type, where: str) -> Any:
    if obj.get(name) is None:
        return None
    return _field(obj, name, kind, where=where)


def _ice_candidate(obj: dict[str, Any]) -> IceCandidate | None:
    if "candidate" not in obj:
        raise ProtocolError("invalid-field", "missing field 'candidate'")
    value = obj["candidate"]
    if value is None:
        return None
    if not isinstance(value, dict):
        raise ProtocolError("invalid-field", "field 'candidate' must be an object or null")
    text = _field(value, "candidate", str, where="candidate.")
    if len(text) > MAX_CANDIDATE_LENGTH:
        raise ProtocolError("invalid-field", "field 'candidate.candidate' is too long")
    mid = _optional(value, "sdpMid", str, "candidate.")
    if mid is not None and len(mid) > MAX_MID_LENGTH:
        raise ProtocolError("invalid-field", "field 'candidate.sdpMid' is too long")
    index = _optional(value, "sdpMLineIndex", int, "candidate.")
    if index is not None and not 0 <= index < 1024:
        raise ProtocolError("invalid-field", "field 'candidate.sdpMLineIndex' is out of range")
    ufrag = _optional(value, "usernameFragment", str, "candidate.")
    if ufrag is not None and len(ufrag) > 256:
        raise ProtocolError("invalid-field", "field 'candidate.usernameFragment' is too long")
    return IceCandidate(text, mid, index, ufrag)


def _login(obj: dict[str, Any]) -> Login:
    username = _field(obj, "username", str)
    if not is_valid_username(username):
        raise ProtocolError(
            "invalid-username",
            "a username is 1 to 64 characters: letters, digits, '_', '-', '.', '@', "
            "starting with a letter or digit",
        )
    resume = _optional(obj, "resume", str, "")
    if resume is not None and not 0 < len(resume) <= MAX_RESUME_TOKEN_LENGTH:
        raise ProtocolError("invalid-field", "field 'resume' is empty or too long")
    return Login(username, resume)


_PARSERS = {
    "login": _login,
    "presence": lambda obj: Presence(),
    "offer": lambda obj: Offer(_target(obj), _description(obj, "offer")),
    "answer": lambda obj: Answer(_target(obj), _description(obj, "answer")),
    "candidate": lambda obj: Candidate(_target(obj), _ice_candidate(obj)),
    "close": lambda obj: Close(_target(obj)),
}

MESSAGE_TYPES = frozenset(_PARSERS)

# -- The fast path: well-formed routed messages --------------------------------
#
# Nearly every frame is a well-formed offer, answer or candidate. These
# parsers check exactly what the ones above check, with exact type tests and
# no error building, and give up (None) at the first irregularity: the
# generic parser then runs and raises the precise error. So the fast path
# changes the cost of a message, never its answer.

_username_match = USERNAME_PATTERN.fullmatch


# The fast path takes only frames of exactly the expected shape (no extra
# keys, scalars where scalars belong), so their nesting is known without the
# scan that the generic path makes for MAX_NESTING.


def _fast_target(obj: dict[str, Any]) -> str | None:
    target = obj.get("otherUsername")
    if type(target) is str and _username_match(target) is not None:
        return target
    return None


def _fast_description(obj: dict[str, Any], name: str) -> SessionDescription | None:
    desc = obj.get(name)
    if type(desc) is not dict or len(desc) != 2 or desc.get("type") != name:
        return None
    sdp = desc.get("sdp")
    if type(sdp) is not str or not sdp or len(sdp) > MAX_SDP_LENGTH:
        return None
    return SessionDescription(name, sdp)


def _fast_offer(obj: dict[str, Any]) -> Offer | None:
    if len(obj) != 3:
        return None
    target = _fast_target(obj)
    desc = _fast_description(obj, "offer")
    return Offer(target, desc) if target is not None and desc is not None else None


def _fast_answer(obj: dict[str, Any]) -> Answer | None:
    if len(obj) != 3:
        return None
    target = _fast_target(obj)
    desc = _fast_description(obj, "answer")
    return Answer(target, desc) if target is not None and desc is not None else None


def _fast_candidate(obj: dict[str, Any]) -> Candidate | None:
    if len(obj) != 3:
        return None
    target = _fast_target(obj)
    if target is None or "candidate" not in obj:
        return None
    value = obj["candidate"]
    if value is None:
        return Candidate(target, None)
    if type(value) is not dict or not 1 <= len(value) <= 4:
        return None
    text = value.get("candidate")
    mid = value.get("sdpMid")
    index = value.get("sdpMLineIndex")
    ufrag = value.get("usernameFragment")
    if (
        not _CANDIDATE_KEYS.issuperset(value)
        or type(text) is not str or len(text) > MAX_CANDIDATE_LENGTH
        or (mid is not None and (type(mid) is not str or len(mid) > MAX_MID_LENGTH))
        or (index is not None and (type(index) is not int or not 0 <= index < 1024))
        or (ufrag is not None and (type(ufrag) is not str or len(ufrag) > 256))
    ):
        return None
    return Candidate(target, IceCandidate(text, mid, index, ufrag))


_CANDIDATE_KEYS = frozenset({"candidate", "sdpMid", "sdpMLineIndex", "usernameFragment"})
_FAST_PARSERS = {"offer": _fast_offer, "answer": _fast_answer, "candidate": _fast_candidate}


def nesting_depth(text: str) -> int:
    """The deepest bracket nesting outside JSON strings (a linear scan)."""
    depth = deepest = 0
    in_string = escaped = False
    for ch in text:
        if in_string:
            if escaped:
                escaped = False
            elif ch == "\\":
                escaped = True
            elif ch == '"':
                in_string = False
        elif ch == '"':
            in_string = True
        elif ch in "[{":
            depth += 1
            deepest = max(deepest, depth)
        elif ch in "]}":
            depth -= 1
    return deepest


def _loads_slow(frame: str) -> Any:
    """What the standard library makes of a frame orjson refused.

    orjson is stricter in a few corners (integers beyond 64 bits, ``NaN``,
    lone surrogates); asking ``json`` on its failures keeps every answer (and
    error code) what it was before orjson, at no cost to valid frames."""
    try:
        return json.loads(frame)
    except (ValueError, RecursionError):
        # RecursionError: absurdly deep nesting; json raises it, not ValueError.
        raise ProtocolError("bad-json", "the frame is not valid JSON") from None


def dumps(message: dict[str, Any]) -> bytes:
    """A server message as the UTF-8 JSON text of a frame (serialised once)."""
    try:
        return orjson.dumps(message)
    except TypeError:  # e.g. an integer beyond 64 bits from a bot: json copes
        return json.dumps(message, separators=(",", ":")).encode()


def parse_client_message(frame: str | bytes) -> ClientMessage:
    """Parse one text frame into a typed message, or raise :class:`ProtocolError`."""
    if isinstance(frame, bytes):
        try:
            frame = frame.decode("utf-8")
        except UnicodeDecodeError:
            raise ProtocolError("bad-json", "the frame is not UTF-8 text") from None
    try:
        obj: Any = orjson.loads(frame)
    except orjson.JSONDecodeError:
        obj = _UNPARSED
    if type(obj) is dict:
        msg_type = obj.get("type")
        fast = _FAST_PARSERS.get(msg_type) if type(msg_type) is str else None
        if fast is not None:
            message = fast(obj)
            if message is not None:
                return message
    # Everything else takes the generic path, which gives every error.
    # Only frames with many brackets pay for the nesting scan.
    if frame.count("[") + frame.count("{") > MAX_NESTING and nesting_depth(frame) > MAX_NESTING:
        raise ProtocolError("bad-json", f"the JSON nests deeper than {MAX_NESTING}")
    if obj is _UNPARSED:
        obj = _loads_slow(frame)
    if not isinstance(obj, dict):
        raise ProtocolError("not-an-object", "a message must be a JSON object")
    msg_type = obj.get("type")
    parser = _PARSERS.get(msg_type) if isinstance(msg_type, str) else None
    if parser is None:
        shown = msg_type if isinstance(msg_type, str) and len(msg_type) <= 32 else "?"
        raise ProtocolError(
            "unknown-type",
            f"unknown message type {shown!r}; expected one of {', '.join(sorted(MESSAGE_TYPES))}",
        )
    try:
        return parser(obj)
    except ProtocolError as exc:
        exc.message_type = msg_type
        raise


_UNPARSED = object()


_ROUTED_TYPES = frozenset({"offer", "answer", "candidate", "close"})


def parse_delivered(payload: dict[str, Any], recipient: str) -> Delivered:
    """A routed payload (as :func:`routed_payload` builds it) back into a typed
    message for ``recipient``; raises :class:`ProtocolError`. Services use it
    so that nothing deeper than this module reads a raw dict."""
    sender = payload.get("username")
    if not is_valid_username(sender):
        raise ProtocolError("invalid-field", "a routed message names no valid sender")
    kind = payload.get("type")
    if kind not in _ROUTED_TYPES:
        raise ProtocolError("unknown-type", f"{kind!r} is not a routed message type")
    message = _PARSERS[kind]({**payload, "otherUsername": recipient})
    return Delivered(sender, message)


# -- Server messages -----------------------------------------------------------


def error_message(code: str, message: str) -> dict[str, Any]:
    return {"type": "error", "code": code, "message": message}


def login_ok(username: str, users: list[str]) -> dict[str, Any]:
    return {"type": "login", "success": True, "username": username, "users": users}


def login_failed(code: str, message: str) -> dict[str, Any]:
    return {"type": "login", "success": False, "error": code, "message": message}


def presence_snapshot(users: list[str]) -> dict[str, Any]:
    return {"type": "presence", "users": users}


def presence_delta(joined: list[str], left: list[str]) -> dict[str, Any]:
    return {"type": "presence", "joined": joined, "left": left}
