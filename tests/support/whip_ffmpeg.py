"""Publish H.264 (no B-frames) + Opus over WHIP with FFmpeg's own WHIP muxer,
the one inside the PyAV wheel: what ``ffmpeg -f whip URL`` does.

    python tests/support/whip_ffmpeg.py http://127.0.0.1:8080/whip --seconds 5 [--size 1280x720]
    python tests/support/whip_ffmpeg.py URL --clip clip.mkv --seconds 20   # pre-encoded, remuxed

PyAV's calls block (the muxer POSTs, does ICE and DTLS inside its first
write), so this runs as its own process. Frames are paced at real time, as a
live source would send them. With ``--clip`` the packets of an H.264+Opus
file are sent as they are (looped), so the publisher costs next to nothing
(the benchmark's setting). Prints ``KEY value`` lines; exit 0 when the whole
duration was published, 2 when the muxer failed (for example DTLS).
"""

from __future__ import annotations

import argparse
import sys
import time
from fractions import Fraction

import av
import numpy as np

SAMPLE_RATE, AUDIO_SAMPLES = 48000, 960  # 20 ms Opus frames


def say(key: str, value: object = "") -> None:
    print(f"{key} {value}".rstrip(), flush=True)


def open_whip(url: str, args: argparse.Namespace) -> av.container.OutputContainer:
    av.logging.set_level(av.logging.ERROR if not args.verbose else av.logging.VERBOSE)
    options = {"handshake_timeout": str(args.handshake_timeout_ms)}
    if args.token:
        options["authorization"] = args.token  # sent as "Authorization: Bearer <token>"
    if args.whip_flags:
        options["whip_flags"] = args.whip_flags
    return av.open(url, "w", format="whip", options=options)


