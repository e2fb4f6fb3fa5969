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
- **ICE ports in a range** (:func:`rtc_port_range`, ``--rtc-ports``): aioice
  binds every ICE socket on a port the kernel picks (aioice issue 47). Inside
  ``rtc_port_range(...)``, ``aioice.ice`` and ``aioice.turn`` see an asyncio
  whose loop binds the host sockets and the TURN/UDP socket on a free port of
  the range; a gathering that cannot get one raises :class:`PortsExhausted`.
- **Every TURN URL** (:func:`install_multi_turn`): aiortc hands aioice only
  the first TURN URL (``connection_kwargs``), so a bot whose UDP to the relay
  is blocked never tries TCP. A peer connection given several TURN URLs
  allocates on all of them, in parallel.
- **The selected candidate pair** (:func:`selected_pair`, :func:`ice_rtt`,
  :func:`transport_counters`): aiortc's ``getStats()`` has no candidate-pair
  stats; the nominated pair lives in aioice's ``Connection._nominated``.
- **DTLS with WHIP publishers** (:func:`install_dtls_interop`, section "DTLS
  interop" at the end; one early step at the top): aiortc builds every DTLS
  context in the private ``RTCCertificate._create_ssl_context`` with
  ECDHE-ECDSA suites and OpenSSL's default groups, which FFmpeg's WHIP muxer
  (a P-224 certificate) and GStreamer's webrtcbin (an RSA certificate)
  cannot complete a handshake with. Chosen by the installed cryptography's
  major version, the second check of this module.
"""

from __future__ import annotations

import asyncio
import contextlib
import contextvars
import errno
import importlib.metadata
import inspect
import ipaddress
import logging
import os
import queue
import random
import socket
import sys
import tempfile
import time
import types
from typing import Any, Callable, Iterator

# -- DTLS interop, part 1 of 2: before aiortc loads OpenSSL ------------------------
#
# With cryptography < 47 (OpenSSL 3.5) FFmpeg's P-224 certificate is accepted
# once P-224 is among the groups our DTLS client offers. Neither cryptography
# 46 nor pyOpenSSL 26.2 can set groups on a context, so the one way is an
# OpenSSL configuration read while cryptography's private OpenSSL
# initialises, which happens once per process at the first import of its
# Rust extension (``import aiortc`` below does it). Hence this step runs
# here, above that import; the rest of the DTLS hooks are at the end.

#: cryptography 47 bundles OpenSSL 4.0, whose TLS group table has no P-224.
FIRST_CRYPTOGRAPHY_WITHOUT_P224 = 47
#: OpenSSL 3.5's default groups for (D)TLS 1.2, P-224 last so it is never preferred.
_P224_GROUPS = "X25519:P-256:X448:P-384:P-521:P-224"
_CRYPTOGRAPHY_RUST = "cryptography.hazmat.bindings._rust"


def cryptography_major() -> int:
    return int(importlib.metadata.version("cryptography").split(".")[0])


def _offer_p224_group() -> str:
    """Make cryptography's OpenSSL offer P-224 (cryptography < 47 only).

    Returns ``"set"``, or why not. Checked afterwards on a real ClientHello
    (:func:`offered_groups`) before anything relies on it.
    """
    if cryptography_major() >= FIRST_CRYPTOGRAPHY_WITHOUT_P224:
        return f"cryptography {cryptography_major()} bundles OpenSSL 4 (no P-224 in TLS)"
    if _CRYPTOGRAPHY_RUST in sys.modules:
        return "cryptography's OpenSSL was loaded before peer.compat (import peer first)"
    if "OPENSSL_CONF" in os.environ:
        return f"OPENSSL_CONF is set; add 'Groups = {_P224_GROUPS}' to its system_default section"
    import ssl

    # The stdlib's OpenSSL (the system's) reads its own configuration first,
    # so it never sees ours.
    ssl.create_default_context()
    fd, path = tempfile.mkstemp(prefix="callbot-dtls-", suffix=".cnf")
    with os.fdopen(fd, "w") as f:
        f.write(
            "openssl_conf = openssl_init\n[openssl_init]\nssl_conf = ssl_sect\n"
            "[ssl_sect]\nsystem_default = system_default_sect\n"
            f"[system_default_sect]\nGroups = {_P224_GROUPS}\n"
        )
    os.environ["OPENSSL_CONF"] = path
    try:
        from OpenSSL import SSL

        SSL.Context(SSL.DTLS_METHOD)  # initialises OpenSSL: the file is read now, once
    finally:
        del os.environ["OPENSSL_CONF"]
        os.unlink(path)
    return "set"


_P224_STEP = _offer_p224_group()

import aioice  # noqa: E402  (after the step above, on purpose)
import aioice.candidate  # noqa: E402
import aioice.ice  # noqa: E402
import aioice.turn  # noqa: E402
import aiortc  # noqa: E402
from aiortc import rtcdtlstransport, rtcicetransport, rtcrtpreceiver, rtcsctptransport  # noqa: E402
from aiortc.jitterbuffer import JitterFrame  # noqa: E402
from aiortc.rtcrtpreceiver import RTCRtpReceiver  # noqa: E402
from aiortc.rtcrtpsender import RTCRtpSender  # noqa: E402

from media.errors import CallbotError  # noqa: E402

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
    problems += _ice_hook_problems()
    # DTLS: the context factory the interop hooks wrap, and where start() calls it.
    cert_cls = getattr(rtcdtlstransport, "RTCCertificate", None)
    if not callable(getattr(cert_cls, "_create_ssl_context", None)):
        problems.append("aiortc RTCCertificate._create_ssl_context is gone")
    # (Unwrapped: once install_dtls_interop ran, start is our wrapper.)
    dtls_start = getattr(rtcdtlstransport.RTCDtlsTransport, "start", None)
    if "_create_ssl_context" not in _code_names(getattr(dtls_start, "__wrapped__", dtls_start)):
        problems.append("aiortc RTCDtlsTransport.start no longer calls _create_ssl_context")
    if "_send" not in _code_names(getattr(rtcdtlstransport.RTCDtlsTransport, "_write_ssl", None)):
        problems.append("aiortc RTCDtlsTransport._write_ssl no longer sends with transport._send")
    if "_send" not in _code_names(getattr(aiortc.rtcicetransport.RTCIceTransport, "__init__", None)):
        problems.append("aiortc RTCIceTransport.__init__ no longer sets _send")
    if "_RTCDtlsTransport__rx_bytes" not in _code_names(getattr(rtcdtlstransport.RTCDtlsTransport, "_recv_next", None)):
        problems.append("aiortc RTCDtlsTransport._recv_next no longer counts __rx_bytes")
    if problems:
        raise UnsupportedAiortcError(
            f"aiortc {found['aiortc']} / aioice {found['aioice']} do not fit peer.compat: " + "; ".join(problems)
        )


def _source(func: Any) -> str:
    try:
        return inspect.getsource(func)
    except (OSError, TypeError):
        return ""


def _ice_hook_problems() -> list[str]:
    """What the ICE hooks below (port range, every TURN URL, selected pair) need."""
    problems: list[str] = []
    Connection = aioice.ice.Connection

    def original(func: Any) -> Any:
        # Our wrappers (installed later) keep the function they wrap.
        return inspect.unwrap(func) if func is not None else None

    # Port range: the two places aioice opens its sockets, both through
    # asyncio.get_running_loop() of the module they are in.
    gather = _source(original(getattr(Connection, "get_component_candidates", None)))
    if "asyncio.get_running_loop()" not in gather or "local_addr=(address, 0)" not in gather:
        problems.append("aioice Connection.get_component_candidates no longer binds with "
                        "asyncio.get_running_loop().create_datagram_endpoint(local_addr=(address, 0))")
    turn_endpoint = _source(getattr(aioice.turn, "create_turn_endpoint", None))
    if "asyncio.get_running_loop()" not in turn_endpoint or "remote_addr=server_addr" not in turn_endpoint:
        problems.append("aioice turn.create_turn_endpoint no longer opens its UDP socket with remote_addr=server_addr")
    for module in (aioice.ice, aioice.turn):
        if not callable(getattr(getattr(module, "asyncio", None), "get_running_loop", None)):
            problems.append(f"{module.__name__} no longer imports asyncio as a module")
    if "_local_candidates" not in _code_names(original(getattr(Connection, "gather_candidates", None))):
        problems.append("aioice Connection.gather_candidates no longer fills _local_candidates")
    if "_protocols" not in _code_names(original(getattr(Connection, "get_component_candidates", None))):
        problems.append("aioice Connection.get_component_candidates no longer fills _protocols")
    # Every TURN URL: aiortc keeps the first (connection_kwargs); aioice's
    # relayed_candidate allocates one.
    relayed = getattr(aioice.ice, "relayed_candidate", None)
    wanted = {"component", "hide_related_address", "protocol_factory", "turn_server", "turn_username",
              "turn_password", "turn_ssl", "turn_transport"}
    if relayed is None or not wanted <= set(inspect.signature(relayed).parameters):
        problems.append("aioice.ice.relayed_candidate(component=..., turn_server=..., ...) is gone")
    for name in ("connection_kwargs", "parse_stun_turn_uri"):
        if not callable(getattr(rtcicetransport, name, None)):
            problems.append(f"aiortc.rtcicetransport.{name} is gone")
    if "_connection" not in _code_names(original(getattr(rtcicetransport.RTCIceGatherer, "__init__", None))):
        problems.append("aiortc RTCIceGatherer.__init__ no longer creates _connection")
    for name in ("turn_server", "turn_ssl", "turn_transport"):
        if name not in _code_names(getattr(Connection, "__init__", None)):
            problems.append(f"aioice Connection.__init__ no longer sets {name}")
    # Selected pair: Connection._nominated, a consent-style request for RTT,
    # the relay's transport to its TURN server, the DTLS byte counters.
    if "_nominated" not in _code_names(getattr(Connection, "__init__", None)):
        problems.append("aioice Connection._nominated is gone")
    if not callable(getattr(Connection, "build_request", None)):
        problems.append("aioice Connection.build_request is gone")
    if "_TurnTransport__inner_protocol" not in _code_names(getattr(aioice.turn.TurnTransport, "__init__", None)):
        problems.append("aioice TurnTransport.__inner_protocol is gone")
    from aiortc.rtcdtlstransport import RTCDtlsTransport

    if not callable(getattr(RTCDtlsTransport, "_get_stats", None)):
        problems.append("aiortc RTCDtlsTransport._get_stats is gone")
    return problems


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


# -- aioice: ICE sockets inside a port range (--rtc-ports) --------------------------
#
# aioice 0.13 opens sockets in two places, both through
# ``asyncio.get_running_loop()`` of its own module: one UDP socket per host
# address in ``Connection.get_component_candidates`` (``local_addr=(address,
# 0)``; the same socket sends the STUN requests for server-reflexive
# candidates and every connectivity check), and the socket towards a TURN
# server in ``turn.create_turn_endpoint`` (UDP: ``remote_addr=server_addr``).
# ``aioice.ice.asyncio`` and ``aioice.turn.asyncio`` are replaced by a module
# that forwards everything to asyncio, except that inside
# ``rtc_port_range(...)`` its ``get_running_loop()`` is a proxy whose
# ``create_datagram_endpoint`` binds the socket itself on a free port of the
# range. Everywhere else (the callers in tests, anything outside the block)
# aioice gets the real loop. TCP connections to a TURN server keep a kernel
# port: they are outgoing, which stateful firewalls let back in.


class PortsExhausted(CallbotError):
    """No free UDP port in ``--rtc-ports`` for a new peer connection."""

    code = "ports-exhausted"

    def __init__(self, ports: tuple[int, int], details: list[str]) -> None:
        self.ports = ports
        self.details = details
        super().__init__(f"no free UDP port in --rtc-ports {ports[0]}-{ports[1]}: " + "; ".join(details))


_RANGE: contextvars.ContextVar[tuple[int, int] | None] = contextvars.ContextVar("callbot_rtc_ports", default=None)
_RANGE_FAILURES: contextvars.ContextVar[list[str] | None] = contextvars.ContextVar(
    "callbot_rtc_port_failures", default=None)


class _NoPortInRange(OSError):
    """Raised inside aioice: an OSError, so aioice's own handling applies (it
    skips that address, or the TURN allocation fails) and nothing leaks."""


def _bind_in_range(ports: tuple[int, int], family: int, host: str) -> socket.socket:
    low, high = ports
    start = random.randint(low, high)  # spread calls over the range
    for port in [*range(start, high + 1), *range(low, start)]:
        sock = socket.socket(family, socket.SOCK_DGRAM)
        try:
            sock.bind((host, port))
        except OSError as exc:
            sock.close()
            if exc.errno in (errno.EADDRINUSE, errno.EACCES):
                continue
            raise
        sock.setblocking(False)
        return sock
    message = f"every port in {low}-{high} is taken on {host}"
    failures = _RANGE_FAILURES.get()
    if failures is not None:
        failures.append(message)
    raise _NoPortInRange(errno.EADDRINUSE, message)


def _family_of(host: str) -> int:
    return socket.AF_INET6 if ipaddress.ip_address(host.split("%")[0]).version == 6 else socket.AF_INET


class _RangeLoop:
    """The running loop, except that UDP sockets the kernel would place are
    bound in the range."""

    def __init__(self, loop: asyncio.AbstractEventLoop, ports: tuple[int, int]) -> None:
        self._loop = loop
        self._ports = ports

    def __getattr__(self, name: str) -> Any:
        return getattr(self._loop, name)

    async def create_datagram_endpoint(self, protocol_factory: Any, local_addr: Any = None,
                                       remote_addr: Any = None, **kwargs: Any) -> Any:
        if kwargs.get("sock") is not None or (local_addr is not None and local_addr[1] != 0):
            return await self._loop.create_datagram_endpoint(
                protocol_factory, local_addr=local_addr, remote_addr=remote_addr, **kwargs)
        if local_addr is not None:  # a host candidate: (address, 0)
            sock = _bind_in_range(self._ports, _family_of(local_addr[0]), local_addr[0])
        else:  # the socket towards a TURN server
            infos = await self._loop.getaddrinfo(remote_addr[0], remote_addr[1], type=socket.SOCK_DGRAM)
            family, _, _, _, address = infos[0]
            sock = _bind_in_range(self._ports, family, "::" if family == socket.AF_INET6 else "0.0.0.0")
            try:
                sock.connect(address)  # UDP: sends nothing
            except BaseException:
                sock.close()
                raise
        return await self._loop.create_datagram_endpoint(protocol_factory, sock=sock, **kwargs)


class _AsyncioShim(types.ModuleType):
    """Stands in for ``asyncio`` inside ``aioice.ice`` and ``aioice.turn``."""

    def __init__(self) -> None:
        super().__init__("asyncio")

    def __getattr__(self, name: str) -> Any:
        return getattr(asyncio, name)

    @staticmethod
    def get_running_loop() -> Any:
        loop = asyncio.get_running_loop()
        ports = _RANGE.get()
        return loop if ports is None else _RangeLoop(loop, ports)


_original_gather_candidates = aioice.ice.Connection.gather_candidates


async def _gather_candidates(self: aioice.ice.Connection) -> None:
    ports = _RANGE.get()
    if ports is None:
        return await _original_gather_candidates(self)
    failures: list[str] = []
    token = _RANGE_FAILURES.set(failures)  # the tasks aioice starts inherit it
    try:
        await _original_gather_candidates(self)
    finally:
        _RANGE_FAILURES.reset(token)
    if failures:
        # A partial gathering would give a call that never connects (aioice
        # skips an address it cannot bind): fail it whole, leaving no socket.
        for protocol in list(self._protocols):
            with contextlib.suppress(Exception):
                await protocol.close()
        self._protocols.clear()
        self._local_candidates.clear()
        raise PortsExhausted(ports, failures)


_gather_candidates.__wrapped__ = _original_gather_candidates  # type: ignore[attr-defined]


def _install_port_range_hook() -> None:
    if isinstance(aioice.ice.asyncio, _AsyncioShim):
        return
    shim = _AsyncioShim()
    aioice.ice.asyncio = shim  # type: ignore[attr-defined]
    aioice.turn.asyncio = shim  # type: ignore[attr-defined]
    aioice.ice.Connection.gather_candidates = _gather_candidates  # type: ignore[method-assign]
    logger.debug("aioice port-range hook installed")


def uninstall_port_range_hook() -> None:
    aioice.ice.asyncio = asyncio  # type: ignore[attr-defined]
    aioice.turn.asyncio = asyncio  # type: ignore[attr-defined]
    aioice.ice.Connection.gather_candidates = _original_gather_candidates  # type: ignore[method-assign]


@contextlib.contextmanager
def rtc_port_range(ports: tuple[int, int] | None) -> Iterator[None]:
    """Within the block, every UDP socket aioice opens for ICE (and in the
    tasks started from it) is bound to a port in ``ports`` (inclusive; None:
    the kernel's choice). Wrap ``setLocalDescription``: aiortc gathers there.
    A gathering that finds no free port raises :class:`PortsExhausted`."""
    if ports is None:
        yield
        return
    low, high = ports
    if not 0 < low <= high <= 65535:
        raise ValueError(f"bad port range {low}-{high}")
    _install_port_range_hook()
    token = _RANGE.set((low, high))
    try:
        yield
    finally:
        _RANGE.reset(token)


# -- aiortc/aioice: every TURN URL, not only the first ----------------------------------
#
# aiortc's connection_kwargs() keeps the first usable TURN URL and aioice's
# Connection takes one server. A bot given turn:...?transport=udp and
# turn:...?transport=tcp therefore never tries TCP where UDP is blocked. With
# the hook, a gatherer given more than one TURN URL keeps them all and its
# connection allocates on every one in parallel (RFC 8445 section 5.1.1.2
# lets an agent gather from several servers). Gathering ends when every
# allocation is done, or TURN_GRACE seconds after the first relay candidate
# (a blocked transport would otherwise hold every call for aioice's 5 s), or
# at aioice's own 5 s timeout. TCP and TLS relays get a lower local
# preference than UDP (RFC 8445 section 5.1.2.1), so UDP wins when it works.

#: Seconds gathering waits for the other TURN allocations once one relay candidate is in.
TURN_GRACE = 1.0
_TURN_ATTR = "_callbot_turn_servers"
_RELAY_LOCAL_PREF = {"udp": 65535, "tcp": 65535 - 1000, "tls": 65535 - 2000}
_original_gatherer_init = rtcicetransport.RTCIceGatherer.__init__
_original_get_component_candidates = aioice.ice.Connection.get_component_candidates


def turn_servers(ice_servers: list[Any]) -> list[dict[str, Any]]:
    """Every TURN URL of ``ice_servers`` (RTCIceServer) that aiortc could use, in order."""
    out: list[dict[str, Any]] = []
    for server in ice_servers:
        urls = server.urls if isinstance(server.urls, list) else [server.urls]
        for url in urls:
            if not url.startswith("turn"):
                continue
            parsed = rtcicetransport.parse_stun_turn_uri(url)
            # The same filters as aiortc's connection_kwargs.
            if parsed["scheme"] == "turn" and parsed["transport"] not in ("udp", "tcp"):
                continue
            if parsed["scheme"] == "turns" and parsed["transport"] != "tcp":
                continue
            if server.credentialType != "password":
                continue
            out.append({
                "url": url,
                "turn_server": (parsed["host"], parsed["port"]),
                "turn_ssl": parsed["scheme"] == "turns",
                "turn_transport": parsed["transport"],
                "turn_username": server.username,
                "turn_password": server.credential,
            })
    return out


def _gatherer_init(self: Any, iceServers: Any = None, *args: Any, **kwargs: Any) -> None:
    _original_gatherer_init(self, iceServers, *args, **kwargs)
    servers = turn_servers(iceServers if iceServers is not None else [])
    if len(servers) > 1:
        connection = self._connection
        setattr(connection, _TURN_ATTR, servers)
        connection.turn_server = None  # every allocation is ours now, the first included


async def _relay(connection: Any, component: int, server: dict[str, Any]) -> tuple[Any, Any]:
    candidate, protocol = await aioice.ice.relayed_candidate(
        component=component,
        hide_related_address=connection._transport_policy == aioice.ice.TransportPolicy.RELAY,
        protocol_factory=lambda: aioice.ice.StunProtocol(connection),
        turn_server=server["turn_server"],
        turn_username=server["turn_username"],
        turn_password=server["turn_password"],
        turn_ssl=server["turn_ssl"],
        turn_transport=server["turn_transport"],
    )
    kind = "tls" if server["turn_ssl"] else server["turn_transport"]
    candidate.foundation = aioice.candidate.candidate_foundation("relay", kind, candidate.host)
    candidate.priority = aioice.candidate.candidate_priority(component, "relay", _RELAY_LOCAL_PREF[kind])
    return candidate, protocol


async def _get_component_candidates(self: Any, component: int, addresses: list[str], timeout: int = 5) -> list[Any]:
    servers = getattr(self, _TURN_ATTR, None)
    if not servers:
        return await _original_get_component_candidates(self, component, addresses, timeout)
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    main = asyncio.ensure_future(_original_get_component_candidates(self, component, addresses, timeout))
    relays = [asyncio.ensure_future(_relay(self, component, server)) for server in servers]
    pending: set[asyncio.Future[Any]] = set(relays)
    first_relay: float | None = None
    try:
        while pending:
            limit = deadline if first_relay is None else min(deadline, first_relay + TURN_GRACE)
            if loop.time() >= limit:
                break
            done, pending = await asyncio.wait(pending, timeout=limit - loop.time(),
                                               return_when=asyncio.FIRST_COMPLETED)
            if first_relay is None and any(not t.cancelled() and t.exception() is None for t in done):
                first_relay = loop.time()
        candidates = await main
    except BaseException:
        for task in [main, *relays]:
            task.cancel()
        raise
    for task in pending:
        task.cancel()  # create_turn_endpoint closes its socket when cancelled
    for task, server in zip(relays, servers):
        if task.done() and not task.cancelled() and task.exception() is None:
            candidate, protocol = task.result()
            candidates.append(candidate)
            self._protocols.append(protocol)
        elif task.done() and not task.cancelled():
            logger.info("TURN allocation on %s failed: %r", server["url"], task.exception())
        else:
            logger.info("TURN allocation on %s not done in time", server["url"])
    return candidates


_gatherer_init.__wrapped__ = _original_gatherer_init  # type: ignore[attr-defined]
_get_component_candidates.__wrapped__ = _original_get_component_candidates  # type: ignore[attr-defined]


def install_multi_turn() -> None:
    """Let a peer connection given several TURN URLs use them all (idempotent,
    process-wide; connections with at most one TURN URL are unchanged)."""
    if rtcicetransport.RTCIceGatherer.__init__ is _gatherer_init:
        return
    rtcicetransport.RTCIceGatherer.__init__ = _gatherer_init  # type: ignore[method-assign]
    aioice.ice.Connection.get_component_candidates = _get_component_candidates  # type: ignore[method-assign]


def uninstall_multi_turn() -> None:
    rtcicetransport.RTCIceGatherer.__init__ = _original_gatherer_init  # type: ignore[method-assign]
    aioice.ice.Connection.get_component_candidates = _original_get_component_candidates  # type: ignore[method-assign]


# -- aioice: the selected candidate pair -------------------------------------------------
#
# aiortc's getStats() merges the RTP senders' and receivers' stats only: no
# candidate-pair, local-candidate or remote-candidate entries (and nothing
# at all for a data-channel-only connection). The pair in use is aioice's
# Connection._nominated[component] (component 1: rtcp-mux and BUNDLE leave
# no other).


def _ice_transports(pc: Any) -> list[Any]:
    """The RTCIceTransports of ``pc`` (public attributes only; BUNDLE: one)."""
    dtls: list[Any] = []
    with contextlib.suppress(Exception):
        dtls += [t.sender.transport for t in pc.getTransceivers()]
    with contextlib.suppress(Exception):
        if pc.sctp is not None:
            dtls.append(pc.sctp.transport)
    seen: set[int] = set()
    out: list[Any] = []
    for transport in dtls:
        ice = getattr(transport, "transport", None)
        if ice is not None and id(ice) not in seen:
            seen.add(id(ice))
            out.append(ice)
    return out


def _nominated_pair(pc: Any) -> tuple[Any, Any] | None:
    for ice in _ice_transports(pc):
        connection = getattr(ice, "_connection", None)
        nominated = getattr(connection, "_nominated", None) or {}
        pair = nominated.get(1) or next(iter(nominated.values()), None)
        if pair is not None:
            return connection, pair
    return None


def _relay_transport(pair: Any) -> str | None:
    """How a relay candidate reaches its TURN server: udp, tcp or tls."""
    transport = getattr(getattr(pair, "protocol", None), "transport", None)
    inner = getattr(transport, "_TurnTransport__inner_protocol", None)
    if inner is None:
        return None
    if isinstance(inner, aioice.turn.TurnClientUdpProtocol):
        return "udp"
    stream = getattr(inner, "transport", None)
    with contextlib.suppress(Exception):
        if stream is not None and stream.get_extra_info("sslcontext") is not None:
            return "tls"
    return "tcp"


def selected_pair(pc: Any) -> dict[str, Any] | None:
    """The candidate pair ``pc`` sends on, or None before ICE has nominated one.

    ``local``/``remote`` are candidate types (host, srflx, prflx, relay);
    ``protocol`` is how the packets travel from here: ``udp``, or for a
    local relay candidate the transport to the TURN server (udp, tcp, tls).
    """
    found = _nominated_pair(pc)
    if found is None:
        return None
    _, pair = found
    local, remote = pair.local_candidate, pair.remote_candidate
    relay = _relay_transport(pair) if local.type == "relay" else None
    return {
        "local": local.type,
        "remote": remote.type,
        "protocol": relay or str(local.transport).lower(),
        "local_address": f"{local.host}:{local.port}",
        "remote_address": f"{remote.host}:{remote.port}",
    }


async def ice_rtt(pc: Any, timeout: float = 1.0) -> float | None:
    """Seconds for one STUN Binding on the selected pair, or None.

    The same request aioice sends every ~5 s for consent freshness (RFC 7675
    section 5.1), without retransmission; aioice keeps no RTT itself.
    """
    found = _nominated_pair(pc)
    if found is None:
        return None
    connection, pair = found
    if connection.remote_password is None:
        return None
    try:
        request = connection.build_request(pair, nominate=False)
        started = time.monotonic()
        await asyncio.wait_for(
            pair.protocol.request(request, pair.remote_addr,
                                  integrity_key=connection.remote_password.encode("utf8"),
                                  retransmissions=0),
            timeout)
    except Exception:  # timed out, failed, or the pair went away
        return None
    return time.monotonic() - started


def transport_counters(pc: Any) -> dict[str, int]:
    """Bytes and packets through ``pc``'s DTLS transports (media, data, DTLS;
    not STUN), also for a data-channel-only connection whose getStats() is empty."""
    totals = {"bytesSent": 0, "bytesReceived": 0, "packetsSent": 0, "packetsReceived": 0}
    dtls: list[Any] = []
    with contextlib.suppress(Exception):
        dtls += [t.sender.transport for t in pc.getTransceivers()]
    with contextlib.suppress(Exception):
        if pc.sctp is not None:
            dtls.append(pc.sctp.transport)
    seen: set[int] = set()
    for transport in dtls:
        if transport is None or id(transport) in seen:
            continue
        seen.add(id(transport))
        with contextlib.suppress(Exception):
            for stats in transport._get_stats().values():
                for key in totals:
                    totals[key] += int(getattr(stats, key, 0) or 0)
    return totals

# -- DTLS interop, part 2 of 2: WHIP publishers (FFmpeg, GStreamer) ---------------
#
# aiortc 1.16 builds every DTLS context in RTCCertificate._create_ssl_context:
# ECDHE-ECDSA suites only, OpenSSL's default groups. Two real publishers fail
# against that, and a user cannot be expected to know why, so we fix it here:
#
# - GStreamer's webrtcbin (1.22) offers a=setup:actpass, aiortc answers
#   active (RFC 5763 section 5: the answerer should be active), so
#   GStreamer is the DTLS server, with a self-signed RSA certificate: no
#   shared suite, fatal handshake_failure. Two ECDHE-RSA AEAD suites are
#   appended to every context; a server picks them only when its
#   certificate is RSA (browsers' and aiortc's are ECDSA).
# - FFmpeg's WHIP muxer (GnuTLS build, as in the PyAV wheel) offers
#   a=setup:passive and signs with a P-224 certificate. In (D)TLS 1.2 OpenSSL
#   requires a peer's ECDSA curve to be one it offered itself, and aiortc
#   offers X25519/P-256/X448/P-384/P-521: fatal illegal_parameter. By the
#   installed cryptography (the version check):
#   * < 47 (OpenSSL 3.5): P-224 is added to the offered groups (part 1
#     above) and DTLS stays 1.2 for everyone;
#   * >= 47 (OpenSSL 4.0 has no P-224 in TLS at all): contexts created for
#     an FFmpeg offer (``o=FFmpeg``) are capped at DTLS 1.0, whose legacy
#     signature path has no curve check. Only those sessions; everyone else
#     keeps DTLS 1.2. The README explains the trade-off.
#   FFmpeg with whip_flags=dtls_active makes aiortc the DTLS server, where
#   OpenSSL also needs the *peer* to offer P-224 (GnuTLS does not), so that
#   case takes the DTLS 1.0 path on every version.
# - FFmpeg starts its DTLS server only after its own ICE exchange, so the
#   ClientHello aiortc sends the moment ICE completes is lost, and OpenSSL
#   sends it again after its initial 1 s timer (RFC 6347 section 4.2.4.1):
#   a second of every FFmpeg publish. For FFmpeg sessions our client resends
#   its first flight itself after 50, 100, 200 and 400 ms while nothing has
#   come back (a DTLS server treats a repeated ClientHello as the
#   retransmission it is).

_RTCCertificate = rtcdtlstransport.RTCCertificate
_original_create_ssl_context = _RTCCertificate._create_ssl_context
#: aiortc 1.16's own list, kept first.
AIORTC_CIPHERS = (
    b"ECDHE-ECDSA-AES128-GCM-SHA256:ECDHE-ECDSA-CHACHA20-POLY1305:ECDHE-ECDSA-AES128-SHA:ECDHE-ECDSA-AES256-SHA"
)
RSA_CIPHERS = b"ECDHE-RSA-AES128-GCM-SHA256:ECDHE-RSA-CHACHA20-POLY1305"
#: DTLS 1.0 has no AEAD suites; SECLEVEL=0 because OpenSSL's default level
#: refuses DTLS 1.0 (protocol_version alert).
LEGACY_CIPHERS = b"ECDHE-ECDSA-AES128-SHA:ECDHE-ECDSA-AES256-SHA:@SECLEVEL=0"
_DTLS1_VERSION = 0xFEFF
_P224 = 0x0015  # TLS NamedGroup secp224r1 (RFC 8422 section 5.1.1)

_legacy_dtls: contextvars.ContextVar[bool] = contextvars.ContextVar("callbot_legacy_dtls", default=False)
_ffmpeg_dtls: contextvars.ContextVar[bool] = contextvars.ContextVar("callbot_ffmpeg_dtls", default=False)
_dtls_mode: str | None = None
_RTCDtlsTransport = rtcdtlstransport.RTCDtlsTransport
_original_dtls_start = _RTCDtlsTransport.start
#: Seconds after the first flight at which an FFmpeg session's client sends it again.
FIRST_FLIGHT_RESENDS = (0.05, 0.1, 0.2, 0.4)


def _create_ssl_context(self: Any, srtp_profiles: Any) -> Any:
    ctx = _original_create_ssl_context(self, srtp_profiles)
    if _legacy_dtls.get():
        ctx.set_max_proto_version(_DTLS1_VERSION)
        ctx.set_cipher_list(LEGACY_CIPHERS)
    else:
        ctx.set_cipher_list(AIORTC_CIPHERS + b":" + RSA_CIPHERS)
    return ctx


async def _dtls_start(self: Any, remoteParameters: Any) -> None:
    if not _ffmpeg_dtls.get() or self._role != "client":
        await _original_dtls_start(self, remoteParameters)
        return
    ice = self.transport
    original_send = ice._send
    first: list[bytes] = []

    async def send(data: bytes) -> None:
        if not first:
            first.append(data)  # the ClientHello
        await original_send(data)

    async def resend() -> None:
        for delay in FIRST_FLIGHT_RESENDS:
            await asyncio.sleep(delay)
            if self.state != "connecting" or getattr(self, "_RTCDtlsTransport__rx_bytes", 1):
                return
            if first:
                await original_send(first[0])

    ice._send = send  # aiortc's is an instance attribute too (the ICE connection's send)
    task = asyncio.ensure_future(resend())
    try:
        await _original_dtls_start(self, remoteParameters)
    finally:
        task.cancel()
        ice._send = original_send


_dtls_start.__wrapped__ = _original_dtls_start  # type: ignore[attr-defined]


def install_dtls_interop() -> str:
    """Let FFmpeg and GStreamer WHIP publishers complete DTLS (idempotent,
    process-wide). Returns how FFmpeg's P-224 certificate is handled:
    ``"groups"`` (DTLS 1.2, P-224 offered) or ``"dtls10"`` (DTLS 1.0 for
    FFmpeg offers only, inside :func:`legacy_dtls_for`)."""
    global _dtls_mode
    if _dtls_mode is not None:
        return _dtls_mode
    if _P224_STEP == "set" and _P224 in offered_groups():
        _dtls_mode = "groups"
    else:
        _dtls_mode = "dtls10"
        if _P224_STEP == "set":
            logger.warning("P-224 was configured but is not offered; FFmpeg publishers get DTLS 1.0")
        elif cryptography_major() < FIRST_CRYPTOGRAPHY_WITHOUT_P224:
            logger.warning("cannot offer P-224 (%s); FFmpeg publishers get DTLS 1.0", _P224_STEP)
    _RTCCertificate._create_ssl_context = _create_ssl_context  # type: ignore[method-assign]
    _RTCDtlsTransport.start = _dtls_start  # type: ignore[method-assign]
    logger.info("DTLS interop: ECDHE-RSA suites added; FFmpeg's P-224 certificate via %s", _dtls_mode)
    return _dtls_mode


def uninstall_dtls_interop() -> None:
    global _dtls_mode
    _RTCCertificate._create_ssl_context = _original_create_ssl_context  # type: ignore[method-assign]
    _RTCDtlsTransport.start = _original_dtls_start  # type: ignore[method-assign]
    _dtls_mode = None


def is_ffmpeg_offer(offer_sdp: str) -> bool:
    """FFmpeg's WHIP muxer names itself in the origin line (``o=FFmpeg ...``)."""
    return any(line.startswith("o=FFmpeg ") for line in offer_sdp.splitlines()[:4])


