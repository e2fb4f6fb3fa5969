"""Record a call's incoming audio and video, and sample pictures from it.

The call runtime makes one :class:`CallRecorder` per call and, for each
incoming track, calls :meth:`CallRecorder.add_source` with its frame source
(``peer.tap.EncodedFrameTap``); on hang-up (or SIGTERM) it awaits :meth:`CallRecorder.stop`
and merges the returned dict into the call's manifest.

Data path, and where each step runs::

    frame source (event loop) --> ThreadFrameQueue (bounded, drops counted)
        --> worker thread: timeline, start on a keyframe, mux to file,
                           keyframe requests every keyframe_interval
            --> FrameSampler thread (bounded): JPEG every frame_interval

Nothing but the tap's copy into the queue happens on the event loop.

States::

    new --add_source--> recording --stop--> stopping --> stopped
"""

from __future__ import annotations

import asyncio
import enum
import logging
import threading
import time
from dataclasses import dataclass, field
from typing import Any

from media.storage import CallDirectory, sha256_file
from media.containers import PassthroughMuxer, TranscodeMuxer
from media.errors import InvalidState
from media.options import TRANSCODE, RecordingOptions
from media.queues import ThreadFrameQueue, TrackEnded
from media.sampler import FrameSampler, JpegWriter, PictureConsumer
from media.frames import EncodedFrame, FrameSource
from media.timeline import TrackClock

logger = logging.getLogger(__name__)

# How long to watch every track's frames before fixing the timeline. The
# first frames are often late (the sender's encoder starting up), and the
# alignment of audio and video comes from the least delayed frames seen.
SETTLE_SECONDS = 1.0
# How often the worker takes what the queue holds. Frames reach the file at
# most this much later; the Matroska cluster (flush_interval) dominates.
_WAKE_INTERVAL = 0.2


class RecorderState(enum.Enum):
    NEW = "new"
    RECORDING = "recording"
    STOPPING = "stopping"
    STOPPED = "stopped"


@dataclass(frozen=True)
class _AddTrack:
    tap: FrameSource


@dataclass(frozen=True)
class _Stop:
    reason: str


@dataclass
class _Track:
    """The worker's view of one incoming track."""

    tap: FrameSource
    kind: str
    clock: TrackClock | None = None
    codec: str | None = None
    first: EncodedFrame | None = None  # first usable frame (video: a keyframe)
    first_seen: float = 0.0
    buffer: list[EncodedFrame] = field(default_factory=list)  # before the file starts
    in_file: bool = False
    ended: bool = False
    frames: int = 0  # written (or, without a file, timed)
    keyframes: int = 0
    skipped: int = 0  # before the first keyframe / before the file's start
    late: int = 0  # arrived after the file started without this track
    codec_mismatches: int = 0
    undecodable: int = 0  # transcode: skipped until a keyframe after a decode error
    gated: bool = False
    resolution: tuple[int, int] | None = None
    resolution_changes: list[dict[str, Any]] = field(default_factory=list)
    last_ms: int | None = None
    step_ms: int = 0
    last_keyframe_ms: int = 0
    last_request: float = -1e9
    keyframe_requests: int = 0

    def to_json(self, queue_dropped: int) -> dict[str, Any]:
        out: dict[str, Any] = {
            "kind": self.kind,
            "codec": self.codec,
            "in_file": self.in_file,
            "frames": self.frames,
            "dropped": queue_dropped,
            "skipped": self.skipped,
            "late": self.late,
            "keyframes": self.keyframes,
            "keyframe_requests": self.keyframe_requests,
            "timestamp_fixups": self.clock.fixups if self.clock else 0,
            "timestamp_resyncs": self.clock.resyncs if self.clock else 0,
        }
        if self.kind == "video":
            out["resolution"] = list(self.resolution) if self.resolution else None
            out["resolution_changes"] = list(self.resolution_changes)
        if self.codec_mismatches:
            out["codec_mismatches"] = self.codec_mismatches
        if self.undecodable:
            out["undecodable"] = self.undecodable
        return out


