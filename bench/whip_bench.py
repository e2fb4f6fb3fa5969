#!/usr/bin/env python3
"""WHIP benchmark: server CPU per published 720p30 stream, compared with a
call to the bot in the same run, and the time from POST to the first
recorded frame.

    .venv/bin/python bench/whip_bench.py [--streams 2] [--seconds 16] [--latency-runs 5]
                                         [--rows bot,whip-aiortc,whip-ffmpeg,whip-gstreamer,whep]

Each row starts a fresh server process (the real app, ``create_app``, default
recording: passthrough plus a JPEG a second) and ``--streams`` publishers:

- ``bot``: the baseline, aiortc callers through the WebSocket signaling,
  sending a pre-encoded 720p30 VP8 2 Mb/s + Opus clip (bench/record_clip.py),
  so that a sender costs packetizing, not encoding;
- ``whip-aiortc``: the same clip and sender, published with WHIP: what the
  WHIP path itself costs compared with the signaling path;
- ``whip-ffmpeg``: FFmpeg's WHIP muxer (PyAV wheel) sending a pre-encoded
  720p30 H.264 2 Mb/s + Opus clip as it is (``ffmpeg -re -c copy -f whip``);
- ``whip-gstreamer``: GStreamer's webrtcbin encoding 720p30 VP8 at 2 Mb/s live
  (its encoder runs in its own process, on the same two cores);
- ``whep``: the ``bot`` row plus one WHEP viewer per call (aiortc, frames not
  decoded): what forwarding a live call to a viewer adds.

CPU is the server process's (all threads), over a steady window after every
stream has connected, per stream, as % of one core, with the video the
server received meanwhile. GStreamer's row is run only when asked for
(``--rows``): its live 720p encoder starves on a small machine. Then, for
each kind of publisher, ``--latency-runs`` single publishes one after another:
time from the server receiving the POST (or the offer) to connected and to
the arrival of the first video frame the recorder keeps (the keyframe the
file starts with), on the server's clock; ``whip-ffmpeg-1s`` is FFmpeg
against a server without peer.compat's early resend of the DTLS first
flight (the baseline for it).
"""

from __future__ import annotations

import argparse
import asyncio
import fractions
import multiprocessing as mp
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(Path(__file__).resolve().parent))

WARMUP = 3.0  # seconds after every stream connected before measuring
SUPPORT = ROOT / "tests" / "support"
ALL_ROWS = ("bot", "whip-aiortc", "whip-ffmpeg", "whip-gstreamer", "whep", "whip-ffmpeg-1s")
#: GStreamer encodes 720p live in its own process; on a small machine that
#: starves (10 fps on 2 shared cores), so its CPU row is not comparable and is
#: run only when asked for. Its time to the first frame is always measured.
DEFAULT_CPU_ROWS = ("bot", "whip-aiortc", "whip-ffmpeg", "whep")


# -- the server process ---------------------------------------------------------


def server_main(conn, data_dir: str, early_resend: bool = True) -> None:
    asyncio.run(_server(conn, Path(data_dir), early_resend))


async def _server(conn, data_dir: Path, early_resend: bool) -> None:
    from aiohttp import web

    from peer import compat
    from peer.call import CallSession

    if not early_resend:
        # The baseline for peer.compat's early first-flight resend: OpenSSL's 1 s timer alone.
        compat.FIRST_FLIGHT_RESENDS = ()
    from webapp.app import create_app
    from webapp.config import BotConfig, Config, IceConfig
    from webapp.keys import BOT

    timings: list[dict[str, Any]] = []
    original_init, original_end = CallSession.__init__, CallSession.end

    # Bench-only instruments: when the offer (or POST) reached the server,
    # and when the first frame the recorder kept had arrived.
    def init(self, *args, **kwargs):
        original_init(self, *args, **kwargs)
        self._bench_t0 = time.monotonic()

    async def end(self, reason, **kwargs):
        if self.ending:
            return await original_end(self, reason, **kwargs)
        first = {}
        recorder = self.media.recorder
        if recorder is not None:
            for kind, track in recorder._worker.tracks.items():
                if track.first is not None and track.in_file:
                    first[kind] = track.first.arrival - self._bench_t0
        connected_at = self.manifest.connected_at if self.manifest is not None else None
        timings.append({
            "source": self.source,
            "first": first,
            "connected": connected_at - self.started_at if connected_at else None,
        })
        return await original_end(self, reason, **kwargs)

    CallSession.__init__ = init
    CallSession.end = end

    config = Config(port=0, data_dir=data_dir, ice=IceConfig(addresses=("127.0.0.1",)),
                    bot=BotConfig(max_calls=64), log_level="warning")
    app = create_app(config)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    conn.send(runner.addresses[0][1])
    loop = asyncio.get_running_loop()
    while True:
        command = await loop.run_in_executor(None, conn.recv)
        if command == "live":
            runtime = app[BOT]
            conn.send(sum(1 for s in runtime.sessions() if s.connected.is_set() and not s.ending))
        elif command == "cpu":
            # Process CPU (all threads), and the video received so far.
            t = os.times()
            taps = [s.media.taps["video"] for s in app[BOT].sessions() if "video" in s.media.taps]
            conn.send((t.user + t.system, time.monotonic(), sum(x.frames for x in taps), sum(x.bytes for x in taps)))
        elif command == "timings":
            conn.send(list(timings))
            timings.clear()
        elif command == "stop":
            break
    await runner.cleanup()
    conn.send("stopped")


