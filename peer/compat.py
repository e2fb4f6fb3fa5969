"""Every private aiortc and aioice hook we rely on, in one place.

aiortc and aioice have no public API for what this module does, so it reaches
into their internals. Each hook is written against the versions in
:data:`TESTED` and checked here, once, at import: the versions, and the
private names each hook needs. A mismatch raises
:class:`UnsupportedAiortcError` naming what is missing, instead of the server
silently recording nothing or gathering on the wrong interfaces. Set
``CALLBOT_ALLOW_UNTESTED_AIORTC=1`` to try other versions whose structure
still passes the checks.

The hooks:

- **Encoded frames off a receiver** (:func:`hook_decoder_queue`):
  ``RTCRtpReceiver`` reassembles each frame on the event loop and hands it to
  a decoder thread through the private ``queue.Queue``
  ``_RTCRtpReceiver__decoder_queue``. We replace that attribute with a proxy
  whose ``put()`` gives every ``(codec, JitterFrame)`` to a callback. The
  decoder thread holds the original queue (it got it in ``receive()``), so
  the callback may forward items to it, or starve it.
- **Keyframe requests**: :func:`send_pli` sends an RTCP PLI on a receiver
  (``_send_rtcp_pli``); :func:`on_keyframe_request` wraps a sender's
  ``_send_keyframe`` (called when the far end sends PLI or FIR), for tracks
  that relay encoded frames and cannot make a keyframe themselves.
- **Host addresses** (:func:`restrict_host_addresses`): aioice gathers host
  candidates from every interface but 127.0.0.1
  (``aioice.ice.get_host_addresses``), and has no per-connection option; the
  module function is replaced for the process (``--ice-address``).
- **Linear SCTP reassembly** (:func:`install_sctp_speedup`): aiortc's
  ``InboundStream.pop_messages`` rescans every fragment held on every DATA
  chunk (quadratic in the message size; a third of the bot's CPU for a 2 MB
  photo). We count held LAST_FRAG fragments per stream and skip the scan
  while there are none; when there is one, aiortc's own ``pop_messages``
  runs unchanged, so the output is identical by construction (and tested
  against the original on random chunk sequences).
"""

from __future__ import annotations

import inspect
import ipaddress
import logging
import os
import queue
from typing import Any, Callable, Iterator

import aioice
import aioice.ice
import aiortc
from aiortc import rtcrtpreceiver, rtcsctptransport
from aiortc.jitterbuffer import JitterFrame
from aiortc.rtcrtpreceiver import RTCRtpReceiver
from aiortc.rtcrtpsender import RTCRtpSender

from media.errors import CallbotError

logger = logging.getLogger(__name__)

#: The versions every hook below was read against and tested with.
TESTED = {"aiortc": "1.16.0", "aioice": "0.13.0"}
ALLOW_UNTESTED_ENV = "CALLBOT_ALLOW_UNTESTED_AIORTC"


class UnsupportedAiortcError(CallbotError):
    """The installed aiortc or aioice does not fit the hooks in this module."""


_DECODER_QUEUE = "_RTCRtpReceiver__decoder_queue"
_JITTER_BUFFER = "_RTCRtpReceiver__jitter_buffer"


def _code_names(func: Any) -> tuple[str, ...]:
    return getattr(getattr(func, "__code__", None), "co_names", ())


