"""Pre-encoded media for cheap benchmark senders: a 720p30 VP8 + Opus clip.

Senders in ``record_bench.py`` send these encoded frames with aiortc (a track
whose ``recv()`` returns ``av.Packet``), so a sender costs packetizing and
SRTP, not encoding. The clip has a keyframe every second: a browser sends one
when asked (RTCP PLI), and the recorder asks about once a second for its
pictures. A sender that gets a PLI skips ahead to the clip's next keyframe, so
it answers within a second and every frame still decodes cleanly (the
content jumps a little, which nobody watches).

The clip is cached (not in the repository) and rebuilt when missing.
"""

from __future__ import annotations

import fractions
import math
import pickle
from dataclasses import dataclass
from pathlib import Path

import av
import numpy as np

WIDTH, HEIGHT, FPS = 1280, 720, 30
AUDIO_RATE, AUDIO_SAMPLES = 48000, 960
# What Chrome sends at 720p on a good link.
VIDEO_BITRATE = 2_000_000
KEYFRAME_EVERY = FPS


@dataclass
class Clip:
    video: list[bytes]  # a keyframe every KEYFRAME_EVERY frames, deltas between
    audio: list[bytes]  # 20 ms Opus frames

    @property
    def video_bitrate(self) -> float:
        return sum(map(len, self.video)) * 8 * FPS / len(self.video)


def _picture(index: int, texture: np.ndarray) -> np.ndarray:
    # A panning textured background and a moving block: enough detail and
    # motion that the encoder spends its bit budget, as on a real camera.
    shift = (index * 4) % texture.shape[1]
    img = np.roll(texture, -shift, axis=1)[:HEIGHT, :WIDTH].copy()
    x = int((WIDTH - 200) * (0.5 + 0.5 * math.sin(index / 20)))
    img[260:460, x : x + 200] = (40, 200, 240)
    return img


def _encode_video(frames: int) -> list[bytes]:
    ctx = av.CodecContext.create("libvpx", "w")
    ctx.width, ctx.height, ctx.pix_fmt = WIDTH, HEIGHT, "yuv420p"
    ctx.time_base = fractions.Fraction(1, FPS)
    ctx.bit_rate = VIDEO_BITRATE
    ctx.gop_size = KEYFRAME_EVERY
    # aiortc's own real-time VP8 settings.
    ctx.options = {"deadline": "realtime", "cpu-used": "-6", "lag-in-frames": "0", "static-thresh": "1"}
    rng = np.random.default_rng(7)
    base = rng.integers(0, 255, (HEIGHT // 8, (WIDTH * 2) // 8, 3), dtype=np.uint8)
    texture = np.kron(base, np.ones((8, 8, 1), np.uint8))
    out: list[bytes] = []
    for i in range(frames):
        frame = av.VideoFrame.from_ndarray(_picture(i, texture), format="bgr24").reformat(format="yuv420p")
        frame.pts = i
        # Exactly on the second, whatever the encoder's own scene detection says.
        frame.pict_type = av.video.frame.PictureType.I if i % KEYFRAME_EVERY == 0 else av.video.frame.PictureType.NONE
        out += [bytes(p) for p in ctx.encode(frame)]
    out += [bytes(p) for p in ctx.encode(None)]
    return out


def _encode_audio(frames: int) -> list[bytes]:
    ctx = av.CodecContext.create("libopus", "w")
    ctx.sample_rate, ctx.layout, ctx.format = AUDIO_RATE, "stereo", "s16"
    ctx.time_base = fractions.Fraction(1, AUDIO_RATE)
    ctx.bit_rate = 64000
    out: list[bytes] = []
    for i in range(frames):
        t = (np.arange(AUDIO_SAMPLES) + i * AUDIO_SAMPLES) / AUDIO_RATE
        tone = (6000 * np.sin(2 * math.pi * 330 * t)).astype(np.int16)
        frame = av.AudioFrame.from_ndarray(np.repeat(tone, 2).reshape(1, -1), format="s16", layout="stereo")
        frame.sample_rate, frame.pts = AUDIO_RATE, i * AUDIO_SAMPLES
        out += [bytes(p) for p in ctx.encode(frame)]
    return out


def load_clip(cache_dir: Path, seconds: int = 10) -> Clip:
    path = cache_dir / f"clip-{WIDTH}x{HEIGHT}p{FPS}-vp8-gop{KEYFRAME_EVERY}-{seconds}s.pickle"
    if path.exists():
        return pickle.loads(path.read_bytes())
    cache_dir.mkdir(parents=True, exist_ok=True)
    frames = seconds * FPS
    clip = Clip(
        video=_encode_video(frames),
        audio=_encode_audio(seconds * AUDIO_RATE // AUDIO_SAMPLES),
    )
    assert len(clip.video) == frames
    tmp = path.with_suffix(".tmp")
    tmp.write_bytes(pickle.dumps(clip))
    tmp.replace(path)
    return clip
