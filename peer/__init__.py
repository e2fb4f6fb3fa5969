"""The aiortc side: calls to the bot, the bot runtime, and the bot API.

What a bot author imports::

    from peer import Bot, Call, CallSummary, Photo, RefuseCall, RefusePhoto

Modules: ``api`` (the public bot API), ``runtime`` (the signaling endpoint that
runs a bot), ``call`` (one call's peer connection and life cycle),
``callmedia`` (its tracks, recording, feeds and photos), ``channels`` (app
data channels), ``hooks`` (bounded delivery to the bot), ``decoded`` (shared
decoding and transform tracks), ``tap``/``echo`` (encoded frames), ``bots``
(the built-in bots), ``ice``/``sdp`` (ICE servers, SDP helpers), ``compat``
(every private aiortc/aioice hook, with the one version check).
"""

# First: peer.compat acts before cryptography's OpenSSL is loaded (its DTLS
# interop may add a group to what OpenSSL offers; see peer/compat.py).
from peer import compat as _compat  # noqa: F401,I001

from peer.api import Bot, BotError, Call, CallSummary, Photo, RefuseCall, RefusePhoto

__all__ = ["Bot", "BotError", "Call", "CallSummary", "Photo", "RefuseCall", "RefusePhoto"]
