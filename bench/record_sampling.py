#!/usr/bin/env python3
"""How to get one picture a second out of a 720p30 VP8 call: measured.

    .venv/bin/python bench/record_sampling.py [--cache-dir /tmp/callbot-bench-cache]

Options compared, on the benchmark clip (bench/record_clip.py):

- decode every frame and keep one a second (what reading aiortc's decoded
  track costs);
- ask for a keyframe (PLI) each second and decode it alone (fresh decoder);
- the fallback when the sender ignores PLI: decode from the last keyframe,
  resuming the decoder, so each frame is decoded at most once.

Plus what the keyframe costs the caller: the same content encoded at the
same constant bit rate with and without a keyframe every second (aiortc's
VP8 settings), compared by PSNR against the source pictures.
"""

from __future__ import annotations

import argparse
import fractions
import sys
import time
from pathlib import Path

import av
import cv2
import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from record_clip import FPS, HEIGHT, VIDEO_BITRATE, WIDTH, _picture, load_clip  # noqa: E402


def cpu_ms(func, repeat: int) -> float:
    start = time.process_time()
    for _ in range(repeat):
        func()
    return (time.process_time() - start) * 1000 / repeat


def psnr_run(keyframe_every: int | None, frames: int) -> tuple[float, float]:
    """Mean PSNR (dB) and bitrate (Mb/s) of a CBR real-time encode."""
    enc = av.CodecContext.create("libvpx", "w")
    enc.width, enc.height, enc.pix_fmt = WIDTH, HEIGHT, "yuv420p"
    enc.time_base = fractions.Fraction(1, FPS)
    enc.bit_rate = VIDEO_BITRATE
    enc.gop_size = 100000
    rate = str(VIDEO_BITRATE)
    enc.options = {
        "deadline": "realtime", "cpu-used": "-6", "lag-in-frames": "0", "static-thresh": "1",
        "minrate": rate, "maxrate": rate, "bufsize": rate, "undershoot-pct": "100", "overshoot-pct": "15",
    }
    dec = av.CodecContext.create("libvpx", "r")
    rng = np.random.default_rng(7)
    base = rng.integers(0, 255, (HEIGHT // 8, (WIDTH * 2) // 8, 3), dtype=np.uint8)
    texture = np.kron(base, np.ones((8, 8, 1), np.uint8))
    scores, total = [], 0
    for i in range(frames):
        src = _picture(i, texture)
        frame = av.VideoFrame.from_ndarray(src, format="bgr24").reformat(format="yuv420p")
        frame.pts = i
        if keyframe_every and i and i % keyframe_every == 0:
            frame.pict_type = av.video.frame.PictureType.I
        for packet in enc.encode(frame):
            total += packet.size
            for out in dec.decode(packet):
                scores.append(cv2.PSNR(src, out.to_ndarray(format="bgr24")))
    return float(np.mean(scores[FPS:])), total * 8 * FPS / frames / 1e6


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--cache-dir", type=Path, default=Path("/tmp/callbot-bench-cache"))
    args = parser.parse_args()
    clip = load_clip(args.cache_dir)
    packets = [av.Packet(d) for d in clip.video]

    def decode_all():
        dec = av.CodecContext.create("libvpx", "r")
        dec.thread_count = 1
        for p in packets:
            dec.decode(p)

    all_ms = cpu_ms(decode_all, 2) / len(packets)

    keyframe = av.Packet(clip.video[len(clip.video) // 2 // FPS * FPS])
    state = {}

    def decode_keyframe():
        dec = av.CodecContext.create("libvpx", "r")
        dec.thread_count = 1
        state["pic"] = dec.decode(keyframe)[0]

    key_ms = cpu_ms(decode_keyframe, 30)
    image = state["pic"].to_ndarray(format="bgr24")
    jpeg_ms = cpu_ms(lambda: cv2.imencode(".jpg", state["pic"].to_ndarray(format="bgr24"), [cv2.IMWRITE_JPEG_QUALITY, 85]), 30)
    del image

    print(f"720p30 VP8 clip, {clip.video_bitrate / 1e6:.2f} Mb/s; CPU time on this machine (one core)")
    print(f"{'option':58} {'ms/s of video':>14} {'% of a core':>12}")
    rows = [
        ("decode every frame, keep 1/s (+ JPEG)", all_ms * FPS + jpeg_ms),
        ("PLI each second, decode the keyframe alone (+ JPEG)", key_ms + jpeg_ms),
        ("fallback, sender ignores PLI: resume from last keyframe", all_ms * FPS + jpeg_ms),
    ]
    for name, ms in rows:
        print(f"{name:58} {ms:14.1f} {ms / 10:11.2f}%")
    print(f"(decode: {all_ms:.2f} ms per delta frame, {key_ms:.2f} ms per keyframe alone; JPEG {jpeg_ms:.2f} ms)")

    frames = 8 * FPS
    base_psnr, base_rate = psnr_run(None, frames)
    key_psnr, key_rate = psnr_run(FPS, frames)
    key2_psnr, key2_rate = psnr_run(2 * FPS, frames)
    print("\nWhat the caller pays, same content at a constant 2 Mb/s (aiortc's VP8 settings):")
    print(f"{'keyframes':28} {'PSNR dB':>8} {'Mb/s':>6}")
    print(f"{'only the first':28} {base_psnr:8.2f} {base_rate:6.2f}")
    print(f"{'every 2 s':28} {key2_psnr:8.2f} {key2_rate:6.2f}")
    print(f"{'every 1 s':28} {key_psnr:8.2f} {key_rate:6.2f}")


if __name__ == "__main__":
    main()
