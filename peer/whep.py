"""WHEP viewers of a live call: receive-only sessions that carry the call's
incoming audio and video as they arrive, never decoded or re-encoded.

Each viewer is its own aiortc ``RTCPeerConnection`` whose tracks are
:class:`peer.echo.EncodedEchoTrack`\\ s on the call's taps (``peer.tap``): a
second subscriber next to the recorder, with its own bounded queue, so a slow
viewer drops its own frames (and skips to a keyframe) without touching the
recording. A viewer's track takes frames only once aiortc's sender starts
(connected), and then asks the publisher for a keyframe, so a viewer who joins
mid-call sees a picture within a round trip instead of at the next periodic
keyframe. Keyframe requests from the viewer (PLI/FIR) go to the publisher too.

Encoded frames are only valid in the codec they were encoded with, so each
viewer transceiver is limited to the call's incoming codec
(``setCodecPreferences`` on a transceiver made before the offer is applied,
which aiortc then uses for that m-line). A viewer who cannot take that codec
does not get that kind.

Bounded: ``--max-viewers`` in total and ``--max-viewers-per-call``; a viewer
that does not connect within ``--connect-timeout`` is dropped; the call's
end ends its viewers.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from typing import TYPE_CHECKING, Any

from aiortc import RTCIceCandidate, RTCPeerConnection, RTCRtpSender, RTCSessionDescription, sdp

from peer.call import BadOffer, check_offer
from peer.echo import EncodedEchoTrack
from peer.ice import rtc_configuration
from peer.whip import SessionRefused, new_etag, new_resource_id, offer_ice_ufrag
from peer.tasks import cancel_and_wait

if TYPE_CHECKING:
    from peer.call import CallSession
    from peer.runtime import BotRuntime

logger = logging.getLogger(__name__)

#: Seconds a viewer refused for being one too many is told to wait.
RETRY_AFTER = 10
#: Seconds a viewer of a call that has no media yet waits for its first frame.
MEDIA_WAIT = 5.0


class _FirstFrame:
    """A tap sink that announces the first frame (or the end) of any tap."""

    def __init__(self) -> None:
        self.event = asyncio.Event()

    def on_frame(self, frame: Any) -> None:
        self.event.set()

    def on_end(self, tap: Any) -> None:
        self.event.set()


def offered_codecs(offer_sdp: str) -> dict[str, set[str]]:
    """kind -> the lower-case MIME types the offer's m-lines of that kind accept."""
    out: dict[str, set[str]] = {}
    for media in sdp.SessionDescription.parse(offer_sdp).media:
        out.setdefault(media.kind, set()).update(c.mimeType.lower() for c in media.rtp.codecs)
    return out