class Server:
    def __init__(self, data_dir: Path, *, early_resend: bool = True) -> None:
        ctx = mp.get_context("spawn")
        self.conn, child = ctx.Pipe()
        self.proc = ctx.Process(target=server_main, args=(child, str(data_dir), early_resend), daemon=True)
        self.proc.start()
        self.port = self.conn.recv()
        self.url = f"http://127.0.0.1:{self.port}"

    def ask(self, command: str) -> Any:
        self.conn.send(command)
        return self.conn.recv()

    def wait_live(self, count: int, timeout: float = 60) -> None:
        deadline = time.monotonic() + timeout
        while self.ask("live") < count:
            if time.monotonic() > deadline:
                raise RuntimeError(f"only {self.ask('live')} of {count} streams connected")
            time.sleep(0.1)

    def stop(self) -> None:
        self.conn.send("stop")
        self.conn.recv()
        self.proc.join(10)


# -- aiortc senders (the bot baseline and WHIP with the same media) -----------------


def aiortc_main(url: str, how: str, streams: int, seconds: float, cache_dir: str, viewers: bool) -> None:
    asyncio.run(_aiortc(url, how, streams, seconds, Path(cache_dir), viewers))


async def _aiortc(url: str, how: str, streams: int, seconds: float, cache_dir: Path, viewers: bool) -> None:
    import json

    import aiohttp
    import av
    from aiortc import MediaStreamTrack, RTCConfiguration, RTCPeerConnection, RTCSessionDescription
    from aiortc.mediastreams import MediaStreamError

    from peer.compat import restrict_host_addresses
    from peer.tap import EncodedFrameTap
    from record_clip import AUDIO_SAMPLES, FPS, KEYFRAME_EVERY, load_clip

    restrict_host_addresses(("127.0.0.1",))
    clip = load_clip(cache_dir)
    loop = asyncio.get_running_loop()

    class ClipTrack(MediaStreamTrack):
        """Encoded clip frames paced in real time from the first recv();
        a PLI makes the next one a keyframe (the clip's next)."""

        def __init__(self, kind: str) -> None:
            super().__init__()
            self.kind = kind
            self.count = int(seconds * (FPS if kind == "video" else 50))
            self.sent = 0
            self.want_keyframe = False
            self.position = 0
            self.period = 1 / FPS if kind == "video" else AUDIO_SAMPLES / 48000
            self.t0: float | None = None

        async def recv(self):
            n = self.sent
            if n >= self.count:
                self.stop()
                raise MediaStreamError
            if self.t0 is None:
                self.t0 = loop.time()
            delay = self.t0 + n * self.period - loop.time()
            if delay > 0:
                await asyncio.sleep(delay)
            self.sent += 1
            if self.kind == "video":
                if self.want_keyframe:
                    self.want_keyframe = False
                    if self.position % KEYFRAME_EVERY:
                        self.position += KEYFRAME_EVERY - self.position % KEYFRAME_EVERY
                packet = av.Packet(clip.video[self.position % len(clip.video)])
                self.position += 1
                packet.pts, packet.time_base = n * 3000, fractions.Fraction(1, 90000)
            else:
                packet = av.Packet(clip.audio[n % len(clip.audio)])
                packet.pts, packet.time_base = n * AUDIO_SAMPLES, fractions.Fraction(1, 48000)
            return packet

    async with aiohttp.ClientSession() as http:
        pcs, tracks, ends, sockets, call_ids = [], [], [], [], []
        for i in range(streams):
            pc = RTCPeerConnection(RTCConfiguration(iceServers=[]))
            audio, video = ClipTrack("audio"), ClipTrack("video")
            pc.addTransceiver(audio, direction="sendonly")
            sender = pc.addTransceiver(video, direction="sendonly").sender
            original = sender._send_keyframe

            def on_pli(original=original, video=video) -> None:
                # Bench-only: what a browser's encoder does on PLI.
                original()
                video.want_keyframe = True

            sender._send_keyframe = on_pli
            await pc.setLocalDescription(await pc.createOffer())
            if how == "whip":
                async with http.post(f"{url}/whip", data=pc.localDescription.sdp.encode(),
                                     headers={"Content-Type": "application/sdp"}) as r:
                    assert r.status == 201, await r.text()
                    answer = await r.text()
                    ends.append(f"{url}{r.headers['Location']}")
            else:
                ws = await http.ws_connect(f"{url.replace('http', 'ws', 1)}/ws")
                sockets.append(ws)
                await ws.send_json({"type": "login", "username": f"bench{i}"})
                await ws.send_json({"type": "offer", "otherUsername": "bot",
                                    "offer": {"type": "offer", "sdp": pc.localDescription.sdp}})
                answer = None
                while answer is None or not call_ids[i:]:
                    message = json.loads((await ws.receive()).data)
                    if message.get("type") == "answer":
                        answer = message["answer"]["sdp"]
                    elif message.get("type") == "call-info":
                        call_ids.append(message["callId"])
                    elif message.get("type") == "error":
                        raise RuntimeError(message)
            await pc.setRemoteDescription(RTCSessionDescription(sdp=answer, type="answer"))
            pcs.append(pc)
            tracks += [audio, video]
        readers = [asyncio.ensure_future(_drain(ws)) for ws in sockets]

        watching = []
        if viewers:
            for call_id in call_ids:
                viewer = RTCPeerConnection(RTCConfiguration(iceServers=[]))
                for kind in ("video", "audio"):
                    viewer.addTransceiver(kind, direction="recvonly")

                def on_track(track, viewer=viewer) -> None:
                    receiver = next(t.receiver for t in viewer.getTransceivers() if t.receiver.track is track)
                    EncodedFrameTap.attach(receiver, track, decode=False)  # received, never decoded

                viewer.on("track", on_track)
                await viewer.setLocalDescription(await viewer.createOffer())
                async with http.post(f"{url}/whep/{call_id}", data=viewer.localDescription.sdp.encode(),
                                     headers={"Content-Type": "application/sdp"}) as r:
                    assert r.status == 201, await r.text()
                    await viewer.setRemoteDescription(RTCSessionDescription(sdp=await r.text(), type="answer"))
                watching.append(viewer)

        done = [asyncio.Event() for _ in tracks]
        for event, track in zip(done, tracks):
            track.on("ended", event.set)
        await asyncio.wait_for(asyncio.gather(*(e.wait() for e in done)), seconds + 60)
        for viewer in watching:
            await viewer.close()
        for resource in ends:
            async with http.delete(resource) as r:
                await r.read()
        for ws in sockets:
            await ws.send_json({"type": "close", "otherUsername": "bot"})
            await ws.close()
        for reader in readers:
            reader.cancel()
        for pc in pcs:
            await pc.close()