def check_versions() -> None:
    """Raise :class:`UnsupportedAiortcError` unless every hook fits (the one check)."""
    found = {"aiortc": getattr(aiortc, "__version__", "?"), "aioice": getattr(aioice, "__version__", "?")}
    if found != TESTED and not os.environ.get(ALLOW_UNTESTED_ENV):
        raise UnsupportedAiortcError(
            f"peer.compat hooks private parts of aiortc {TESTED['aiortc']} and aioice {TESTED['aioice']}, "
            f"but aiortc {found['aiortc']} and aioice {found['aioice']} are installed; pin them "
            f"(pyproject.toml) or set {ALLOW_UNTESTED_ENV}=1 to try anyway"
        )
    problems: list[str] = []
    # Receiver: the frame goes to the decoder with self.__decoder_queue.put(...)
    # in _handle_rtp_packet, after the timestamp mapper unwrapped it.
    handle = _code_names(getattr(RTCRtpReceiver, "_handle_rtp_packet", None))
    for name in (_DECODER_QUEUE, "put", "_RTCRtpReceiver__timestamp_mapper"):
        if name not in handle:
            problems.append(f"RTCRtpReceiver._handle_rtp_packet no longer uses {name}")
    if _DECODER_QUEUE not in _code_names(getattr(RTCRtpReceiver, "__init__", None)):
        problems.append(f"RTCRtpReceiver.__init__ no longer creates {_DECODER_QUEUE}")
    if _DECODER_QUEUE not in _code_names(getattr(RTCRtpReceiver, "receive", None)):
        problems.append("RTCRtpReceiver.receive no longer hands the queue to the decoder")
    worker = getattr(rtcrtpreceiver, "decoder_worker", None)
    if worker is None or list(inspect.signature(worker).parameters)[:2] != ["loop", "input_q"]:
        problems.append("aiortc.rtcrtpreceiver.decoder_worker(loop, input_q, ...) is gone")
    for method in ("_send_rtcp_pli", "getSynchronizationSources"):
        if not callable(getattr(RTCRtpReceiver, method, None)):
            problems.append(f"RTCRtpReceiver.{method} is gone")
    if "_send_keyframe" not in _code_names(getattr(RTCRtpSender, "_handle_rtcp_packet", None)):
        problems.append("RTCRtpSender._handle_rtcp_packet no longer calls _send_keyframe")
    probe = JitterFrame(data=b"", timestamp=0)
    if not (hasattr(probe, "data") and hasattr(probe, "timestamp")):
        problems.append("JitterFrame no longer has data and timestamp")
    # aioice: the module function gathering uses.
    if not callable(getattr(aioice.ice, "get_host_addresses", None)):
        problems.append("aioice.ice.get_host_addresses is gone")
    # aiortc SCTP: the three methods the speed-up wraps.
    for name in ("add_chunk", "pop_messages", "prune_chunks"):
        if not callable(getattr(rtcsctptransport.InboundStream, name, None)):
            problems.append(f"aiortc InboundStream.{name} is gone")
    if not hasattr(rtcsctptransport, "SCTP_DATA_LAST_FRAG"):
        problems.append("aiortc.rtcsctptransport.SCTP_DATA_LAST_FRAG is gone")
    if problems:
        raise UnsupportedAiortcError(
            f"aiortc {found['aiortc']} / aioice {found['aioice']} do not fit peer.compat: " + "; ".join(problems)
        )


check_versions()


# -- Receiver: encoded frames and keyframe requests ---------------------------------

#: An item aiortc puts on the decoder queue: ``(codec, JitterFrame)``, or None
#: when the receiver stops (the track must then end).
DecoderItem = Any


class _DecoderQueueProxy:
    """Takes the place of a receiver's decoder queue."""

    def __init__(self, on_item: Callable[[DecoderItem], None], inner: queue.Queue) -> None:
        self._on_item = on_item
        self._inner = inner

    def put(self, item: Any, block: bool = True, timeout: float | None = None) -> None:
        self._on_item(item)

    def __getattr__(self, name: str) -> Any:
        # Anything but put() (qsize, get, ...) is the original queue's.
        return getattr(self._inner, name)


def hook_decoder_queue(receiver: RTCRtpReceiver, on_item: Callable[[DecoderItem], None]) -> queue.Queue:
    """Give every item aiortc hands ``receiver``'s decoder to ``on_item`` instead.

    Returns the original queue: put an item there to have aiortc decode it
    (``track.recv()`` then yields it decoded). ``on_item`` runs on the event
    loop. Call once per receiver.
    """
    inner = getattr(receiver, _DECODER_QUEUE, None)
    if isinstance(inner, _DecoderQueueProxy):
        raise ValueError("this receiver's decoder queue is already hooked")
    if not isinstance(inner, queue.Queue):
        raise UnsupportedAiortcError(f"receiver.{_DECODER_QUEUE} is {type(inner).__name__}, expected queue.Queue")
    setattr(receiver, _DECODER_QUEUE, _DecoderQueueProxy(on_item, inner))
    return inner


def jitter_prefetch(receiver: RTCRtpReceiver) -> int:
    """How many frames the receiver's jitter buffer holds back before releasing one."""
    return int(getattr(getattr(receiver, _JITTER_BUFFER, None), "_prefetch", 0) or 0)


