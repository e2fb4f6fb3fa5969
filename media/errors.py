"""The one exception root, and the media layer's own errors.

Every error the project raises on purpose derives from :class:`CallbotError`,
so an embedder can tell our refusals from bugs with one ``except``. The root
lives here, at the bottom of the import graph (media is what every other
package writes through), and each error is defined where it belongs::

    CallbotError                        media.errors
    ├── InvalidState                    media.errors: our own code called something in a
    │                                   state that forbids it (a bug, never a peer's doing);
    │                                   also a RuntimeError
    ├── MediaError                      media.errors
    │   └── InvalidOptionError          a RecordingOptions field is out of range (also ValueError)
    ├── SignalingError                  signaling.protocol
    │   ├── ProtocolError               a client broke the wire protocol; .code goes back to it
    │   └── RegistryUnavailable         signaling.registry: Redis cannot be reached right now
    ├── PhotoError                      photos.errors: answered with photo-error (.code, .http_status)
    │   ├── PeerError                   the peer broke a rule (4xx; the tree is in photos.errors)
    │   └── ServerError                 we failed (5xx)
    ├── AuthError                       webapp.auth: a missing, forged or expired token (401)
    ├── UnsupportedAiortcError          peer.compat: the installed aiortc/aioice do not fit our hooks
    ├── PortsExhausted                  peer.compat: no free UDP port in --rtc-ports (ports-exhausted)
    ├── TestsBusy                       peer.conntest: every connection-test slot is taken (503)
    ├── BadOffer                        peer.call: an offer the bot cannot answer (bad-offer); also ValueError
    ├── SessionRefused                  peer.whip: no WHIP/WHEP session now (.code, .retry_after: HTTP 503)
    ├── SdpFragError                    peer.sdpfrag: a trickle-ice-sdpfrag body that does not parse (400);
    │                                   also ValueError
    └── BotError                        peer.api: raised by a bot to say no
        ├── RefuseCall                  refuse an incoming call (the caller gets .code)
        └── RefusePhoto                 refuse a photo (the sender gets photo-error .code)

``tests/test_errors.py`` checks this drawing against the classes.
"""

from __future__ import annotations

import enum


class CallbotError(Exception):
    """Root of every error raised on purpose."""


class InvalidState(CallbotError, RuntimeError):
    """An operation was called in a state that does not allow it.

    Names the operation and the state found (like h11's LocalProtocolError):
    it is our own code's mistake, never something a peer can cause, so
    nothing answers it on the wire.
    """

    def __init__(self, operation: str, state: object) -> None:
        shown = state.value if isinstance(state, enum.Enum) else state
        super().__init__(f"{operation} in state {shown}")
        self.operation = operation
        self.state = state


class MediaError(CallbotError):
    """Root of the media layer's errors."""


class InvalidOptionError(MediaError, ValueError):
    """A recording option is out of range."""
