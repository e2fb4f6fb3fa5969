"""RTP timestamps to one file timeline: aligned, strictly increasing (sans-I/O).

Each track's own RTP clock (90 kHz video, 48 kHz Opus) is the only precise
time for its frames: arrival times carry network and loop jitter, and the
1/30 s rounding of aiortc's MediaRecorder is what makes muxers reject frames.
So within a track, file time is the RTP timestamp plus one fixed offset.

The offset puts all tracks on a common start. RTP clocks of different tracks
have unrelated origins (RFC 3550 section 5.1), so the offset comes from when
frames arrived: for each track, the smallest (capture estimate - RTP time)
over the first frames, where the capture estimate corrects for how long
aiortc's jitter buffer holds a frame (until the next one for video, until
``prefetch`` more for audio). Taking the minimum discards frames that were
delayed, leaving the path's base latency, which both tracks share.

If a track's RTP time drifts from its arrival time by more than
``resync_after`` seconds (the sender restarted its clock, or a new SSRC
started from another origin), the track is re-anchored on arrival time and
the event counted, instead of writing hours of silence or going backwards.
"""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass
class TrackClock:
    """File time for one track's frames, in integer milliseconds (Matroska's unit)."""

    clock_rate: int
    release_delay_frames: int = 0
    resync_after: float = 5.0
    # Filled while observing the first frames.
    _base: float | None = None
    _last_ts: int | None = None
    _step: int | None = None  # smallest positive timestamp step seen
    _pending_delay: list[tuple[int, float]] = field(default_factory=list)
    # Filled by anchor().
    epoch: float | None = None
    offset: int = 0  # ticks added to the RTP timestamp
    last_ms: int | None = None
    fixups: int = 0  # timestamps moved forward to stay strictly increasing
    resyncs: int = 0

    def observe(self, timestamp: int, arrival: float) -> None:
        """Learn the RTP-to-arrival relation from a frame (call before anchoring)."""
        if self._last_ts is not None and timestamp > self._last_ts:
            step = timestamp - self._last_ts
            if self._step is None or step < self._step:
                self._step = step
        self._last_ts = timestamp
        self._pending_delay.append((timestamp, arrival))
        if len(self._pending_delay) > 256:
            self._fold()

    def _fold(self) -> None:
        delay = self.release_delay_frames * (self._step or 0) / self.clock_rate
        for timestamp, arrival in self._pending_delay:
            base = (arrival - delay) - timestamp / self.clock_rate
            if self._base is None or base < self._base:
                self._base = base
        self._pending_delay.clear()

    def start_time(self, timestamp: int) -> float:
        """Estimated capture time (monotonic seconds) of the frame with ``timestamp``."""
        self._fold()
        if self._base is None:
            raise ValueError("observe() at least one frame first")
        return self._base + timestamp / self.clock_rate

    def anchor(self, epoch: float) -> None:
        """Fix the offset so that file time 0 is the monotonic time ``epoch``."""
        self._fold()
        if self._base is None:
            raise ValueError("observe() at least one frame first")
        self.epoch = epoch
        self.offset = round((self._base - epoch) * self.clock_rate)

    @property
    def anchored(self) -> bool:
        return self.epoch is not None

    def to_ms(self, timestamp: int, arrival: float) -> int | None:
        """File time of a frame in ms, strictly after the previous one.

        None for a frame from before the file's start (pre-roll to skip).
        """
        if self.epoch is None:
            raise ValueError("anchor() first")
        ticks = timestamp + self.offset
        delay = self.release_delay_frames * (self._step or 0) / self.clock_rate
        expected = (arrival - delay) - self.epoch
        if abs(ticks / self.clock_rate - expected) > self.resync_after:
            self.offset = round(expected * self.clock_rate) - timestamp
            ticks = timestamp + self.offset
            self.resyncs += 1
        ms = (ticks * 1000) // self.clock_rate
        if self.last_ms is None and ms < 0:
            return None
        if self.last_ms is not None and ms <= self.last_ms:
            # Two frames in the same millisecond (rounding, or a sender that
            # repeats timestamps): Matroska needs increasing times per track.
            ms = self.last_ms + 1
            self.fixups += 1
        self.last_ms = ms
        return ms

    def ticks_to_ms(self, ticks: int) -> int:
        return (ticks * 1000) // self.clock_rate
