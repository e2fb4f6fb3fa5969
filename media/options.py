"""How a call is recorded: one frozen dataclass, built once from flags.

Server flags map onto it as ``--no-record`` (``enabled=False``),
``--record-mode``, ``--keyframe-interval`` and ``--frame-interval``; tests
build it directly.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

from media.errors import InvalidOptionError

PASSTHROUGH = "passthrough"
TRANSCODE = "transcode"
RECORD_MODES = (PASSTHROUGH, TRANSCODE)


@dataclass(frozen=True)
class RecordingOptions:
    """Recording and frame-sampling settings for every call.

    ``enabled`` and ``frame_interval`` are independent: ``--no-record`` keeps
    the sampled pictures, ``--frame-interval 0`` keeps the recording.
    """

    # Write the caller's audio and video to a file.
    enabled: bool = True
    # "passthrough": the received encoded frames go into the file unchanged
    # (VP8+Opus -> WebM, H.264+Opus -> Matroska). "transcode": decoded and
    # re-encoded to H.264+AAC in fragmented MP4, for users who need one codec.
    mode: str = PASSTHROUGH
    # Seconds between keyframes the recorder asks the caller for (RTCP PLI),
    # so the file seeks well. Browsers otherwise send keyframes only on loss.
    # 0: only at the start and after a loss.
    keyframe_interval: float = 2.0
    # Seconds between sampled pictures (JPEG); 0: none.
    frame_interval: float = 1.0
    # Bound on frames waiting for the file writer (about 5 s at 30 fps video
    # plus 50/s audio); beyond it frames are dropped and counted.
    queue_frames: int = 400
    # Longest stretch of media held in memory before it reaches the file
    # (Matroska cluster / MP4 fragment length). A SIGKILL loses at most this
    # plus the writer's 0.2 s polling interval (measured: 0.3-0.6 s).
    flush_interval: float = 0.5
    # How long to wait for every track's first usable frame (video: a
    # keyframe) before the file is started with the tracks that have one.
    start_timeout: float = 3.0
    jpeg_quality: int = 85

    def __post_init__(self) -> None:
        if self.mode not in RECORD_MODES:
            raise InvalidOptionError(f"mode must be one of {', '.join(RECORD_MODES)}, not {self.mode!r}")
        if self.keyframe_interval < 0:
            raise InvalidOptionError("keyframe_interval must be >= 0 (0 turns it off)")
        if self.frame_interval < 0:
            raise InvalidOptionError("frame_interval must be >= 0 (0 turns it off)")
        if self.queue_frames < 16:
            raise InvalidOptionError("queue_frames must be at least 16")
        if not 0.05 <= self.flush_interval <= 10:
            raise InvalidOptionError("flush_interval must be between 0.05 and 10 seconds")
        if self.start_timeout <= 0:
            raise InvalidOptionError("start_timeout must be > 0")
        if not 1 <= self.jpeg_quality <= 100:
            raise InvalidOptionError("jpeg_quality must be between 1 and 100")

    @property
    def sampling(self) -> bool:
        return self.frame_interval > 0

    def to_json(self) -> dict[str, Any]:
        return asdict(self)