async def _drain(ws) -> None:
    # aiohttp answers the server's heartbeat only while someone reads.
    while not ws.closed:
        await ws.receive()


# -- H.264 clip for FFmpeg -------------------------------------------------------------


def h264_clip(cache_dir: Path, seconds: int = 10) -> Path:
    """A 720p30 H.264 (no B-frames, a keyframe a second, 2 Mb/s) + Opus file,
    from the same pictures as record_clip's VP8 clip; cached."""
    import av
    import numpy as np

    from record_clip import AUDIO_RATE, AUDIO_SAMPLES, FPS, HEIGHT, KEYFRAME_EVERY, VIDEO_BITRATE, WIDTH, _picture

    path = cache_dir / f"clip-{WIDTH}x{HEIGHT}p{FPS}-h264-opus-{seconds}s.mkv"
    if path.exists():
        return path
    cache_dir.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp.mkv")
    rng = np.random.default_rng(7)
    base = rng.integers(0, 255, (HEIGHT // 8, (WIDTH * 2) // 8, 3), dtype=np.uint8)
    texture = np.kron(base, np.ones((8, 8, 1), np.uint8))
    with av.open(str(tmp), "w") as out:
        video = out.add_stream("libx264", rate=FPS)
        video.width, video.height, video.pix_fmt = WIDTH, HEIGHT, "yuv420p"
        video.bit_rate = VIDEO_BITRATE
        video.options = {"bf": "0", "profile": "baseline", "preset": "veryfast", "g": str(KEYFRAME_EVERY),
                         "keyint_min": str(KEYFRAME_EVERY), "sc_threshold": "0"}
        audio = out.add_stream("libopus", rate=AUDIO_RATE)
        audio.layout = "stereo"
        for i in range(seconds * FPS):
            frame = av.VideoFrame.from_ndarray(_picture(i, texture), format="bgr24").reformat(format="yuv420p")
            frame.pts, frame.time_base = i, fractions.Fraction(1, FPS)
            out.mux(video.encode(frame))
        out.mux(video.encode(None))
        for i in range(seconds * AUDIO_RATE // AUDIO_SAMPLES):
            t = (np.arange(AUDIO_SAMPLES) + i * AUDIO_SAMPLES) / AUDIO_RATE
            tone = (6000 * np.sin(2 * np.pi * 330 * t)).astype(np.int16)
            frame = av.AudioFrame.from_ndarray(np.repeat(tone, 2).reshape(1, -1), format="s16", layout="stereo")
            frame.sample_rate, frame.pts = AUDIO_RATE, i * AUDIO_SAMPLES
            frame.time_base = fractions.Fraction(1, AUDIO_RATE)
            out.mux(audio.encode(frame))
        out.mux(audio.encode(None))
    tmp.replace(path)
    return path


# -- one row ------------------------------------------------------------------------------


def start_publishers(row: str, url: str, streams: int, seconds: float, cache_dir: Path) -> list[Any]:
    """Processes publishing ``streams`` streams of ``row``'s kind."""
    if row in ("bot", "whip-aiortc", "whep"):
        how = "whip" if row == "whip-aiortc" else "bot"
        proc = mp.get_context("spawn").Process(
            target=aiortc_main, args=(url, how, streams, seconds, str(cache_dir), row == "whep"), daemon=True)
        proc.start()
        return [proc]
    if row == "whip-ffmpeg":
        clip = h264_clip(cache_dir)
        cmd = [sys.executable, str(SUPPORT / "whip_ffmpeg.py"), f"{url}/whip", "--clip", str(clip),
               "--seconds", str(seconds)]
    else:
        cmd = ["/usr/bin/python3", str(SUPPORT / "whip_gst.py"), f"{url}/whip", "--size", "1280x720",
               "--bitrate", "2000000", "--seconds", str(seconds)]
    return [subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True) for _ in range(streams)]


def wait_publishers(procs: list[Any], timeout: float) -> None:
    for proc in procs:
        if isinstance(proc, subprocess.Popen):
            output, _ = proc.communicate(timeout=timeout)
            if proc.returncode != 0:
                tail = "\n".join(output.splitlines()[-8:])
                raise RuntimeError(f"publisher {proc.args[1]} failed ({proc.returncode}):\n{tail}")
        else:
            proc.join(timeout)
            if proc.exitcode != 0:
                raise RuntimeError(f"aiortc publisher failed ({proc.exitcode})")


def cpu_row(row: str, streams: int, seconds: float, cache_dir: Path) -> dict[str, float]:
    """% of one core per stream, and the video each stream delivered meanwhile."""
    with tempfile.TemporaryDirectory(prefix="whip-bench-") as data:
        server = Server(Path(data))
        try:
            procs = start_publishers(row, server.url, streams, seconds, cache_dir)
            server.wait_live(streams)
            time.sleep(WARMUP)  # a benchmark measures a steady state: media time, not an event
            cpu0, t0, frames0, bytes0 = server.ask("cpu")
            time.sleep(max(2.0, seconds - WARMUP - 3.0))
            cpu1, t1, frames1, bytes1 = server.ask("cpu")
            wait_publishers(procs, seconds + 60)
        finally:
            server.stop()
    window = t1 - t0
    return {
        "cpu": 100 * (cpu1 - cpu0) / window / streams,
        "fps": (frames1 - frames0) / window / streams,
        "kbps": (bytes1 - bytes0) * 8 / 1000 / window / streams,
    }


def latency_rows(rows: list[str], runs: int, cache_dir: Path) -> dict[str, list[dict[str, Any]]]:
    """Single publishes one after another. ``whip-ffmpeg-1s`` is FFmpeg on a
    server without peer.compat's early first-flight resend (the baseline)."""
    out: dict[str, list[dict[str, Any]]] = {}
    for early_resend in (True, False):
        todo = [r for r in rows if r != "whep" and (r == "whip-ffmpeg-1s") != early_resend]
        if not todo:
            continue
        with tempfile.TemporaryDirectory(prefix="whip-bench-") as data:
            server = Server(Path(data), early_resend=early_resend)
            try:
                for row in todo:
                    for _ in range(runs):
                        kind = "whip-ffmpeg" if row == "whip-ffmpeg-1s" else row
                        wait_publishers(start_publishers(kind, server.url, 1, 3.0, cache_dir), 60)
                        while not (timings := server.ask("timings")):
                            time.sleep(0.05)
                        out.setdefault(row, []).extend(timings)
            finally:
                server.stop()
    return out


def ms(values: list[float]) -> str:
    return f"{statistics.median(values) * 1000:.0f} ms" if values else "-"


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--streams", type=int, default=2, help="concurrent publishers per CPU row")
    p.add_argument("--seconds", type=float, default=16.0, help="each CPU row's publishing time")
    p.add_argument("--latency-runs", type=int, default=5, help="single publishes per kind for the timings")
    p.add_argument("--rows", default=",".join(DEFAULT_CPU_ROWS), help="CPU rows (%s)" % ", ".join(ALL_ROWS))
    p.add_argument("--latency-rows", default="bot,whip-aiortc,whip-ffmpeg,whip-gstreamer,whip-ffmpeg-1s")
    p.add_argument("--cache-dir", type=Path, default=Path(tempfile.gettempdir()) / "callbot-bench-cache")
    args = p.parse_args()
    rows = [r for r in args.rows.split(",") if r]
    latency = [r for r in args.latency_rows.split(",") if r]
    if "whip-ffmpeg-1s" in rows:
        p.error("whip-ffmpeg-1s is a latency row only")
    for row in rows + latency:
        if row not in ALL_ROWS:
            p.error(f"unknown row {row!r}; rows are {', '.join(ALL_ROWS)}")
    from record_clip import load_clip

    load_clip(args.cache_dir)
    h264_clip(args.cache_dir)

    cpu = {}
    for row in rows:
        cpu[row] = cpu_row(row, args.streams, args.seconds, args.cache_dir)
        print(f"{row}: {cpu[row]['cpu']:.1f}% of a core per stream, {cpu[row]['fps']:.1f} fps, "
              f"{cpu[row]['kbps']:.0f} kb/s", flush=True)
    timings = latency_rows(latency, args.latency_runs, args.cache_dir)

    base = cpu["bot"]["cpu"] if "bot" in cpu else None
    print(f"\nServer CPU per 720p30 stream ({args.streams} concurrent, recording on, "
          f"{args.seconds:.0f} s each):\n")
    print("| publisher | video received | % of one core per stream | vs bot call |")
    print("|---|---|---|---|")
    for row in rows:
        ratio = f"{cpu[row]['cpu'] / base:.2f}x" if base else "-"
        # A sender starved of CPU (the machine is shared) sends less, and its
        # row costs less: not comparable.
        starved = " (sender starved: rerun)" if cpu[row]["fps"] < 27 else ""
        print(f"| {row} | {cpu[row]['fps']:.0f} fps, {cpu[row]['kbps'] / 1000:.1f} Mb/s{starved} "
              f"| {cpu[row]['cpu']:.1f}% | {ratio} |")
    print(f"\nFrom the offer (bot) or POST (WHIP) reaching the server, median and max of {args.latency_runs}:\n")
    print("| publisher | to connected | to first recorded video frame |")
    print("|---|---|---|")
    for row in latency:
        t = timings.get(row, [])
        connected = [x["connected"] for x in t if x["connected"] is not None]
        first = [x["first"]["video"] for x in t if "video" in x["first"]]
        print(f"| {row} | {ms(connected)} (max {ms([max(connected)]) if connected else '-'}) "
              f"| {ms(first)} (max {ms([max(first)]) if first else '-'}) |")
    for row, t in timings.items():
        first = sorted(round(x["first"]["video"] * 1000) for x in t if "video" in x["first"])
        print(f"{row}: first recorded video frame after {first} ms")
    return 0


if __name__ == "__main__":
    sys.exit(main())