def needs_legacy_dtls(offer_sdp: str) -> bool:
    """Whether this offer's DTLS must be capped at 1.0 (see the section comment)."""
    if _dtls_mode is None or not is_ffmpeg_offer(offer_sdp):
        return False
    return _dtls_mode == "dtls10" or any(line.strip() == "a=setup:active" for line in offer_sdp.splitlines())


@contextlib.contextmanager
def legacy_dtls_for(offer_sdp: str) -> Iterator[bool]:
    """Wrap the offer/answer of one session: the DTLS contexts aiortc creates
    for it use the DTLS 1.0 fallback when :func:`needs_legacy_dtls` says so,
    and an FFmpeg session's client resends its first flight early.

    aiortc starts DTLS in a task that setRemoteDescription/setLocalDescription
    create, and a task copies the context variables of its creator, so the
    setting follows that session only. Yields whether the fallback applies.
    """
    use = needs_legacy_dtls(offer_sdp)
    token = _legacy_dtls.set(use)
    ffmpeg = _ffmpeg_dtls.set(_dtls_mode is not None and is_ffmpeg_offer(offer_sdp))
    try:
        yield use
    finally:
        _legacy_dtls.reset(token)
        _ffmpeg_dtls.reset(ffmpeg)


def dtls_parameters(pc: Any) -> dict[str, Any]:
    """What DTLS the connection negotiated: version, suite and the peer's key
    (for the manifest: a DTLS 1.0 session is written down as one)."""
    for transceiver in pc.getTransceivers():
        transport = getattr(transceiver.receiver, "transport", None)
        conn = getattr(transport, "_ssl", None)
        if conn is None:
            continue
        out: dict[str, Any] = {
            "version": conn.get_protocol_version_name(),
            "cipher": conn.get_cipher_name(),
            "role": getattr(transport, "_role", None),
        }
        try:
            key = conn.get_peer_certificate(as_cryptography=True).public_key()
            curve = getattr(key, "curve", None)
            out["peer_key"] = curve.name if curve is not None else f"{type(key).__name__.lstrip('_')} {key.key_size}"
        except Exception:  # no certificate yet: nothing to say
            pass
        return out
    return {}


