"""One call to the bot: an aiortc RTCPeerConnection and everything hanging
off it (recording, the bot's hooks, talk-back, photos, the manifest).

Life cycle::

    new --answer(offer)--> answered --ICE+DTLS--> connected --end(reason)--> ended
          |                    \\--connect timeout--/
          \\-- refused (bad offer, the bot said no): nothing on disk

``answer`` asks the bot (:meth:`Bot.on_call`) before anything is written: a
refused call leaves no directory. Candidates may arrive from the moment the
offer does (a browser trickles them within a millisecond); they wait in
order, at most :data:`MAX_CANDIDATES` with those inside the offer, until the
offer is applied (aiortc ignores earlier ones). Candidates on addresses the
bot must not probe (``peer.sdp.candidate_refusal``) are dropped, inside the
offer too; ones that do not parse get ``bad-candidate``. ``end`` is idempotent and frees everything: the peer
connection (its transports, decoder threads and tasks), the recorder, the
photo channels, the bot's feeds and the timers.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from typing import TYPE_CHECKING, Any, Callable

from aiortc import RTCPeerConnection, RTCSessionDescription, sdp

from media.errors import CallbotError
from media.manifest import CallManifest
from media.storage import CallDirectory, atomic_write_bytes, create_call_directory, is_bot_file_name, new_call_id, sha256_file
from peer import compat
from peer.api import Call, CallSummary, Photo, RefuseCall
from peer.callmedia import CallMedia
from peer.channels import AppChannels
from peer.hooks import EventQueue
from peer.ice import candidate_policy, rtc_configuration
from peer.quality import CallQuality
from peer.sdp import (
    CandidateError,
    add_bitrate_hints,
    announce_addresses,
    candidate_refusal,
    drop_unoffered_bundle,
    filter_offer_candidates,
    parse_candidate,
)
from peer.tasks import cancel_and_wait
from signaling.protocol import IceCandidate
from media import metrics

if TYPE_CHECKING:
    from pathlib import Path

    from peer.runtime import BotRuntime

logger = logging.getLogger(__name__)

SendToCaller = Callable[[dict[str, Any]], None]

#: Candidates one call accepts (RFC 8445 gathers a handful per interface;
#: browsers send well under 50). More are refused with bad-candidate.
MAX_CANDIDATES = 64
#: Seconds between rewrites of a live call's meta.json (recorder status, the
#: bot's data and counters), so readers see a call in progress as it goes.
LIVE_MANIFEST_INTERVAL = 2.0
#: How long Bot.on_ended may take before the call's files are finalized without it.
ON_ENDED_TIMEOUT = 10.0
#: End reasons that come from the caller: no close is sent back.
_CALLER_REASONS = ("caller-closed",)


class BadOffer(CallbotError, ValueError):
    """An offer the bot cannot answer."""


class CallSession:
    """A call as the runtime sees it. Bots see its :class:`peer.api.Call`."""

    def __init__(
        self,
        runtime: BotRuntime,
        caller: str,
        *,
        send: SendToCaller | None = None,
        source: str = "signaling",
        on_ended: Callable[[CallSession], None] | None = None,
    ) -> None:
        self.runtime = runtime
        self.config = runtime.config
        self.bot = runtime.bot
        self.caller = caller
        self.source = source
        self.id = new_call_id()
        self.directory: CallDirectory | None = None
        self.manifest: CallManifest | None = None
        self.offered_kinds: frozenset[str] = frozenset()
        self.started_at = time.time()
        self._send = send or (lambda message: None)
        self._on_ended = on_ended
        self.pc = RTCPeerConnection(rtc_configuration(self.config.ice, self.config.turn))
        self.connected = asyncio.Event()
        self.ended = asyncio.Event()
        self.end_reason: str | None = None
        self.errors: list[str] = []
        self._ending = False
        # An end asked for whose task has not run yet: the call counts as
        # ending from that moment, so a new offer right behind a close waits
        # for it instead of being refused already-in-call.
        self._end_requested = False
        self._tasks: set[asyncio.Task[Any]] = set()
        # Candidates in arrival order; applied by one task once the offer is.
        self._candidates: asyncio.Queue[IceCandidate | None] = asyncio.Queue()
        self._candidate_count = 0
        #: Candidates given to aiortc (kept from the offer, accepted trickled ones).
        self._usable_candidates = 0
        self._mids: set[str] = set()
        self._ended_mids: set[str] = set()
        self._policy = candidate_policy(self.config.ice)
        self.quality = CallQuality(self.pc)
        self.call = Call(self)
        self.events = EventQueue(f"call {self.id} events", self.hook_failed)
        self.media = CallMedia(self)
        self.channels = AppChannels(self)
        self.pc.on("connectionstatechange", self._on_connection_state)
        self.pc.on("track", self._guarded(self.media.on_track))
        self.pc.on("datachannel", self._guarded(self.channels.on_datachannel))

    def __repr__(self) -> str:
        return f"<CallSession {self.id} {self.caller} {self.pc.connectionState}>"

    @property
    def ending(self) -> bool:
        return self._ending or self._end_requested

    # -- failures ---------------------------------------------------------------------

    def _guarded(self, handler: Callable[[Any], None]) -> Callable[[Any], None]:
        """A failure inside one call's event handler ends that call, with the
        reason in the log and the manifest; the server and other calls go on."""
        def run(arg: Any) -> None:
            try:
                handler(arg)
            except Exception as exc:
                logger.exception("call %s: %s failed", self.id, handler.__name__)
                self.errors.append(f"{handler.__name__}: {type(exc).__name__}: {exc}")
                self._spawn(self.end("internal-error"), "end")
        return run

    def hook_failed(self, hook: str, exc: BaseException) -> None:
        """A bot hook raised: that call ends (``bot-error``), the server goes on."""
        logger.error("call %s: bot hook %s failed: %s: %s", self.id, hook, type(exc).__name__, exc,
                     exc_info=(type(exc), exc, exc.__traceback__))
        self.errors.append(f"{hook}: {type(exc).__name__}: {exc}")
        self.request_end("bot-error")

    # -- signaling in -------------------------------------------------------------------

    async def answer(self, offer_sdp: str) -> str:
        """Ask the bot, apply the offer, return the answer SDP (with our
        candidates inside: aiortc gathers during setLocalDescription).

        Raises :class:`BadOffer`, :class:`peer.api.RefuseCall` (nothing is
        written for either), OSError when the call directory cannot be made,
        or :class:`peer.compat.PortsExhausted` (``--rtc-ports``).
        """
        self.offered_kinds, self._mids = check_offer(offer_sdp)
        offer_sdp, kept, dropped = filter_offer_candidates(
            offer_sdp, self._policy, max(0, MAX_CANDIDATES - self._candidate_count))
        self._candidate_count += kept
        self._usable_candidates += kept
        if dropped:
            logger.info("call %s: %d candidates in the offer dropped: %s", self.id, len(dropped), ", ".join(dropped[:8]))
        try:
            await self.bot.on_call(self.call)
        except RefuseCall:
            raise
        except Exception as exc:
            self._on_call_failed("on_call", exc)
            raise _BotFailed() from exc
        self.directory = await asyncio.to_thread(create_call_directory, self.config.calls_dir, self.id)
        self.id = self.directory.call_id
        self.manifest = CallManifest(
            self.directory, self.caller, self.config.bot_name,
            talkback=self.config.bot.talkback, source=self.source, bot_class=self.runtime.bot_class,
            bot_data=self.call.meta,
        )
        self.manifest.errors = self.errors
        self.write_manifest()
        self.media.prepare()
        self.events.start()
        await self.pc.setRemoteDescription(RTCSessionDescription(sdp=offer_sdp, type="offer"))
        self.media.attach_outgoing()
        self._spawn(self._apply_candidates(), "candidates")
        # aiortc gathers here: every ICE socket in --rtc-ports.
        with compat.rtc_port_range(self.config.ice.rtc_ports):
            await self.pc.setLocalDescription(await self.pc.createAnswer())
        bot = self.config.bot
        answer = add_bitrate_hints(
            self.pc.localDescription.sdp,
            start_kbps=bot.start_bitrate_kbps,
            min_kbps=bot.min_bitrate_kbps,
            max_kbps=bot.max_bitrate_kbps,
        )
        answer = announce_addresses(answer, self.config.ice.announce_addresses)
        answer = drop_unoffered_bundle(answer, offer_sdp)
        self._spawn(self._connect_timeout(), "connect-timeout")
        self._spawn(self._duration_limit(), "duration-limit")
        self._spawn(self._live_manifest(), "live-manifest")
        return answer

    async def record_failure(self, reason: str) -> None:
        """The bot's on_call failed: keep a manifest saying so (the one refusal
        that is written down, since it is a bug to look at, not a decision)."""
        try:
            self.directory = await asyncio.to_thread(create_call_directory, self.config.calls_dir, self.id)
        except OSError:
            return
        self.manifest = CallManifest(
            self.directory, self.caller, self.config.bot_name, talkback=self.config.bot.talkback,
            source=self.source, bot_class=self.runtime.bot_class, status="complete",
        )
        self.manifest.errors = self.errors
        self.manifest.ended_at = time.time()
        self.manifest.end_reason = reason
        await self.manifest.write_async()

    def _on_call_failed(self, hook: str, exc: BaseException) -> None:
        logger.error("call %s: bot hook %s failed: %s: %s", self.id, hook, type(exc).__name__, exc,
                     exc_info=(type(exc), exc, exc.__traceback__))
        self.errors.append(f"{hook}: {type(exc).__name__}: {exc}")

    def send(self, message: dict[str, Any]) -> None:
        self._send(message)

    def add_candidate(self, candidate: IceCandidate | None) -> None:
        """Queue a trickled candidate (None or ``""``: end of candidates);
        call from the moment the offer arrives. Never blocks."""
        if self._ending:
            return
        if candidate is not None and candidate.candidate.strip():
            self._candidate_count += 1
            if self._candidate_count > MAX_CANDIDATES:
                if self._candidate_count == MAX_CANDIDATES + 1:
                    self._send({"type": "error", "code": "bad-candidate",
                                "message": f"more than {MAX_CANDIDATES} candidates for one call"})
                return
        self._candidates.put_nowait(candidate)

    async def _apply_candidates(self) -> None:
        while True:
            init = await self._candidates.get()
            try:
                candidate = parse_candidate(init) if init is not None else None
            except (CandidateError, ValueError) as exc:
                logger.info("call %s: candidate ignored: %s", self.id, exc)
                self._send({"type": "error", "code": "bad-candidate", "message": str(exc)})
                continue
            if candidate is not None:
                refusal = candidate_refusal(candidate.ip, self._policy)
                if refusal is not None:
                    # Not an error: a browser's private or mDNS candidate is normal.
                    logger.debug("call %s: candidate %s dropped: %s", self.id, candidate.ip, refusal)
                    continue
                self._usable_candidates += 1
            if candidate is None and not self._usable_candidates:
                # Every candidate was refused: ending them now would make
                # aioice fail at once with no pair at all; the caller's own
                # checks may still arrive (peer-reflexive), or the connect
                # timeout ends the call.
                logger.info("call %s: end of candidates without a usable one: not applied", self.id)
                continue
            if candidate is None:
                # End of candidates. Firefox sends one per m-section; aiortc's
                # addIceCandidate(None) ends them for every transport, so it is
                # applied once every offered section has ended (or a bare null).
                if init is not None and init.sdp_mid is not None:
                    self._ended_mids.add(init.sdp_mid)
                    if not self._mids <= self._ended_mids:
                        continue
            try:
                await self.pc.addIceCandidate(candidate)
            except Exception as exc:  # aiortc raises assorted errors on odd input
                logger.info("call %s: candidate refused by aiortc: %r", self.id, exc)
                self._send({"type": "error", "code": "bad-candidate", "message": f"candidate refused: {exc}"})

    # -- state --------------------------------------------------------------------------------

    async def _on_connection_state(self) -> None:
        state = self.pc.connectionState
        logger.info("call %s (%s): connection %s", self.id, self.caller, state)
        if state == "connected" and not self.connected.is_set() and self.manifest is not None:
            self.manifest.connected_at = time.time()
            metrics.call_connected(self.manifest.connected_at - self.started_at)
            self.connected.set()
            self.media.on_connected()
            self.quality.on_connected()
            self.manifest.quality = self.quality.to_json()
            self.write_manifest()
            self.events.put("on_connected", self._hook_connected)
            self._spawn(self._measure_quality(), "quality")
        elif state in ("failed", "closed"):
            self._spawn(self.end("ice-failed" if state == "failed" else "closed"), "end")

    async def _hook_connected(self) -> None:
        await self.bot.on_connected(self.call)

    async def _connect_timeout(self) -> None:
        try:
            await asyncio.wait_for(self.connected.wait(), self.config.bot.connect_timeout)
        except asyncio.TimeoutError:
            await self.end("connect-timeout")

    async def _measure_quality(self) -> None:
        """The RTT at connect, then now and then (the pair is in already)."""
        await self.quality.measure_rtt()
        if self.manifest is not None and not self._ending:
            self.write_manifest()
        await self.quality.run()

    async def _live_manifest(self) -> None:
        while True:
            await asyncio.sleep(LIVE_MANIFEST_INTERVAL)
            self.write_manifest()

    async def _duration_limit(self) -> None:
        await asyncio.sleep(self.config.max_call_seconds)
        await self.end("max-duration")

    def _spawn(self, coro: Any, name: str) -> asyncio.Task[Any]:
        task = asyncio.get_running_loop().create_task(coro, name=f"call {self.id} {name}")
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        return task

    # -- what a bot does ------------------------------------------------------------------------

    @property
    def records(self) -> bool:
        """Whether this call is recorded (the flags and the bot agree)."""
        recorder = self.media.recorder
        return recorder is not None and recorder.options.enabled

    def bot_stats(self) -> dict[str, Any]:
        return {**self.media.stats(), "events": self.events.stats(), "messages": self.channels.stats()}

    def write_manifest(self) -> None:
        """Rewrite ``meta.json`` now (atomic, no fsync; see CallManifest.update)."""
        manifest = self.manifest
        if manifest is None:
            return
        if self.media.recorder is not None:
            manifest.recording = self.media.recorder.status()
        manifest.bot_stats = self.bot_stats()
        manifest.bot_data = self.call.meta
        manifest.update()

    async def write_file(self, name: str, data: bytes) -> Path:
        if self.directory is None or self.manifest is None:
            raise _not_yet("write_file")
        if not is_bot_file_name(name):
            raise ValueError(
                f"{name!r}: a bot's file name is letters, digits, '.', '_', '-' (not starting with "
                "'.', and not photo-, frame-, recording., sent- or meta.)"
            )
        if not isinstance(data, (bytes, bytearray, memoryview)):
            raise TypeError("data must be bytes")
        data = bytes(data)
        path = self.directory.file(name)
        await asyncio.to_thread(atomic_write_bytes, path, data)
        digest = await asyncio.to_thread(sha256_file, path)
        files = self.manifest.bot_files
        files[:] = [f for f in files if f["name"] != name]
        files.append({"name": name, "kind": "bot", "size": len(data), "sha256": digest})
        self.write_manifest()
        return path

    async def send_photo(self, data: bytes, *, mime: str, name: str) -> dict[str, Any]:
        if self.directory is None or self.manifest is None:
            raise _not_yet("send_photo")
        from photos import MIME_TYPES, PhotoError  # noqa: PLC0415  (photos is imported already)

        number = self.media.next_sent_photo()
        photo_id = f"{self.config.bot_name}-{number}"
        file_name = f"sent-{number:04d}{MIME_TYPES.get(mime, '.bin')}"
        entry: dict[str, Any] = {"id": photo_id, "name": name, "mime": mime, "size": len(data)}
        try:
            link = self.media.photos_link()
            reply = await link.send_photo(bytes(data), photo_id=photo_id, mime=mime, name=name)
        except PhotoError as exc:
            entry.update(acknowledged=False, error=exc.code)
            raise
        except (TimeoutError, asyncio.TimeoutError, ConnectionError) as exc:
            entry.update(acknowledged=False, error=type(exc).__name__)
            raise
        else:
            entry.update(acknowledged=True, sha256=reply["sha256"])
            path = self.directory.file(file_name)
            await asyncio.to_thread(atomic_write_bytes, path, bytes(data))
            entry["file"] = file_name
            return reply
        finally:
            self.manifest.photos_sent.append(entry)
            self.write_manifest()

    # -- the end ------------------------------------------------------------------------------------

    def request_end(self, reason: str) -> None:
        if not self.ending:
            self._end_requested = True
            self._spawn(self.end(reason), "end")

    async def end(self, reason: str, *, notify: bool = True) -> None:
        """End the call and free everything; safe to call more than once."""
        if self._ending:
            await self.ended.wait()
            return
        self._ending = True
        self.end_reason = reason
        logger.info("call %s (%s): ending: %s", self.id, self.caller, reason)
        if notify and reason not in _CALLER_REASONS:
            self._send({"type": "close"})
        recording: dict[str, Any] = {}
        try:
            with contextlib.suppress(Exception):  # counters of a live connection only
                await self.quality.on_end()
            await self.events.close()
            recording = await self.media.stop(reason)
            with contextlib.suppress(Exception):
                await self.pc.close()
            await cancel_and_wait(list(self._tasks))
        finally:
            try:
                if self.manifest is not None:
                    self.manifest.recording = recording
                    if self.quality.at_connect is not None:  # never connected: nothing measured
                        self.manifest.quality = self.quality.to_json()
                    self.manifest.ended_at = time.time()
                    self.manifest.end_reason = reason
                    await self._run_on_ended()
                    self.manifest.bot_stats = self.bot_stats()
                    self.manifest.bot_data = self.call.meta
                    self.manifest.status = "complete"
                    await self.manifest.write_async()
            finally:
                if self.manifest is not None:  # refused calls are not calls
                    metrics.call_ended(reason, recording)
                self.ended.set()
                if self._on_ended is not None:
                    self._on_ended(self)

    async def _run_on_ended(self) -> None:
        summary = self.summary()
        try:
            await asyncio.wait_for(self.bot.on_ended(self.call, summary), ON_ENDED_TIMEOUT)
        except asyncio.TimeoutError:
            logger.error("call %s: bot hook on_ended took over %.0f s; finalized without it", self.id, ON_ENDED_TIMEOUT)
            self.errors.append(f"on_ended: did not finish within {ON_ENDED_TIMEOUT:.0f} s")
        except Exception as exc:
            logger.error("call %s: bot hook on_ended failed: %s: %s", self.id, type(exc).__name__, exc,
                         exc_info=(type(exc), exc, exc.__traceback__))
            self.errors.append(f"on_ended: {type(exc).__name__}: {exc}")

    def summary(self) -> CallSummary:
        manifest = self.manifest
        directory = self.directory.path if self.directory is not None else None
        recording = manifest.recording if manifest is not None else {}
        end = manifest.ended_at if manifest is not None and manifest.ended_at else time.time()
        connected_at = manifest.connected_at if manifest is not None else None
        file_name = recording.get("file")
        return CallSummary(
            call_id=self.id,
            caller=self.caller,
            reason=self.end_reason or "",
            duration=round(end - self.started_at, 3),
            connected_duration=round(end - connected_at, 3) if connected_at else None,
            directory=directory,
            recording=directory / file_name if directory is not None and file_name else None,
            recording_state=recording.get("state", "disabled"),
            photos=tuple(Photo.from_entry(p, directory) for p in (manifest.photos if manifest else [])),
            frames=tuple(
                directory / f["name"] for f in recording.get("files", [])
                if f.get("kind") == "frame" and directory is not None
            ),
            errors=tuple(self.errors),
        )


class _BotFailed(Exception):
    """The bot's on_call raised something other than RefuseCall (internal)."""