def picture(index: int, width: int, height: int) -> av.VideoFrame:
    # A moving bar and a drifting grey level: enough motion to encode.
    y = np.full((height, width), (index * 3) % 200 + 20, np.uint8)
    x = (index * 8) % width
    y[:, x:x + max(4, width // 40)] = 255
    frame = av.VideoFrame(width, height, "yuv420p")
    frame.planes[0].update(y.tobytes())
    frame.planes[1].update(bytes([128]) * (frame.planes[1].buffer_size))
    frame.planes[2].update(bytes([128]) * (frame.planes[2].buffer_size))
    return frame


def tone(index: int) -> av.AudioFrame:
    t = (np.arange(AUDIO_SAMPLES) + index * AUDIO_SAMPLES) / SAMPLE_RATE
    samples = (6000 * np.sin(2 * np.pi * 440 * t)).astype(np.int16)
    frame = av.AudioFrame.from_ndarray(np.repeat(samples, 2).reshape(1, -1), format="s16", layout="stereo")
    frame.sample_rate = SAMPLE_RATE
    return frame


def publish_generated(args: argparse.Namespace) -> int:
    width, height = (int(v) for v in args.size.split("x"))
    fps = args.fps
    out = open_whip(args.url, args)
    video = out.add_stream("libx264", rate=fps)
    video.width, video.height, video.pix_fmt = width, height, "yuv420p"
    # The WHIP muxer refuses B-frames; a keyframe a second.
    video.options = {"bf": "0", "profile": "baseline", "tune": "zerolatency", "preset": "ultrafast", "g": str(fps)}
    video.codec_context.time_base = Fraction(1, fps)
    audio = out.add_stream("libopus", rate=SAMPLE_RATE)
    audio.layout = "stereo"
    audio.codec_context.time_base = Fraction(1, SAMPLE_RATE)
    frames = round(args.seconds * fps)
    blocks = round(args.seconds * SAMPLE_RATE / AUDIO_SAMPLES)
    vi = ai = 0

    def items():
        nonlocal vi, ai
        while vi < frames or ai < blocks:
            if vi < frames and (ai >= blocks or vi / fps <= ai * AUDIO_SAMPLES / SAMPLE_RATE):
                frame = picture(vi, width, height)
                frame.pts, frame.time_base = vi, Fraction(1, fps)
                t = vi / fps
                vi += 1
                yield t, video.encode(frame)
            else:
                frame = tone(ai)
                frame.pts, frame.time_base = ai * AUDIO_SAMPLES, Fraction(1, SAMPLE_RATE)
                t = ai * AUDIO_SAMPLES / SAMPLE_RATE
                ai += 1
                yield t, audio.encode(frame)
        yield args.seconds, video.encode(None) + audio.encode(None)

    return _mux(out, items(), video)


def publish_clip(args: argparse.Namespace) -> int:
    source = av.open(args.clip)
    in_video = source.streams.video[0]
    in_audio = source.streams.audio[0]
    packets = [p for p in source.demux() if p.size and p.pts is not None]
    video_packets = [p for p in packets if p.stream is in_video]
    audio_packets = [p for p in packets if p.stream is in_audio]
    out = open_whip(args.url, args)
    video = out.add_stream_from_template(in_video)
    audio = out.add_stream_from_template(in_audio)
    fps = args.fps

    def span(packets: list, step: float) -> float:
        return float((packets[-1].pts - packets[0].pts) * packets[0].time_base) + step

    # One period for both tracks, so that timestamps keep increasing across loops.
    clip_seconds = max(span(video_packets, 1 / fps), span(audio_packets, AUDIO_SAMPLES / SAMPLE_RATE))

    def items():
        # Looped in whole clips; timestamps continue across the loops.
        lists = {"video": video_packets, "audio": audio_packets}
        base = {k: float(v[0].pts * v[0].time_base) for k, v in lists.items()}
        index = {"video": 0, "audio": 0}
        while True:
            times = {}
            for kind, items_ in lists.items():
                n = index[kind]
                loop, p = divmod(n, len(items_))
                packet = items_[p]
                times[kind] = loop * clip_seconds + float(packet.pts * packet.time_base) - base[kind]
            kind = min(times, key=times.get)
            t = times[kind]
            if t >= args.seconds:
                return
            packet = lists[kind][index[kind] % len(lists[kind])]
            index[kind] += 1
            stream = video if kind == "video" else audio
            copy = av.Packet(bytes(packet))
            copy.stream = stream
            copy.time_base = packet.time_base
            copy.pts = copy.dts = round(t / packet.time_base)
            copy.is_keyframe = packet.is_keyframe
            yield t, [copy]

    return _mux(out, items(), video)


def _mux(out: av.container.OutputContainer, items, video) -> int:
    started = None
    t0 = time.monotonic()
    sent = {"video": 0, "audio": 0}
    try:
        for t, packets in items:
            for packet in packets:
                out.mux(packet)  # the first one opens the session: POST, ICE, DTLS
                if started is None:
                    started = time.monotonic()
                    say("HANDSHAKE_MS", round((started - t0) * 1000))
                sent["video" if packet.stream is video else "audio"] += 1
            if started is not None:
                ahead = t - (time.monotonic() - started)
                if ahead > 0:
                    time.sleep(ahead)  # pacing a live source, not waiting for an event
    except Exception as exc:  # FFmpeg reports a failed session as an error on mux()
        say("ERROR", repr(exc))
        try:
            out.close()
        except Exception:
            pass
        return 2
    out.close()  # sends the DELETE
    say("PUBLISHED", f"video={sent['video']} audio={sent['audio']}")
    return 0


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("url")
    p.add_argument("--seconds", type=float, default=5.0)
    p.add_argument("--size", default="320x240")
    p.add_argument("--fps", type=int, default=30)
    p.add_argument("--token", default=None, help="bearer token (the muxer's authorization option)")
    p.add_argument("--clip", default=None, help="an H.264+Opus file to send as it is, looped")
    p.add_argument("--whip-flags", default=None, help="e.g. dtls_active")
    p.add_argument("--handshake-timeout-ms", type=int, default=5000)
    p.add_argument("--verbose", action="store_true")
    args = p.parse_args()
    return publish_clip(args) if args.clip else publish_generated(args)


if __name__ == "__main__":
    sys.exit(main())
