"""The media side of one call: incoming tracks, recording, what the bot
receives, what it sends back, and photos.

Per incoming track: one tap (``peer.tap``) copies the encoded frames to the
recorder and to echo tracks; aiortc decodes only when something needs decoded
frames, through one shared :class:`peer.decoded.DecodedStream`.

Video for the bot, by the rate it asks for (``Call.video_fps``):

- up to :data:`KEYFRAME_PATH_MAX_FPS` (2 a second): pictures from the
  recorder's sampler, which asks the caller for a keyframe when one is due
  and decodes that keyframe alone, sharing the decode with the sampled JPEGs
  (about 1% of a core, measured by ``bench/record_bench.py``);
- faster, or when the bot already decodes video to send it back: every frame
  is decoded and the bot gets at most ``video_fps`` of them a second.
"""

from __future__ import annotations

import asyncio
import fractions
import logging
import math
from dataclasses import replace
from typing import TYPE_CHECKING, Any, Callable

from aiortc import sdp
from aiortc.mediastreams import MediaStreamTrack

from media.errors import InvalidState
from media.recorder import CallRecorder
from media.sampler import PictureConsumer
from peer.api import Bot, Photo, RefusePhoto
from peer.decoded import DecodedStream, TransformTrack
from peer.echo import EncodedEchoTrack
from peer.hooks import FrameFeed
from peer.tap import EncodedFrameTap
from photos import PHOTOS_LABEL, PhotoChannel, PhotoComplete, PhotoStore, attach_photo_channel
from photos.errors import Refused
from photos.image import ImageInfo

if TYPE_CHECKING:
    import av

    from peer.call import CallSession

logger = logging.getLogger(__name__)

#: Up to this rate the bot's video comes from keyframes decoded alone.
KEYFRAME_PATH_MAX_FPS = 2.0
_MS = fractions.Fraction(1, 1000)


class _BotPictures(PictureConsumer):
    """Sampler pictures for the bot: handed to the event loop's feed."""

    def __init__(self, media: CallMedia, interval: float) -> None:
        super().__init__(interval)
        self._media = media
        self._loop = asyncio.get_running_loop()

    def on_picture(self, picture: av.VideoFrame, t: float, source: str) -> None:
        picture.pts = int(round(t * 1000))
        picture.time_base = _MS
        try:
            self._loop.call_soon_threadsafe(self._media.video_feed.offer, picture)
        except RuntimeError:
            pass  # the loop is closed: the call is over