def _not_yet(what: str) -> CallbotError:
    from media.errors import InvalidState

    return InvalidState(f"{what} (the call has no directory until on_call returns)", "new")


def check_offer(offer_sdp: str) -> tuple[frozenset[str], set[str]]:
    """The kinds of media offered and the mids, or :class:`BadOffer`.

    aiortc accepts an offer with no media and answers it with nothing; such a
    call could never connect, so it is refused up front.
    """
    try:
        parsed = sdp.SessionDescription.parse(offer_sdp)
    except Exception as exc:  # aiortc's parser raises a variety of errors
        raise BadOffer(f"unparseable SDP ({type(exc).__name__})") from None
    kinds = frozenset(m.kind for m in parsed.media if m.kind in ("audio", "video", "application"))
    if not kinds:
        raise BadOffer("the offer has no audio, video or data section")
    if not all(m.ice.usernameFragment and m.ice.password for m in parsed.media):
        raise BadOffer("the offer has no ICE credentials")
    # Without a fingerprint DTLS cannot authenticate the caller (RFC 8122
    # section 5, RFC 5763 section 5); aiortc would answer and then wait for
    # the connect timeout.
    if not all(m.dtls is not None and m.dtls.fingerprints for m in parsed.media if m.port != 0):
        raise BadOffer("the offer has no DTLS fingerprint (a=fingerprint)")
    mids = {m.rtp.muxId for m in parsed.media if m.rtp.muxId}
    return kinds, mids