async def send_pli(receiver: RTCRtpReceiver, media_ssrc: int) -> None:
    """Send an RTCP PLI for ``media_ssrc`` (RFC 4585 section 6.3.1)."""
    await receiver._send_rtcp_pli(media_ssrc)


def on_keyframe_request(sender: RTCRtpSender, callback: Callable[[], None]) -> None:
    """Call ``callback`` whenever ``sender``'s far end asks for a keyframe
    (RTCP PLI or FIR, RFC 4585 section 6.3.1, RFC 5104 section 4.3.1)."""
    original = sender._send_keyframe

    def send_keyframe() -> None:
        original()
        callback()

    # An instance attribute shadows the method: aiortc calls self._send_keyframe().
    sender._send_keyframe = send_keyframe  # type: ignore[method-assign]


# -- aioice: host addresses -----------------------------------------------------------

_original_get_host_addresses = aioice.ice.get_host_addresses


def restrict_host_addresses(addresses: tuple[str, ...]) -> None:
    """Gather host candidates only from ``addresses`` (empty: leave as is).

    The setting belongs to the process, like the ``--ice-address`` flag it
    comes from, and stays until :func:`restore_host_addresses`.
    """
    if not addresses:
        return
    parsed = [ipaddress.ip_address(a) for a in addresses]  # ValueError on junk

    def get_host_addresses(use_ipv4: bool, use_ipv6: bool) -> list[str]:
        return [str(a) for a in parsed if (a.version == 4 and use_ipv4) or (a.version == 6 and use_ipv6)]

    aioice.ice.get_host_addresses = get_host_addresses
    logger.info("ICE host candidates restricted to %s", ", ".join(map(str, parsed)))


def restore_host_addresses() -> None:
    aioice.ice.get_host_addresses = _original_get_host_addresses


# -- aiortc SCTP: linear reassembly ---------------------------------------------------

_LAST_FRAG = rtcsctptransport.SCTP_DATA_LAST_FRAG
_COUNT = "_callbot_last_frags"
_original_add_chunk = rtcsctptransport.InboundStream.add_chunk
_original_pop_messages = rtcsctptransport.InboundStream.pop_messages
_original_prune_chunks = rtcsctptransport.InboundStream.prune_chunks


def _recount(stream: Any) -> int:
    count = sum(1 for chunk in stream.reassembly if chunk.flags & _LAST_FRAG)
    setattr(stream, _COUNT, count)
    return count


def _add_chunk(self: Any, chunk: Any) -> None:
    _original_add_chunk(self, chunk)
    count = getattr(self, _COUNT, None)
    if count is None:
        _recount(self)
    elif chunk.flags & _LAST_FRAG:
        setattr(self, _COUNT, count + 1)


def _pop_messages(self: Any) -> Iterator[tuple[int, int, bytes]]:
    # A message can only be popped once a LAST_FRAG fragment is held (every
    # yield in aiortc's pop_messages is on such a fragment).
    count = getattr(self, _COUNT, None)
    if count is None:
        count = _recount(self)
    if count == 0:
        return
    try:
        yield from _original_pop_messages(self)
    finally:
        _recount(self)


def _prune_chunks(self: Any, tsn: int) -> int:
    try:
        return _original_prune_chunks(self, tsn)
    finally:
        _recount(self)


def install_sctp_speedup() -> None:
    """Make data-channel reassembly linear (idempotent, process-wide)."""
    cls = rtcsctptransport.InboundStream
    if cls.pop_messages is _pop_messages:
        return
    cls.add_chunk = _add_chunk  # type: ignore[method-assign]
    cls.pop_messages = _pop_messages  # type: ignore[method-assign]
    cls.prune_chunks = _prune_chunks  # type: ignore[method-assign]
    logger.debug("aiortc SCTP reassembly speed-up installed")


def uninstall_sctp_speedup() -> None:
    cls = rtcsctptransport.InboundStream
    cls.add_chunk = _original_add_chunk  # type: ignore[method-assign]
    cls.pop_messages = _original_pop_messages  # type: ignore[method-assign]
    cls.prune_chunks = _original_prune_chunks  # type: ignore[method-assign]