class CallMedia:
    def __init__(self, session: CallSession) -> None:
        self.session = session
        self.call = session.call
        bot = session.bot
        self.taps: dict[str, EncodedFrameTap] = {}
        self.incoming: dict[str, MediaStreamTrack] = {}
        self.recorder: CallRecorder | None = None
        self._decoded: dict[str, DecodedStream] = {}
        # Talk-back planned in on_call, attached once the offer is applied.
        self._answered = False
        self._echo: set[str] = set()
        self._transforms: dict[str, Callable[[Any], Any]] = {}
        self._tracks: dict[str, MediaStreamTrack] = {}
        self.outgoing: list[MediaStreamTrack] = []
        # What the bot receives.
        prefix = f"call {session.id}"
        self.video_feed = FrameFeed(
            f"{prefix} video hook", "on_video_frame", self._hook("on_video_frame"), session.hook_failed,
            maxsize=bot.video_queue,
        )
        self.audio_feed = FrameFeed(
            f"{prefix} audio hook", "on_audio_frame", self._hook("on_audio_frame"), session.hook_failed,
            maxsize=bot.audio_queue,
        )
        self._pictures: _BotPictures | None = None
        self._video_subscribed = False
        self._audio_subscribed = False
        self._last_video_at = -math.inf
        # Photos.
        self.photo_store: PhotoStore | None = None
        self.photo_channels: list[PhotoChannel] = []
        self._sent_photos = 0

    def _hook(self, name: str) -> Callable[..., Any]:
        method = getattr(self.session.bot, name)

        async def run(frame: Any) -> None:
            await method(self.call, frame)

        return run

    # -- planning talk-back (Bot.on_call) -----------------------------------------

    def _check_planning(self, what: str) -> None:
        if self._answered:
            raise InvalidState(f"{what} (outgoing media is set up in on_call)", "answered")

    def plan_echo(self, kinds: tuple[str, ...]) -> None:
        self._check_planning("echo")
        for kind in kinds:
            if kind not in ("audio", "video"):
                raise ValueError(f"echo kinds are 'audio' and 'video', not {kind!r}")
            self._echo.add(kind)

    def plan_transform(self, kind: str, transform: Callable[[Any], Any]) -> None:
        self._check_planning(f"send_{kind}")
        if not callable(transform):
            raise TypeError("the transform must be callable")
        self._transforms[kind] = transform

    def plan_track(self, track: MediaStreamTrack) -> None:
        self._check_planning("add_track")
        if track.kind not in ("audio", "video"):
            raise ValueError(f"a track is audio or video, not {track.kind!r}")
        self._tracks[track.kind] = track

    # -- the offer is applied --------------------------------------------------------

    def prepare(self) -> None:
        """Before the offer is applied: the recorder, with the call's choices."""
        session, call = self.session, self.call
        base = session.config.recording
        options = replace(
            base,
            enabled=base.enabled and call.record,
            frame_interval=base.frame_interval if call.sample_frames else 0.0,
        )
        assert session.directory is not None
        self.recorder = CallRecorder(session.directory, options, pictures_on_demand=True)
        self.video_rate_changed()

    def on_track(self, track: MediaStreamTrack) -> None:
        """``pc.on("track")``: tap it, record it, feed the bot."""
        if track.kind in self.incoming or track.kind not in ("audio", "video"):
            return
        pc = self.session.pc
        receiver = next((t.receiver for t in pc.getTransceivers() if t.receiver.track is track), None)
        if receiver is None:
            return
        self.incoming[track.kind] = track
        logger.info("call %s: incoming %s track", self.session.id, track.kind)
        # aiortc's decoder stays idle until something needs decoded frames.
        tap = EncodedFrameTap.attach(receiver, track, decode=False)
        self.taps[track.kind] = tap
        self._decoded[track.kind] = DecodedStream(track, tap, name=f"call {self.session.id} decoded {track.kind}")
        assert self.recorder is not None
        self.recorder.add_source(tap)
        if track.kind == "video":
            self.video_rate_changed()
        else:
            self.audio_changed()

    def attach_outgoing(self) -> None:
        """After the offer is applied, before the answer: add the bot's tracks
        (aiortc puts each on the transceiver the caller offered for its kind)."""
        self._answered = True
        pc = self.session.pc
        for kind in ("audio", "video"):
            track: MediaStreamTrack | None = None
            if kind in self._tracks:
                track = self._tracks[kind]
                pc.addTrack(track)
            elif kind in self._transforms and kind in self._decoded:
                track = TransformTrack(
                    kind, self._decoded[kind], self._transforms[kind],
                    self.session.runtime.to_thread, self.session.hook_failed,
                )
                pc.addTrack(track)
            elif kind in self._echo and kind in self.taps:
                echo = EncodedEchoTrack(self.taps[kind])
                echo.bind_sender(pc.addTrack(echo))
                track = echo
            if track is not None:
                self.outgoing.append(track)

    def on_connected(self) -> None:
        self.session.manifest.tracks = negotiated_tracks(self.session.pc.localDescription.sdp, self.incoming)

    # -- what the bot receives -----------------------------------------------------------

    def video_rate_changed(self) -> None:
        fps = self.call.video_fps
        decoded = self._decoded.get("video")
        # A bot that sends back transformed video decodes every frame anyway.
        full = fps > KEYFRAME_PATH_MAX_FPS or (fps > 0 and "video" in self._transforms)
        if fps > 0:
            self.video_feed.start()
        # Pictures from the sampler at low rates.
        interval = 1.0 / fps if 0 < fps and not full else 0.0
        if self._pictures is None and interval > 0 and self.recorder is not None:
            self._pictures = _BotPictures(self, interval)
            self.recorder.add_picture_consumer(self._pictures)
        elif self._pictures is not None:
            self._pictures.interval = interval
        # Every frame decoded at high rates.
        if decoded is not None:
            if full and not self._video_subscribed:
                decoded.subscribe(self._on_decoded_video)
                self._video_subscribed = True
            elif not full and self._video_subscribed:
                decoded.unsubscribe(self._on_decoded_video)
                self._video_subscribed = False

    def _on_decoded_video(self, frame: av.VideoFrame) -> None:
        fps = self.call.video_fps
        if fps <= 0:
            return
        now = asyncio.get_running_loop().time()
        # A little slack so that a 30 fps stream at video_fps=30 is not thinned.
        if not math.isinf(fps) and now - self._last_video_at < 0.9 / fps:
            return
        self._last_video_at = now
        self.video_feed.offer(frame)

    def audio_changed(self) -> None:
        decoded = self._decoded.get("audio")
        wanted = self.call.audio_frames
        if wanted:
            self.audio_feed.start()
        if decoded is None:
            return
        if wanted and not self._audio_subscribed:
            decoded.subscribe(self.audio_feed.offer)
            self._audio_subscribed = True
        elif not wanted and self._audio_subscribed:
            decoded.unsubscribe(self.audio_feed.offer)
            self._audio_subscribed = False

    # -- photos ------------------------------------------------------------------------------

    def _store(self) -> PhotoStore:
        if self.photo_store is None:
            session = self.session
            assert session.directory is not None
            self.photo_store = PhotoStore(session.directory, limits=session.config.photos, on_saved=self._photo_saved)
        return self.photo_store

    def on_photos_channel(self, channel: Any) -> PhotoChannel:
        link = attach_photo_channel(channel, self._store(), check=self._check_photo, after_save=self._after_save)
        self.photo_channels.append(link)
        return link

    async def _check_photo(self, photo: PhotoComplete, info: ImageInfo) -> None:
        bot = self.session.bot
        if type(bot).check_photo is Bot.check_photo:  # not overridden: nothing to ask
            return
        candidate = Photo(
            path=None, mime=photo.mime, size=photo.size, sha256=photo.sha256,
            width=info.width, height=info.height, name=photo.name, id=photo.id, data=bytes(photo.data),
        )
        try:
            await bot.check_photo(self.call, candidate)
        except RefusePhoto as exc:
            raise Refused(exc.message, exc.code) from None
        except Exception as exc:
            self.session.hook_failed("check_photo", exc)
            raise Refused("the bot failed while checking the photo", "bot-error") from None

    def _photo_saved(self, entry: dict[str, Any]) -> None:
        # Before the photo-saved reply: a reader told photo-saved finds it listed.
        self.session.manifest.photos.append(entry)
        self.session.write_manifest()

    def _after_save(self, entry: dict[str, Any], data: bytes) -> None:
        directory = self.session.directory
        photo = Photo.from_entry(entry, directory.path if directory is not None else None, data)
        self.session.events.put("on_photo", self._hook_photo, photo)

    async def _hook_photo(self, photo: Photo) -> None:
        await self.session.bot.on_photo(self.call, photo)

    def photos_link(self) -> PhotoChannel:
        """The caller's photos channel, or one the bot opens."""
        for link in self.photo_channels:
            if not link.closed:
                return link
        pc = self.session.pc
        if pc.sctp is None:
            raise InvalidState("send_photo (the caller offered no data channels)", "no-data")
        return self.on_photos_channel(pc.createDataChannel(PHOTOS_LABEL, ordered=True))

    def next_sent_photo(self) -> int:
        self._sent_photos += 1
        return self._sent_photos

    # -- stats and the end -----------------------------------------------------------------

    def stats(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "video": {"fps": self.call.video_fps, **self.video_feed.stats()},
            "audio": {"on": self.call.audio_frames, **self.audio_feed.stats()},
        }
        talkback = {}
        for track in self.outgoing:
            if isinstance(track, EncodedEchoTrack):
                talkback[track.kind] = {"mode": "echo", "frames": track.frames, "dropped": track.dropped}
            elif isinstance(track, TransformTrack):
                talkback[track.kind] = {"mode": "transform", **track.stats()}
            else:
                talkback[track.kind] = {"mode": "track"}
        if talkback:
            out["talkback"] = talkback
        return out

    async def stop(self, reason: str) -> dict[str, Any]:
        """Stop everything; returns the recorder's final manifest section."""
        for track in self.outgoing:
            track.stop()
        await self.video_feed.close()
        await self.audio_feed.close()
        for stream in self._decoded.values():
            await stream.close()
        for link in self.photo_channels:
            await link.aclose()
        if self.recorder is None:
            return {}
        return await self.recorder.stop(reason)


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
