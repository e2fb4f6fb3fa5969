"""WHIP sessions (RFC 9725) on the bot runtime: what the HTTP side holds.

A WHIP publisher's session is a :class:`peer.call.CallSession` with no
signaling (``source="whip"``): recorded exactly like a call to the bot, with
the bot's hooks, counted against ``--max-calls``. The HTTP resource that
names it (``/whip/<id>``) is a :class:`WhipSession`: an unguessable id (the
call id is visible in the gallery, so it cannot be the handle that ends a
publish), the ETag of its ICE session (RFC 9725 section 4.3.1) and the ICE
credentials a trickle PATCH must repeat.
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from aiortc import sdp

from media.errors import CallbotError

if TYPE_CHECKING:
    from peer.call import CallSession

#: Without token auth a publisher has no name; the manifest's caller is this.
ANONYMOUS = "anonymous"
#: What a publisher may tell us about itself that we keep (truncated, printable).
_MAX_TEXT = 200


class SessionRefused(CallbotError):
    """The server cannot take a session now: ``code`` says why, and
    ``retry_after`` (seconds) when trying again later may work (HTTP 503)."""

    def __init__(self, code: str, message: str, retry_after: int | None = None) -> None:
        super().__init__(message)
        self.code = code
        self.message = message
        self.retry_after = retry_after


def new_resource_id() -> str:
    return secrets.token_urlsafe(18)


def new_etag() -> str:
    # RFC 9110 section 8.8.3: a strong entity tag is a quoted opaque string.
    return f'"{secrets.token_hex(8)}"'


def offer_ice_ufrag(offer_sdp: str) -> str | None:
    """The offer's ICE username fragment (a trickle PATCH repeats it)."""
    parsed = sdp.SessionDescription.parse(offer_sdp)
    for media in parsed.media:
        if media.ice.usernameFragment:
            return media.ice.usernameFragment
    return None


def clean_text(value: Any) -> str | None:
    """A client-supplied string as the manifest may keep it: printable, short."""
    if not isinstance(value, str):
        return None
    text = "".join(c for c in value if c.isprintable())[:_MAX_TEXT]
    return text or None


def offer_software(offer_sdp: str) -> str | None:
    """Who made the offer, as its ``o=`` username and ``s=`` line say
    (``FFmpeg``/``FFmpegPublishSession``; browsers and GStreamer say ``-``)."""
    origin = session_name = None
    for line in offer_sdp.splitlines()[:8]:
        if line.startswith("o=") and origin is None:
            origin = line[2:].split(" ", 1)[0]
        elif line.startswith("s=") and session_name is None:
            session_name = line[2:].strip()
    parts = [p for p in (origin, session_name) if p and p != "-"]
    return clean_text(" ".join(parts)) if parts else None


@dataclass
class WhipSession:
    """A WHIP resource: ``/whip/<id>`` -> the call session it publishes into."""

    session: CallSession
    publisher: str
    id: str = field(default_factory=new_resource_id)
    etag: str = field(default_factory=new_etag)
    ice_ufrag: str | None = None

    @property
    def call_id(self) -> str:
        return self.session.id
