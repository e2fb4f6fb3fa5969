"""The bot runtime: a username that is always online and answers every offer
with a real aiortc RTCPeerConnection, running a :class:`peer.api.Bot`.

The runtime is a signaling :class:`~signaling.registry.Endpoint`: the registry
delivers it the messages users route to the bot's name (parsed here, once,
into typed messages), and it routes its answers back through the same
registry, so a bot call looks to the signaling exactly like a call between
two users.

A call is identified on the wire by the (user, bot) pair, so each user has at
most one call with the bot at a time; a second offer while one is active is
refused with ``already-in-call``. ``--max-calls`` bounds the total.

The session for an offer exists from the moment the offer is delivered, so
candidates trickled right behind it (Firefox: about a millisecond later)
reach it, in order, while the checks that need threads (free disk space, the
call directory) and the bot's ``on_call`` still run.

WHIP publishers (RFC 9725) get the same sessions without signaling
(:meth:`BotRuntime.start_whip`): recorded the same way, the same bot hooks,
counted against the same ``--max-calls``.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import logging
import os
import shutil
from pathlib import Path
from typing import Any, Callable, TypeVar

from media.manifest import mark_interrupted
from peer import compat
from peer.api import Bot, RefuseCall
from peer.call import BadOffer, CallSession, _BotFailed
from peer.config import PeerConfig
from peer.whip import SessionRefused, WhipSession, offer_ice_ufrag
from signaling.protocol import Answer, Candidate, Close, Offer, ProtocolError, parse_delivered
from signaling.registry import Registry

logger = logging.getLogger(__name__)

T = TypeVar("T")

#: Worker threads for bots' CPU-bound work (Call.to_thread, transforms).
BOT_WORKERS = max(2, min(8, os.cpu_count() or 2))
#: Seconds a refused WHIP publisher is told to wait (HTTP Retry-After), by refusal.
RETRY_AFTER = {"too-many-calls": 10, "shutting-down": 10, "disk-full": 60, "storage-unavailable": 30}


def free_bytes(path: Path) -> int:
    path.mkdir(parents=True, exist_ok=True)
    return shutil.disk_usage(path).free


def bot_class_name(bot: Bot) -> str:
    cls = type(bot)
    return f"{cls.__module__}:{cls.__qualname__}"


class BotRuntime:
    def __init__(self, config: PeerConfig, registry: Registry, bot: Bot) -> None:
        self.config = config
        self.name = config.bot_name
        self.registry = registry
        self.bot = bot
        self.bot_class = bot_class_name(bot)
        bot.name = self.name
        self.calls: dict[str, CallSession] = {}
        #: WHIP sessions by resource id (the /whip/<id> of their Location).
        self.whip: dict[str, WhipSession] = {}
        self._tasks: set[asyncio.Task[Any]] = set()
        self._closed = False
        self._executor = concurrent.futures.ThreadPoolExecutor(BOT_WORKERS, thread_name_prefix="bot")
        compat.restrict_host_addresses(config.ice.addresses)
        compat.install_sctp_speedup()
        compat.install_multi_turn()
        compat.install_dtls_interop()
        interrupted = mark_interrupted(config.calls_dir)
        if interrupted:
            logger.warning("marked %d calls interrupted by a crash: %s", len(interrupted), ", ".join(interrupted))

    async def start(self) -> None:
        logger.info("bot %r is %s", self.name, self.bot_class)
        await self.bot.on_start()

    async def to_thread(self, fn: Callable[..., T], *args: Any) -> T:
        """Run ``fn(*args)`` in the bots' bounded worker pool."""
        return await asyncio.get_running_loop().run_in_executor(self._executor, fn, *args)

    # -- Endpoint ----------------------------------------------------------------

    def deliver(self, payload: dict[str, Any]) -> None:
        try:
            delivered = parse_delivered(payload, self.name)
        except ProtocolError as exc:
            logger.warning("bot: unexpected message %r: %s", payload.get("type"), exc)
            return
        sender, message = delivered.sender, delivered.message
        if isinstance(message, Offer):
            self._on_offer(sender, message.offer.sdp)
        elif isinstance(message, Candidate):
            session = self.calls.get(sender)
            if session is not None:
                session.add_candidate(message.candidate)
        elif isinstance(message, Close):
            session = self.calls.get(sender)
            if session is not None:
                session.request_end("caller-closed")
        elif isinstance(message, Answer):
            self._error(sender, "unexpected-answer", "the bot never sends offers")

    # -- calls -----------------------------------------------------------------------

    def _on_offer(self, caller: str, offer_sdp: str) -> None:
        if self._closed:
            self._error(caller, "shutting-down", "the server is shutting down")
            return
        previous = self.calls.get(caller)
        if previous is not None and not previous.ending:
            self._error(caller, "already-in-call", "you already have a call with the bot; close it first")
            return
        session = CallSession(self, caller, send=lambda m: self._send(caller, m), on_ended=self._forget)
        # From now on candidates for this caller reach the new session.
        self.calls[caller] = session
        self._spawn(self._start(session, previous, offer_sdp))

    async def _start(self, session: CallSession, previous: CallSession | None, offer_sdp: str) -> None:
        caller = session.caller
        if previous is not None:
            # A hang-up still being finalized: the new call waits for it.
            with contextlib.suppress(asyncio.TimeoutError):
                await asyncio.wait_for(previous.ended.wait(), 10)
        refusal = await self._refusal(session)
        if refusal is not None:
            self._refuse(session, *refusal)
            return
        logger.info("call %s: offer from %s", session.id, caller)
        try:
            answer = await session.answer(offer_sdp)
        except BadOffer as exc:
            logger.info("call %s: bad offer from %s: %s", session.id, caller, exc)
            self._refuse(session, "bad-offer", f"the offer could not be answered: {exc}")
        except RefuseCall as exc:
            logger.info("call %s: the bot refused %s: %s %s", session.id, caller, exc.code, exc.message)
            self._refuse(session, exc.code, exc.message)
        except _BotFailed:
            self._refuse(session, "bot-error", "the bot failed to take the call")
            await session.record_failure("bot-error")
        except compat.PortsExhausted as exc:
            # Every port of --rtc-ports is held by other calls: this call is
            # refused, the others go on. Its manifest says why (like bad-offer).
            logger.warning("call %s: refused, %s", session.id, exc)
            session.errors.append(str(exc))
            self._error(caller, exc.code, "the server has no free media port for a new call; try later")
            await session.end(exc.code, notify=False)
        except OSError as exc:
            logger.error("call %s: cannot create a call directory: %s", session.id, exc)
            self._refuse(session, "storage-unavailable", "the server cannot store calls right now")
        except Exception as exc:  # a bad SDP or an aiortc failure ends this call only
            logger.warning("call %s: cannot answer: %r", session.id, exc)
            session.errors.append(f"answer failed: {type(exc).__name__}: {exc}")
            self._error(caller, "bad-offer", f"the offer could not be answered: {exc}")
            await session.end("bad-offer", notify=False)
        else:
            if session.ending:
                return
            session.send({"type": "answer", "answer": {"type": "answer", "sdp": answer}})
            # An extension clients may ignore: the call's id (its gallery
            # entry) and whether it is recorded, so a page can say so.
            session.send({"type": "call-info", "callId": session.id, "recording": session.records})

    async def _refusal(self, session: CallSession) -> tuple[str, str] | None:
        """Why the server (not the bot) cannot take this call now, if it cannot."""
        if self._closed:
            return "shutting-down", "the server is shutting down"
        live = sum(1 for s in self.sessions() if s is not session and not s.ending)
        if live >= self.config.bot.max_calls:
            return "too-many-calls", f"the bot is in {live} calls, its limit; try later"
        floor = self.config.min_free_bytes
        if floor and await asyncio.to_thread(free_bytes, self.config.data_dir) < floor:
            logger.warning("refusing a call from %s: less than %d bytes free", session.caller, floor)
            return "disk-full", "the server is low on disk space and cannot record; try later"
        return None

    # -- WHIP ------------------------------------------------------------------------

    async def start_whip(self, offer_sdp: str, publisher: str, details: dict[str, Any]) -> tuple[WhipSession, str]:
        """A session for a WHIP publisher's offer; returns it and the answer SDP.

        ``publisher`` is the caller the manifest names (the token's user);
        ``details`` what else is known about it (address, software), kept in
        ``meta.json`` as ``publisher``. Raises :class:`BadOffer`,
        :class:`peer.api.RefuseCall` (the bot said no) or
        :class:`SessionRefused`; nothing is written for any of them but a
        failing ``on_call`` (``bot-error``, kept as for a signaling call).
        """
        if self._closed:
            raise SessionRefused("shutting-down", "the server is shutting down", RETRY_AFTER["shutting-down"])
        session = CallSession(self, publisher, source="whip", on_ended=self._forget_whip)
        resource = WhipSession(session, publisher)
        # Counted against --max-calls from now on, like a signaling offer.
        self.whip[resource.id] = resource
        try:
            refusal = await self._refusal(session)
            if refusal is not None:
                code, message = refusal
                raise SessionRefused(code, message, RETRY_AFTER.get(code))
            logger.info("call %s: WHIP offer from %s", session.id, publisher)
            # FFmpeg's P-224 certificate may need the DTLS 1.0 fallback (peer.compat).
            with compat.legacy_dtls_for(offer_sdp) as legacy_dtls:
                answer = await session.answer(offer_sdp)
        except BaseException as exc:
            self._forget_whip(session)
            if isinstance(exc, _BotFailed):
                await session.end("refused", notify=False)
                await session.record_failure("bot-error")
                raise SessionRefused("bot-error", "the bot failed to take the call") from None
            if isinstance(exc, OSError):
                logger.error("call %s: cannot create a call directory: %s", session.id, exc)
                await session.end("refused", notify=False)
                raise SessionRefused(
                    "storage-unavailable", "the server cannot store calls right now", RETRY_AFTER["storage-unavailable"]
                ) from None
            if isinstance(exc, (SessionRefused, BadOffer, RefuseCall)) or not isinstance(exc, Exception):
                await asyncio.shield(session.end("refused", notify=False))
                raise
            # A bad SDP or an aiortc failure ends this session only.
            logger.warning("call %s: cannot answer WHIP offer: %r", session.id, exc)
            session.errors.append(f"answer failed: {type(exc).__name__}: {exc}")
            await session.end("bad-offer", notify=False)
            raise BadOffer(f"the offer could not be answered: {exc}") from None
        resource.ice_ufrag = offer_ice_ufrag(offer_sdp)
        if session.manifest is not None:
            session.manifest.publisher = {**details, "user": publisher, "dtls_1_0_fallback": legacy_dtls}
            session.write_manifest()
        _stop_unsent_tracks(session)
        self._spawn(self._note_dtls(session))
        return resource, answer

    async def _note_dtls(self, session: CallSession) -> None:
        """Write down what DTLS the publisher negotiated, once connected."""
        waits = [asyncio.ensure_future(session.connected.wait()), asyncio.ensure_future(session.ended.wait())]
        try:
            await asyncio.wait(waits, return_when=asyncio.FIRST_COMPLETED)
        finally:
            for w in waits:
                w.cancel()
        manifest = session.manifest
        if session.connected.is_set() and not session.ending and manifest is not None and manifest.publisher is not None:
            manifest.publisher["dtls"] = compat.dtls_parameters(session.pc)
            session.write_manifest()

    def _forget_whip(self, session: CallSession) -> None:
        for key, resource in list(self.whip.items()):
            if resource.session is session:
                del self.whip[key]

    def sessions(self) -> list[CallSession]:
        """Every session: bot calls and WHIP publishes."""
        return [*self.calls.values(), *(w.session for w in self.whip.values())]

    def live_session(self, call_id: str) -> CallSession | None:
        """The session recording call ``call_id`` now, if any (for WHEP)."""
        for session in self.sessions():
            if session.id == call_id and session.manifest is not None and not session.ending:
                return session
        return None

    def _refuse(self, session: CallSession, code: str, message: str) -> None:
        self._error(session.caller, code, message)
        self._forget(session)
        self._spawn(session.end("refused", notify=False))

    def _forget(self, session: CallSession) -> None:
        if self.calls.get(session.caller) is session:
            del self.calls[session.caller]

    def _send(self, target: str, message: dict[str, Any]) -> None:
        message = {**message, "username": self.name}
        self._spawn(self.registry.route(target, message))

    def _error(self, target: str, code: str, text: str) -> None:
        self._send(target, {"type": "error", "code": code, "message": text})

    def _spawn(self, coro: Any) -> None:
        task = asyncio.ensure_future(coro)
        self._tasks.add(task)
        task.add_done_callback(self._done)

    def _done(self, task: asyncio.Task[Any]) -> None:
        self._tasks.discard(task)
        if not task.cancelled() and task.exception() is not None:
            logger.error("bot task failed", exc_info=task.exception())

    async def close(self) -> None:
        """End every call (recordings finalized), then stop."""
        if self._closed:
            return
        self._closed = True
        await asyncio.gather(*(c.end("server-shutdown") for c in self.sessions()))
        for task in list(self._tasks):
            task.cancel()
        for task in list(self._tasks):
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task
        try:
            await self.bot.on_stop()
        except Exception:
            logger.exception("bot on_stop failed")
        self._executor.shutdown(wait=False, cancel_futures=True)


def _stop_unsent_tracks(session: CallSession) -> None:
    """A bot's talk-back on a publish-only offer is never sent (the answer
    says recvonly); stop it so that nothing queues frames or asks the
    publisher for keyframes on its behalf."""
    for transceiver in session.pc.getTransceivers():
        track = transceiver.sender.track
        if track is not None and transceiver.currentDirection not in ("sendrecv", "sendonly"):
            track.stop()