def offered_groups() -> list[int]:
    """The supported_groups of the ClientHello an aiortc DTLS client sends now
    (parsed from the real record; RFC 6347 section 4.2.2, RFC 8422 section 5.1.1)."""
    from OpenSSL import SSL

    ctx = _RTCCertificate.generateCertificate()._create_ssl_context(rtcdtlstransport.SRTP_PROFILES)
    conn = SSL.Connection(ctx, None)
    conn.set_connect_state()
    with contextlib.suppress(SSL.WantReadError):
        conn.do_handshake()
    return _client_hello_groups(conn.bio_read(65536))


def _client_hello_groups(record: bytes) -> list[int]:
    # DTLS record header (13) + handshake header (12) + version (2) + random (32).
    p = 13 + 12 + 2 + 32
    p += 1 + record[p]  # session_id
    p += 1 + record[p]  # cookie
    p += 2 + int.from_bytes(record[p:p + 2], "big")  # cipher_suites
    p += 1 + record[p]  # compression_methods
    end = p + 2 + int.from_bytes(record[p:p + 2], "big")
    p += 2
    while p + 4 <= end:
        kind = int.from_bytes(record[p:p + 2], "big")
        length = int.from_bytes(record[p + 2:p + 4], "big")
        if kind == 10:  # supported_groups
            body = record[p + 6:p + 4 + length]
            return [int.from_bytes(body[i:i + 2], "big") for i in range(0, len(body), 2)]
        p += 4 + length
    return []