class _Worker(threading.Thread):
    """Owns the file: everything after the queue happens in this thread."""

    def __init__(self, recorder: CallRecorder) -> None:
        super().__init__(name=f"recorder-{recorder.call_dir.call_id}", daemon=True)
        self.rec = recorder
        self.options = recorder.options
        self.tracks: dict[str, _Track] = {}
        self.muxer: PassthroughMuxer | TranscodeMuxer | None = None
        self.file_name: str | None = None
        self.container: str | None = None
        self.file_closed = False
        self.started = False
        self.sampler: FrameSampler | None = None
        self.jpeg: JpegWriter | None = None
        self._for_sampler: list[tuple[EncodedFrame, float]] = []
        self.errors: list[str] = []
        self.stop_reason: str | None = None
        self._log = recorder.log_prefix

    # -- thread body ------------------------------------------------------------

    def run(self) -> None:
        q = self.rec.queue
        try:
            stopping = False
            while not stopping:
                # Polling (see ThreadFrameQueue); also honours start_timeout.
                for item in q.drain(timeout=_WAKE_INTERVAL):
                    if isinstance(item, EncodedFrame):
                        self._on_frame(item)
                    elif isinstance(item, _AddTrack):
                        self._add_track(item.tap)
                    elif isinstance(item, TrackEnded):
                        self._track_ended(item.tap)
                    elif isinstance(item, _Stop):
                        self.stop_reason = item.reason
                        stopping = True
                        break
                if not self.started:
                    self._maybe_start(force=stopping)
                if self._for_sampler:
                    # One hand-over per batch: a thread switch per frame costs more.
                    self.sampler.offer(self._for_sampler)  # type: ignore[union-attr]
                    self._for_sampler = []
        except Exception as exc:
            logger.exception("%s: recorder failed", self._log)
            self.errors.append(f"recorder failed: {exc!r}")
        finally:
            self._close_file()
            if self.sampler is not None:
                self.sampler.stop()
            self.rec._worker_done()

    def _add_track(self, tap: FrameSource) -> None:
        self.tracks[tap.kind] = _Track(tap=tap, kind=tap.kind)
        if tap.kind != "video":
            return
        consumers: list[PictureConsumer] = []
        if self.options.sampling:
            self.jpeg = JpegWriter(
                self.rec.call_dir,
                self.options.frame_interval,
                jpeg_quality=self.options.jpeg_quality,
                name=f"sampler-{self.rec.call_dir.call_id}",
            )
            consumers.append(self.jpeg)
        with self.rec._consumers_lock:
            consumers += self.rec._consumers
            if not consumers and not self.rec.pictures_on_demand:
                return
            self.sampler = FrameSampler(
                tap.request_keyframe_threadsafe,
                consumers,
                name=f"sampler-{self.rec.call_dir.call_id}",
            )
        self.sampler.start()

    def _track_ended(self, tap: FrameSource) -> None:
        track = self.tracks.get(tap.kind)
        if track is None:
            return
        track.ended = True
        if all(t.ended for t in self.tracks.values()):
            # The caller is gone: finish the file now rather than at stop(),
            # so it is complete even if the process dies before that.
            if not self.started:
                self._maybe_start(force=True)
            self._close_file()

    # -- before the file starts -------------------------------------------------

    def _on_frame(self, frame: EncodedFrame) -> None:
        track = self.tracks.get(frame.kind)
        if track is None:
            return
        if track.clock is None:
            track.clock = TrackClock(frame.clock_rate, track.tap.release_delay_frames)
            track.codec = frame.codec
        if frame.codec != track.codec:
            # A renegotiated codec cannot go into the same track of a file.
            track.codec_mismatches += 1
            if track.codec_mismatches == 1:
                logger.error(
                    "%s: %s codec changed %s -> %s mid-call; those frames are not recorded",
                    self._log, frame.kind, track.codec, frame.codec,
                )
            return
        if self.started:
            if track.in_file:
                self._emit(track, frame)
            else:
                track.late += 1
            return
        track.clock.observe(frame.timestamp, frame.arrival)
        if track.first is None:
            usable = frame.kind != "video" or (
                frame.keyframe and (frame.codec != "H264" or frame.parameter_sets is not None)
            )
            if not usable:
                # The file must start on a keyframe; ask for one (RTCP PLI).
                track.skipped += 1
                self._request_keyframe(track)
                return
            track.first = frame
            track.first_seen = time.monotonic()
        track.buffer.append(frame)
        if sum(len(t.buffer) for t in self.tracks.values()) >= self.options.queue_frames:
            self._maybe_start(force=True)

    def _maybe_start(self, *, force: bool) -> None:
        ready = [t for t in self.tracks.values() if t.first is not None]
        if not ready:
            return
        now = time.monotonic()
        waited = now - min(t.first_seen for t in ready)
        settled = len(ready) == len(self.tracks) and now - max(t.first_seen for t in ready) >= min(
            SETTLE_SECONDS, self.options.start_timeout
        )
        if not (force or settled or waited >= self.options.start_timeout):
            return
        self.started = True
        # File time 0 is the earliest first frame (estimated capture time).
        epoch = min(t.clock.start_time(t.first.timestamp) for t in ready)  # type: ignore[union-attr]
        for track in ready:
            track.clock.anchor(epoch)  # type: ignore[union-attr]
            track.in_file = True
        for track in self.tracks.values():
            if not track.in_file:
                logger.warning(
                    "%s: no usable %s frame within %.1f s; the file has no %s track",
                    self._log, track.kind, self.options.start_timeout, track.kind,
                )
        if self.options.enabled:
            self._open_file({t.kind: t.first for t in ready})  # type: ignore[misc]
        # Buffered frames go out in file-time order across tracks.
        timed: list[tuple[int, int, _Track, EncodedFrame]] = []
        for order, track in enumerate(ready):
            for frame in track.buffer:
                ms = track.clock.to_ms(frame.timestamp, frame.arrival)  # type: ignore[union-attr]
                if ms is None:
                    track.skipped += 1
                else:
                    timed.append((ms, order, track, frame))
            track.buffer = []
        timed.sort(key=lambda x: (x[0], x[1]))
        for ms, _, track, frame in timed:
            self._write(track, frame, ms)

    def _open_file(self, firsts: dict[str, EncodedFrame]) -> None:
        directory = self.rec.call_dir.path
        try:
            if self.options.mode == TRANSCODE:
                self.muxer = TranscodeMuxer(
                    directory, firsts, self.options.flush_interval,
                    keyframe_interval=self.options.keyframe_interval,
                )
            else:
                self.muxer = PassthroughMuxer(directory, firsts, self.options.flush_interval)
        except Exception as exc:
            logger.exception("%s: cannot open the recording", self._log)
            self.errors.append(f"cannot open recording: {exc}")
            return
        self.file_name = self.muxer.name
        self.container = self.muxer.container
        logger.info(
            "%s: recording %s (%s) to %s",
            self._log, ", ".join(f"{k} {c}" for k, c in sorted(self.muxer.codecs.items())),
            self.options.mode, self.file_name,
        )

    # -- after the file starts --------------------------------------------------

    def _emit(self, track: _Track, frame: EncodedFrame) -> None:
        ms = track.clock.to_ms(frame.timestamp, frame.arrival)  # type: ignore[union-attr]
        if ms is None:
            track.skipped += 1
            return
        self._write(track, frame, ms)

    def _write(self, track: _Track, frame: EncodedFrame, ms: int) -> None:
        if track.gated:
            if not frame.keyframe:
                track.undecodable += 1
                return
            track.gated = False
        if track.last_ms is not None and ms > track.last_ms:
            step = ms - track.last_ms
            track.step_ms = step if track.step_ms == 0 else min(track.step_ms, step)
        track.last_ms = ms
        if frame.kind == "video" and frame.keyframe:
            track.keyframes += 1
            track.last_keyframe_ms = ms
            size = (frame.width, frame.height) if frame.width and frame.height else None
            if size is not None and size != track.resolution:
                if track.resolution is not None:
                    track.resolution_changes.append({"t": ms / 1000, "width": size[0], "height": size[1]})
                    logger.info(
                        "%s: video resolution %dx%d -> %dx%d at %.3f s",
                        self._log, *track.resolution, *size, ms / 1000,
                    )
                track.resolution = size
        if self.muxer is not None and not self.file_closed:
            try:
                ok = self.muxer.write(frame, ms)
            except Exception as exc:
                # Disk full, or a frame the muxer refuses: stop the file (what
                # is written stays playable), keep sampling pictures.
                logger.exception("%s: writing the recording failed; file closed", self._log)
                self.errors.append(f"write failed at {ms / 1000:.3f} s: {exc}")
                self._close_file()
            else:
                if ok is False and frame.kind == "video":
                    # Transcode: the decoder lost a reference; resume on a keyframe.
                    track.gated = True
                    self._request_keyframe(track, force=True)
        track.frames += 1
        if frame.kind == "video":
            if self.sampler is not None:
                self._for_sampler.append((frame, ms / 1000))
            interval = self.options.keyframe_interval
            if interval > 0 and ms - track.last_keyframe_ms >= interval * 1000:
                self._request_keyframe(track)

    def _request_keyframe(self, track: _Track, *, force: bool = False) -> None:
        # At most one request a second from here: the caller needs a round
        # trip to answer, and the tap merges bursts anyway.
        now = time.monotonic()
        if force or now - track.last_request >= 1.0:
            track.last_request = now
            track.keyframe_requests += 1
            track.tap.request_keyframe_threadsafe()

    def _close_file(self) -> None:
        if self.muxer is None or self.file_closed:
            return
        self.file_closed = True
        try:
            self.muxer.close()
        except Exception as exc:
            logger.exception("%s: closing the recording failed", self._log)
            self.errors.append(f"close failed: {exc}")
        else:
            logger.info("%s: recording %s complete", self._log, self.file_name)

    def duration(self) -> float:
        ends = [t.last_ms + t.step_ms for t in self.tracks.values() if t.in_file and t.last_ms is not None]
        return max(ends) / 1000 if ends else 0.0


