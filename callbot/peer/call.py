"""One call between a user and the bot: an aiortc RTCPeerConnection and
everything hanging off it (recording, talk-back, photos, the manifest).

Life cycle: ``answer(offer)`` -> connected -> ``end(reason)``. ``end`` is
idempotent and frees everything: the peer connection (its transports, decoder
threads and tasks), the recorder, the photo channel and the timers.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from typing import Any, Callable

from aiortc import RTCPeerConnection, RTCSessionDescription, sdp
from aiortc.mediastreams import MediaStreamTrack

from ..config import Config
from ..signaling.protocol import IceCandidate
from ..storage import CallDirectory
from ..media.photos import PHOTOS_LABEL, PhotoChannel, PhotoLimits, PhotoStore, attach_photo_channel
from ..media.recorder import CallRecorder
from ..media.tap import EncodedFrameTap
from . import talkback
from .ice import rtc_configuration
from .manifest import CallManifest
from .sdp import CandidateError, add_bitrate_hints, parse_candidate

logger = logging.getLogger(__name__)

SendToCaller = Callable[[dict[str, Any]], None]


class BotCall:
    def __init__(
        self,
        config: Config,
        caller: str,
        directory: CallDirectory,
        send: SendToCaller,
        on_ended: Callable[["BotCall"], None],
    ) -> None:
        self.config = config
        self.caller = caller
        self.directory = directory
        self.id = directory.call_id
        self._send = send
        self._on_ended = on_ended
        self.pc = RTCPeerConnection(rtc_configuration(config.ice, config.security))
        self.manifest = CallManifest(directory, caller, config.bot_name, talkback=config.bot.talkback)
        self.connected = asyncio.Event()
        self.ended = asyncio.Event()
        self._pending_candidates: list[IceCandidate | None] = []
        self._remote_set = False
        self._tasks: set[asyncio.Task[Any]] = set()
        self._ending = False
        self._media = CallMedia(self)
        self.pc.on("connectionstatechange", self._on_connection_state)
        self.pc.on("track", self._guarded(self._media.on_track))
        self.pc.on("datachannel", self._guarded(self._media.on_datachannel))

    def _guarded(self, handler: Callable[[Any], None]) -> Callable[[Any], None]:
        """A failure inside one call's event handler ends that call, with the
        reason in the log and the manifest; the server and other calls go on."""
        def run(arg: Any) -> None:
            try:
                handler(arg)
            except Exception as exc:
                logger.exception("call %s: %s failed", self.id, handler.__name__)
                self.manifest.errors.append(f"{handler.__name__}: {type(exc).__name__}: {exc}")
                self._spawn(self.end("internal-error"), "end")
        return run

    @property
    def ending(self) -> bool:
        return self._ending

    def __repr__(self) -> str:
        return f"<BotCall {self.id} {self.caller} {self.pc.connectionState}>"

    # -- signaling in ------------------------------------------------------------

    async def answer(self, offer_sdp: str) -> None:
        """Apply the caller's offer and send back an answer with our candidates
        inside it (aiortc gathers during setLocalDescription and never trickles)."""
        self.manifest.update()
        check_offer(offer_sdp)
        await self.pc.setRemoteDescription(RTCSessionDescription(sdp=offer_sdp, type="offer"))
        self._remote_set = True
        self._media.add_talkback_tracks()
        for candidate in self._pending_candidates:
            await self._apply_candidate(candidate)
        self._pending_candidates.clear()
        await self.pc.setLocalDescription(await self.pc.createAnswer())
        bot = self.config.bot
        sdp = add_bitrate_hints(
            self.pc.localDescription.sdp,
            start_kbps=bot.start_bitrate_kbps,
            min_kbps=bot.min_bitrate_kbps,
            max_kbps=bot.max_bitrate_kbps,
        )
        if self._ending:
            return
        self._send({"type": "answer", "answer": {"type": "answer", "sdp": sdp}})
        self._spawn(self._connect_timeout(), "connect-timeout")
        self._spawn(self._duration_limit(), "duration-limit")

    async def add_candidate(self, candidate: IceCandidate | None) -> None:
        # aiortc silently ignores candidates added before the remote
        # description, so they wait here until the offer is applied.
        if not self._remote_set:
            if len(self._pending_candidates) < 256:
                self._pending_candidates.append(candidate)
            return
        await self._apply_candidate(candidate)

    async def _apply_candidate(self, init: IceCandidate | None) -> None:
        try:
            candidate = parse_candidate(init) if init is not None else None
            await self.pc.addIceCandidate(candidate)
        except (CandidateError, ValueError) as exc:
            logger.info("call %s: candidate ignored: %s", self.id, exc)
            self._send({"type": "error", "code": "bad-candidate", "message": str(exc)})

    # -- state ----------------------------------------------------------------------

    async def _on_connection_state(self) -> None:
        state = self.pc.connectionState
        logger.info("call %s (%s): connection %s", self.id, self.caller, state)
        if state == "connected" and not self.connected.is_set():
            self.manifest.connected_at = time.time()
            self.connected.set()
            self._media.on_connected()
            self._media.write_manifest()
        elif state in ("failed", "closed"):
            self._spawn(self.end("ice-failed" if state == "failed" else "closed"), "end")

    async def _connect_timeout(self) -> None:
        try:
            await asyncio.wait_for(self.connected.wait(), self.config.bot.connect_timeout)
        except asyncio.TimeoutError:
            await self.end("connect-timeout")

    async def _duration_limit(self) -> None:
        await asyncio.sleep(self.config.security.max_call_seconds)
        await self.end("max-duration")

    def _spawn(self, coro: Any, name: str) -> asyncio.Task[Any]:
        task = asyncio.get_running_loop().create_task(coro, name=f"call {self.id} {name}")
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        return task

    async def end(self, reason: str, *, notify: bool = True) -> None:
        """End the call and free everything; safe to call more than once."""
        if self._ending:
            await self.ended.wait()
            return
        self._ending = True
        logger.info("call %s (%s): ending: %s", self.id, self.caller, reason)
        if notify and reason not in ("caller-closed", "caller-left"):
            self._send({"type": "close"})
        current = asyncio.current_task()
        try:
            await self._media.stop(reason)
            with contextlib.suppress(Exception):
                await self.pc.close()
            for task in list(self._tasks):
                if task is not current:
                    task.cancel()
            for task in list(self._tasks):
                if task is not current:
                    with contextlib.suppress(asyncio.CancelledError, Exception):
                        await task
        finally:
            self.manifest.ended_at = time.time()
            self.manifest.end_reason = reason
            self.manifest.status = "complete"
            await self.manifest.write_async()
            self.ended.set()
            self._on_ended(self)


class BadOffer(ValueError):
    """An offer the bot cannot answer."""


def check_offer(offer_sdp: str) -> None:
    """aiortc accepts an offer with no media and answers it with nothing; such
    a call could never connect, so it is refused up front."""
    try:
        parsed = sdp.SessionDescription.parse(offer_sdp)
    except Exception as exc:  # aiortc's parser raises a variety of errors
        raise BadOffer(f"unparseable SDP ({type(exc).__name__})") from None
    kinds = [m.kind for m in parsed.media]
    if not any(k in ("audio", "video", "application") for k in kinds):
        raise BadOffer("the offer has no audio, video or data section")
    if not all(m.ice.usernameFragment and m.ice.password for m in parsed.media):
        raise BadOffer("the offer has no ICE credentials")


class CallMedia:
    """The media side of a call: what happens to incoming tracks and channels."""

    def __init__(self, call: BotCall) -> None:
        self.call = call
        self._incoming: dict[str, MediaStreamTrack] = {}
        self._taps: dict[str, EncodedFrameTap] = {}
        self._talkback = talkback.TalkbackSenders(call.config.bot.talkback)
        self._recorder = CallRecorder(call.directory, call.config.recording)
        self._photo_store: PhotoStore | None = None
        self._photo_channels: list[PhotoChannel] = []

    def on_track(self, track: MediaStreamTrack) -> None:
        call = self.call
        if track.kind in self._incoming:
            return
        receiver = next(
            (t.receiver for t in call.pc.getTransceivers() if t.receiver.track is track), None
        )
        self._incoming[track.kind] = track
        logger.info("call %s: incoming %s track", call.id, track.kind)
        # Encoded frames are tapped before aiortc's decoder; the decoder only
        # runs when something reads decoded frames (overlay talk-back).
        tap = EncodedFrameTap.attach(receiver, track, decode=self._talkback.needs_decoded(track.kind))
        self._taps[track.kind] = tap
        self._talkback.on_incoming(track, tap)
        self._recorder.add_track(track, receiver)

    def add_talkback_tracks(self) -> None:
        self._talkback.attach(self.call.pc)

    def on_datachannel(self, channel: Any) -> None:
        call = self.call
        logger.info("call %s: data channel %r", call.id, channel.label)
        if channel.label != PHOTOS_LABEL:
            return
        if self._photo_store is None:
            photos = call.config.photos
            self._photo_store = PhotoStore(
                call.directory,
                limits=PhotoLimits(max_bytes=photos.max_bytes, max_photos=photos.max_per_call),
                on_saved=self._photo_saved,
            )
        self._photo_channels.append(attach_photo_channel(channel, self._photo_store))

    def _photo_saved(self, entry: dict[str, Any]) -> None:
        self.call.manifest.photos.append(entry)
        self.write_manifest()

    def write_manifest(self) -> None:
        """The manifest with the recorder's live status in it."""
        self.call.manifest.recording = self._recorder.status()
        self.call.manifest.update()

    def on_connected(self) -> None:
        call = self.call
        call.manifest.tracks = negotiated_tracks(call.pc.localDescription.sdp, self._incoming)

    async def stop(self, reason: str) -> None:
        await self._talkback.stop()
        for channel in self._photo_channels:
            await channel.aclose()
        recording = await self._recorder.stop(reason)
        self.call.manifest.recording = {**recording, "talkback": self._talkback.stats()}


def negotiated_tracks(answer_sdp: str, incoming: dict[str, MediaStreamTrack]) -> list[dict[str, Any]]:
    """Kind, direction and codec of each media section, read from our answer."""
    out = []
    for media in sdp.SessionDescription.parse(answer_sdp).media:
        if media.kind not in ("audio", "video") or not media.rtp.codecs:
            continue
        codec = media.rtp.codecs[0]
        out.append({
            "kind": media.kind,
            "mid": media.rtp.muxId,
            "direction": media.direction,
            "codec": codec.mimeType,
            "clock_rate": codec.clockRate,
            "received": media.kind in incoming,
        })
    return out