class WhepViewer:
    """One viewer of one call: ``/whep/<call id>/<id>``."""

    def __init__(self, hub: LiveViewers, session: CallSession, viewer: str) -> None:
        self.hub = hub
        self.session = session
        self.call_id = session.id
        self.viewer = viewer
        self.id = new_resource_id()
        self.etag = new_etag()
        self.ice_ufrag: str | None = None
        config = hub.runtime.config
        self.pc = RTCPeerConnection(rtc_configuration(config.ice, config.turn))
        self.tracks: list[EncodedEchoTrack] = []
        self.connected = asyncio.Event()
        self.ended = asyncio.Event()
        self.end_reason: str | None = None
        self._ending = False
        self._tasks: set[asyncio.Task[Any]] = set()
        self.pc.on("connectionstatechange", self._on_connection_state)

    def __repr__(self) -> str:
        return f"<WhepViewer {self.id} of {self.call_id} {self.pc.connectionState}>"

    @property
    def kinds(self) -> list[str]:
        return [t.kind for t in self.tracks]

    async def answer(self, offer_sdp: str) -> str:
        """Apply the viewer's offer and return our answer (candidates inside).

        Raises :class:`BadOffer`, or :class:`SessionRefused` when the call
        has no media this viewer can take yet.
        """
        kinds, _ = check_offer(offer_sdp)
        if not kinds & {"audio", "video"}:
            raise BadOffer("the offer has no audio or video section")
        accepted = offered_codecs(offer_sdp)
        live = await self._live_taps()
        if not live:
            raise SessionRefused("no-media-yet", "no audio or video has arrived in this call yet", 1)
        for kind in ("video", "audio"):
            tap = live.get(kind)
            if tap is None or kind not in kinds:
                continue
            mime = f"{kind}/{tap.codec}".lower()
            if mime not in accepted.get(kind, set()):
                logger.info("viewer %s of %s: does not accept %s; no %s", self.id, self.call_id, mime, kind)
                continue
            track = EncodedEchoTrack(tap, lazy=True)
            # Made before the offer is applied, so aiortc takes this
            # transceiver (and its codec preferences) for the offer's m-line.
            transceiver = self.pc.addTransceiver(track, direction="sendonly")
            capabilities = RTCRtpSender.getCapabilities(kind).codecs
            transceiver.setCodecPreferences(
                [c for c in capabilities if c.mimeType.lower() in (mime, f"{kind}/rtx")]
            )
            track.bind_sender(transceiver.sender)
            self.tracks.append(track)
        if not self.tracks:
            codecs = ", ".join(f"{k}/{t.codec}" for k, t in live.items())
            raise SessionRefused("codec-not-accepted", f"the offer accepts none of the call's codecs ({codecs})")
        await self.pc.setRemoteDescription(RTCSessionDescription(sdp=offer_sdp, type="offer"))
        await self.pc.setLocalDescription(await self.pc.createAnswer())
        self.ice_ufrag = offer_ice_ufrag(offer_sdp)
        self._spawn(self._follow_call(), "follow-call")
        self._spawn(self._connect_timeout(), "connect-timeout")
        return self.pc.localDescription.sdp

    async def _live_taps(self) -> dict[str, Any]:
        """The call's taps that have had a frame (so their codec is known),
        waiting up to :data:`MEDIA_WAIT` for the first one: a viewer may come
        as soon as the call is answered, before its media."""

        def ready() -> dict[str, Any]:
            return {k: t for k, t in self.session.media.taps.items() if not t.ended and t.codec is not None}

        if not ready() and self.session.media.taps:
            first = _FirstFrame()
            taps = list(self.session.media.taps.values())
            for tap in taps:
                tap.subscribe(first)
            try:
                await asyncio.wait_for(first.event.wait(), MEDIA_WAIT)
            except asyncio.TimeoutError:
                pass
            finally:
                for tap in taps:
                    tap.unsubscribe(first)
        return ready()

    async def add_candidate(self, candidate: RTCIceCandidate | None) -> None:
        """A trickled candidate (None: end of candidates)."""
        if not self._ending:
            await self.pc.addIceCandidate(candidate)

    async def _follow_call(self) -> None:
        await self.session.ended.wait()
        await self.end("call-ended")

    async def _connect_timeout(self) -> None:
        try:
            await asyncio.wait_for(self.connected.wait(), self.hub.runtime.config.bot.connect_timeout)
        except asyncio.TimeoutError:
            await self.end("connect-timeout")

    async def _on_connection_state(self) -> None:
        state = self.pc.connectionState
        logger.info("viewer %s of call %s (%s): connection %s", self.id, self.call_id, self.viewer, state)
        if state == "connected":
            self.connected.set()
        elif state in ("failed", "closed"):
            self._spawn(self.end("ice-failed" if state == "failed" else "closed"), "end")

    def _spawn(self, coro: Any, name: str) -> None:
        task = asyncio.get_running_loop().create_task(coro, name=f"viewer {self.id} {name}")
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def end(self, reason: str) -> None:
        """Stop viewing and free the peer connection (idempotent)."""
        if self._ending:
            await self.ended.wait()
            return
        self._ending = True
        self.end_reason = reason
        logger.info("viewer %s of call %s: ending: %s", self.id, self.call_id, reason)
        try:
            for track in self.tracks:
                track.stop()
            with contextlib.suppress(Exception):
                await self.pc.close()
            await cancel_and_wait(list(self._tasks))
        finally:
            self.ended.set()
            self.hub._forget(self)

    def stats(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "call_id": self.call_id,
            "viewer": self.viewer,
            "state": self.pc.connectionState,
            "tracks": {t.kind: {"frames": t.frames, "dropped": t.dropped} for t in self.tracks},
        }


class LiveViewers:
    """Every WHEP viewer of this process, bounded."""

    def __init__(self, runtime: BotRuntime) -> None:
        self.runtime = runtime
        self.viewers: dict[str, WhepViewer] = {}
        self._closed = False

    def of_call(self, call_id: str) -> list[WhepViewer]:
        return [v for v in self.viewers.values() if v.call_id == call_id]

    def get(self, call_id: str, viewer_id: str) -> WhepViewer | None:
        viewer = self.viewers.get(viewer_id)
        return viewer if viewer is not None and viewer.call_id == call_id else None

    async def start(self, session: CallSession, offer_sdp: str, viewer_name: str) -> tuple[WhepViewer, str]:
        """A viewer of ``session`` for this offer; returns it and the answer.

        Raises :class:`BadOffer` or :class:`SessionRefused`.
        """
        limits = self.runtime.config.bot
        if self._closed:
            raise SessionRefused("shutting-down", "the server is shutting down", RETRY_AFTER)
        if len(self.viewers) >= limits.max_viewers:
            raise SessionRefused("too-many-viewers", f"{len(self.viewers)} viewers, the server's limit", RETRY_AFTER)
        watching = len(self.of_call(session.id))
        if watching >= limits.max_viewers_per_call:
            raise SessionRefused("too-many-viewers", f"{watching} viewers of this call, its limit", RETRY_AFTER)
        viewer = WhepViewer(self, session, viewer_name)
        self.viewers[viewer.id] = viewer
        try:
            answer = await viewer.answer(offer_sdp)
        except BaseException as exc:
            await asyncio.shield(viewer.end("refused"))
            if isinstance(exc, (BadOffer, SessionRefused)) or not isinstance(exc, Exception):
                raise
            logger.warning("viewer of call %s: cannot answer: %r", session.id, exc)
            raise BadOffer(f"the offer could not be answered: {exc}") from None
        logger.info("viewer %s (%s) watches call %s: %s", viewer.id, viewer_name, session.id, ", ".join(viewer.kinds))
        return viewer, answer

    def _forget(self, viewer: WhepViewer) -> None:
        if self.viewers.get(viewer.id) is viewer:
            del self.viewers[viewer.id]

    async def close(self) -> None:
        self._closed = True
        await asyncio.gather(*(v.end("server-shutdown") for v in list(self.viewers.values())))