class CallRecorder:
    """Records one call; see the module docstring for how the bot uses it."""

    def __init__(
        self,
        call_dir: CallDirectory,
        options: RecordingOptions,
        *,
        loop: asyncio.AbstractEventLoop | None = None,
        stop_timeout: float = 30.0,
        pictures_on_demand: bool = False,
    ) -> None:
        self.call_dir = call_dir
        self.options = options
        #: Run (and keep a sampler ready) even with recording and sampling off,
        #: so that :meth:`add_picture_consumer` works at any time.
        self.pictures_on_demand = pictures_on_demand
        self._consumers: list[PictureConsumer] = []
        self._consumers_lock = threading.Lock()
        self.log_prefix = f"call {call_dir.call_id}"
        self._loop = loop or asyncio.get_running_loop()
        self._stop_timeout = stop_timeout
        self.state = RecorderState.NEW
        self.queue = ThreadFrameQueue(options.queue_frames, name=f"{self.log_prefix} recorder")
        self._worker = _Worker(self)
        self._done = self._loop.create_future()
        self._taps: dict[str, FrameSource] = {}
        self._result: dict[str, Any] | None = None
        self._stopping: asyncio.Future[dict[str, Any]] | None = None
        self._stop_reason: str | None = None

    @property
    def active(self) -> bool:
        """Whether this recorder does anything (a file, sampled pictures, or
        pictures for someone who may ask)."""
        return self.options.enabled or self.options.sampling or self.pictures_on_demand

    def add_picture_consumer(self, consumer: PictureConsumer) -> None:
        """Give ``consumer`` decoded pictures of the video track at its own
        interval, from the same keyframe-only decode as sampled frames. Call
        before or after the video track arrives (with ``pictures_on_demand``
        for a recorder that neither records nor samples)."""
        with self._consumers_lock:
            self._consumers.append(consumer)
            sampler = self._worker.sampler
        if sampler is not None:
            sampler.add_consumer(consumer)

    def add_source(self, tap: FrameSource) -> bool:
        """Start recording an incoming track's frames; call on the event loop
        when the track arrives.

        Audio and video, in either order, once per kind. Returns False (and
        does nothing) when recording and sampling are both off.
        """
        if self.state not in (RecorderState.NEW, RecorderState.RECORDING):
            raise InvalidState("add a track", self.state)
        if tap.kind in self._taps:
            raise InvalidState(f"add a second {tap.kind} track", self.state)
        if not self.active or tap.kind not in ("audio", "video"):
            return False
        self._taps[tap.kind] = tap
        # The worker learns about the track before its first frame.
        self.queue.put_control(_AddTrack(tap))
        self.queue.bind(tap)
        if self.state is RecorderState.NEW:
            self._worker.start()
            self.state = RecorderState.RECORDING
        return True

    async def stop(self, reason: str) -> dict[str, Any]:
        """Finish the file and return the manifest section (idempotent)."""
        if self._result is not None:
            return self._result
        if self._stopping is not None:
            return await asyncio.shield(self._stopping)
        self._stopping = self._loop.create_future()
        self._stop_reason = reason
        was = self.state
        self.state = RecorderState.STOPPING
        try:
            if was is RecorderState.RECORDING:
                self.queue.close()
                self.queue.put_control(_Stop(reason))
                try:
                    await asyncio.wait_for(asyncio.shield(self._done), self._stop_timeout)
                except asyncio.TimeoutError:
                    logger.error("%s: recorder did not finish within %.0f s", self.log_prefix, self._stop_timeout)
                    self._worker.errors.append("recorder did not finish in time")
            result = self._section(final=True)
            if self._worker.file_name and self._worker.file_closed:
                path = self.call_dir.file(self._worker.file_name)
                try:
                    size = path.stat().st_size
                    digest = await self._loop.run_in_executor(None, sha256_file, path)
                except OSError as exc:
                    result["errors"].append(f"cannot hash {path.name}: {exc}")
                else:
                    for entry in result["files"]:
                        if entry["name"] == path.name:
                            entry.update(size=size, sha256=digest)
            self._result = result
            self.state = RecorderState.STOPPED
            logger.info(
                "%s: recorder stopped (%s): %s, %.2f s",
                self.log_prefix, reason, result["state"], result["duration"],
            )
            self._stopping.set_result(result)
            return result
        except BaseException as exc:
            self._stopping.set_exception(exc)
            raise

    def status(self) -> dict[str, Any]:
        """The manifest section so far (for the live meta.json)."""
        if self._result is not None:
            return self._result
        return self._section(final=False)

    def _worker_done(self) -> None:
        # Called in the worker thread as its last act.
        def resolve() -> None:
            if not self._done.done():
                self._done.set_result(None)

        try:
            self._loop.call_soon_threadsafe(resolve)
        except RuntimeError:
            pass  # the loop is closed: nobody is waiting

    def _frames_section(self) -> dict[str, Any]:
        w = self._worker
        out: dict[str, Any] = {"interval": self.options.frame_interval, "saved": 0}
        if w.jpeg is not None:
            out.update(saved=len(w.jpeg.saved), write_errors=w.jpeg.write_errors)
        if w.sampler is not None:
            out.update(w.sampler.stats())
        return out

    def _section(self, *, final: bool) -> dict[str, Any]:
        w = self._worker
        if not (self.options.enabled or self.options.sampling):
            state = "disabled"
        elif not final:
            state = self.state.value if self.state is not RecorderState.NEW else "waiting"
        elif w.errors:
            # "incomplete": a file exists and plays up to where it went wrong.
            state = "incomplete" if w.file_name else "failed"
        elif self.options.enabled and w.file_name is None:
            state = "empty"
        else:
            state = "complete"
        files: list[dict[str, Any]] = []
        if w.file_name:
            files.append({"name": w.file_name, "kind": "recording"})
            if not final:
                try:
                    files[0]["size"] = self.call_dir.file(w.file_name).stat().st_size
                except OSError:
                    pass
        if w.jpeg is not None:
            files += [s.to_json() for s in list(w.jpeg.saved)]
        dropped = self.queue.dropped
        tracks = [t.to_json(dropped.get(kind, 0)) for kind, t in sorted(w.tracks.items())]
        section: dict[str, Any] = {
            "state": state,
            "complete": final and state == "complete",
            "enabled": self.options.enabled,
            "mode": self.options.mode,
            "container": w.container,
            "file": w.file_name,
            "duration": round(w.duration(), 3),
            "stop_reason": self._stop_reason,
            "files": files,
            "tracks": tracks,
            "dropped": sum(dropped.values()),
            "keyframe_requests": sum(t.keyframe_requests for t in self._taps.values()),
            "frames": self._frames_section(),
            "options": self.options.to_json(),
            "errors": list(w.errors),
        }
        if isinstance(w.muxer, TranscodeMuxer):
            section["transcode"] = {
                "decode_errors": w.muxer.decode_errors,
                "scaled_frames": w.muxer.scaled,
                "size": [w.muxer.width, w.muxer.height],
            }
        return section
