#!/usr/bin/env python3
"""Recording benchmark: K concurrent 720p30 VP8+Opus calls into one server process.

    .venv/bin/python bench/record_bench.py [--runs none:16,passthrough:1,passthrough:16,...]
                                           [--seconds 20] [--cache-dir DIR] [--keep]

For each run (mode:K), two fresh processes: a *server* that answers K calls
with aiortc and records them, and a *sender* that makes the K calls, sending
frames of a pre-encoded clip (bench/record_clip.py) as ``av.Packet``, so
senders cost little; the clip has a keyframe every second and a sender
asked for one (PLI) skips to the next, so every mode receives the same kind
of stream. Modes:

- ``none``: calls received, frames not decoded, nothing recorded: what
  aiortc's receive path alone costs the server;
- ``passthrough``: callbot's CallRecorder, default options (file + a JPEG a
  second);
- ``transcode``: CallRecorder with ``mode="transcode"`` (H.264+AAC MP4);
- ``mediarecorder``: aiortc's MediaRecorder to .mp4, as its examples do;
- ``bot``: whole bot calls (the bot runtime's CallSession with the default
  recording bot: tap, recorder, manifest, hooks), as the server runs them;
- ``bot-2fps``: the same with a bot that takes 2 decoded frames a second
  (``video_fps = 2``; the keyframe path shared with sampled pictures).

A mode written ``bot@base`` runs the code in ``--baseline-root`` (a checkout
of an older commit) instead of this one, so a change is measured before and
after in the same run::

    git worktree add /tmp/callbot-before 1b827a6
    .venv/bin/python bench/record_bench.py --baseline-root /tmp/callbot-before \
        --runs bot@base:1,bot:1,bot-2fps:1,bot@base:8,bot:8,bot-2fps:8

Measured in the server over a steady window (after start-up, before the
end): CPU time of the whole process (all threads) per call, as % of one
core; event-loop lag (how late a 10 ms timer fires: p99 and max); growth of
resident memory; and frames: sent by the senders vs found in the files with
PyAV (lost = sent - recorded). Senders send one uncounted video frame and
four audio frames after the counted ones, because aiortc's jitter buffer
holds back the last frames until more arrive.
"""

from __future__ import annotations

import argparse
import asyncio
import multiprocessing as mp
import os
import resource
import shutil
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(Path(__file__).resolve().parent))

DEFAULT_RUNS = "none:1,none:16,passthrough:1,passthrough:16,transcode:1,transcode:2,mediarecorder:1,mediarecorder:2"
WARMUP = 4.0  # seconds after media starts before measuring (recorder settles, files open)


@dataclass
class Result:
    mode: str
    calls: int
    cpu_per_call: float  # % of one core
    cpu_total: float
    lag_p99_ms: float
    lag_max_ms: float
    rss_growth_mb: float
    video_sent: int
    video_recorded: int
    audio_sent: int
    audio_recorded: int
    dropped_counted: int
    udp_drops: int = 0
    loop_thread: float = 0.0  # % of a core, whole process
    recorder_threads: float = 0.0
    pictures: int = 0
    pictures_decoded: int = 0
    errors: list = None  # type: ignore[assignment]
    note: str = ""


# -- common -------------------------------------------------------------------


def _use_loopback() -> None:
    try:
        from peer.compat import restrict_host_addresses
    except ImportError:  # a baseline checkout from before the layout of the design card
        from callbot.peer.ice import restrict_host_addresses

    restrict_host_addresses(("127.0.0.1",))


class _BotCalls:
    """``bot`` modes: answer with the server's own per-call code, this
    checkout's (peer.call.CallSession) or a baseline's (callbot.peer.call.BotCall)."""

    def __init__(self, mode: str, out_dir: Path, opts: dict) -> None:
        self.mode, self.out_dir, self.opts = mode, out_dir, opts
        self.calls: list[Any] = []
        try:
            import peer.runtime  # noqa: F401
            self.new = True
        except ImportError:
            self.new = False
        if self.new:
            from media.options import RecordingOptions
            from peer.api import Bot
            from peer.config import BotConfig, IceConfig, PeerConfig
            from peer.runtime import BotRuntime
            from signaling.registry import InMemoryRegistry

            class TwoFps(Bot):
                video_fps = 2

                async def on_video_frame(self, call, frame) -> None:
                    self.last = (frame.width, frame.height)

            bot = TwoFps() if mode == "bot-2fps" else Bot()
            config = PeerConfig(
                data_dir=out_dir, ice=IceConfig(addresses=("127.0.0.1",)), bot=BotConfig(max_calls=256),
                recording=RecordingOptions(**opts), min_free_bytes=0,
            )
            self.runtime = BotRuntime(config, InMemoryRegistry(), bot)
        else:
            if mode != "bot":
                raise SystemExit(f"the baseline has no {mode} mode")
            from callbot.config import BotConfig, Config, IceConfig
            from callbot.media.options import RecordingOptions

            self.config = Config(
                data_dir=out_dir, ice=IceConfig(addresses=("127.0.0.1",)), bot=BotConfig(max_calls=256),
                recording=RecordingOptions(**opts),
            )

    async def answer(self, i: int, sdp: str):
        """(pc, answer sdp) for the i-th offer."""
        if self.new:
            from peer.call import CallSession

            session = CallSession(self.runtime, f"caller{i}")
            answer = await session.answer(sdp)
            self.calls.append(session)
            return session.pc, answer
        from callbot.peer.call import BotCall
        from callbot.storage import create_call_directory

        sent: list[str] = []
        call = BotCall(
            self.config, f"caller{i}", create_call_directory(self.config.calls_dir),
            send=lambda m: sent.append(m["answer"]["sdp"]) if m.get("type") == "answer" else None,
            on_ended=lambda c: None,
        )
        await call.answer(sdp)
        self.calls.append(call)
        return call.pc, sent[0]

    def recorders(self) -> list[Any]:
        return [c.media.recorder if self.new else c._media._recorder for c in self.calls]

    def taps(self) -> list[Any]:
        return [t for c in self.calls for t in (c.media.taps if self.new else c._media._taps).values()]

    async def end(self) -> list[tuple[dict, Any]]:
        for call in self.calls:
            await call.end("hangup")
        return [(c.manifest.recording, c.directory) for c in self.calls]


def _udp_rcvbuf_errors() -> int:
    """Datagrams the kernel dropped because a socket's buffer was full (system-wide)."""
    try:
        with open("/proc/net/snmp") as f:
            rows = [line.split() for line in f if line.startswith("Udp:")]
        return int(rows[1][rows[0].index("RcvbufErrors")])
    except (OSError, ValueError, IndexError):
        return 0


def _thread_cpu() -> dict[int, float]:
    """CPU seconds so far of each thread of this process, by native thread id."""
    out = {}
    tick = os.sysconf("SC_CLK_TCK")
    for tid in os.listdir("/proc/self/task"):
        try:
            with open(f"/proc/self/task/{tid}/stat") as f:
                fields = f.read().rsplit(")", 1)[1].split()
        except OSError:
            continue
        out[int(tid)] = (int(fields[11]) + int(fields[12])) / tick  # utime + stime
    return out


def _rss_mb() -> float:
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 1e6


# -- sender process -------------------------------------------------------------


def sender_main(conn, calls: int, seconds: float, cache_dir: str) -> None:
    asyncio.run(_sender(conn, calls, seconds, Path(cache_dir)))


async def _sender(conn, calls: int, seconds: float, cache_dir: Path) -> None:
    import fractions

    import av
    from aiortc import MediaStreamTrack, RTCConfiguration, RTCPeerConnection, RTCSessionDescription
    from aiortc.mediastreams import MediaStreamError

    from record_clip import AUDIO_SAMPLES, FPS, KEYFRAME_EVERY, load_clip

    _use_loopback()
    clip = load_clip(cache_dir)
    loop = asyncio.get_running_loop()
    start = asyncio.Event()

    class ClipTrack(MediaStreamTrack):
        """Encoded clip frames, paced in real time; a PLI makes the next one a keyframe."""

        def __init__(self, kind: str, count: int, tail: int) -> None:
            super().__init__()
            self.kind = kind
            self.count, self.tail = count, tail
            self.sent = 0
            self.want_keyframe = False
            self.position = 0  # in the clip
            self.period = 1 / FPS if kind == "video" else AUDIO_SAMPLES / 48000
            self.t0: float | None = None

        async def recv(self):
            n = self.sent
            if n >= self.count + self.tail:
                self.stop()
                raise MediaStreamError
            await start.wait()
            if self.t0 is None:
                self.t0 = loop.time()
            delay = self.t0 + n * self.period - loop.time()
            if delay > 0:
                await asyncio.sleep(delay)
            self.sent += 1
            if self.kind == "video":
                if self.want_keyframe:
                    # Answer a PLI: skip to the clip's next keyframe.
                    self.want_keyframe = False
                    if self.position % KEYFRAME_EVERY:
                        self.position += KEYFRAME_EVERY - self.position % KEYFRAME_EVERY
                data = clip.video[self.position % len(clip.video)]
                self.position += 1
                packet = av.Packet(data)
                packet.pts, packet.time_base = n * 3000, fractions.Fraction(1, 90000)
            else:
                packet = av.Packet(clip.audio[n % len(clip.audio)])
                packet.pts, packet.time_base = n * AUDIO_SAMPLES, fractions.Fraction(1, 48000)
            return packet

    pcs, tracks = [], []
    for _ in range(calls):
        pc = RTCPeerConnection(RTCConfiguration(iceServers=[]))
        audio = ClipTrack("audio", int(seconds * 50), 4)
        video = ClipTrack("video", int(seconds * FPS), 1)
        pc.addTrack(audio)
        sender = pc.addTrack(video)
        original = sender._send_keyframe

        def on_pli(original=original, video=video) -> None:
            # Bench-only: what a browser's encoder does on PLI.
            original()
            video.want_keyframe = True

        sender._send_keyframe = on_pli
        await pc.setLocalDescription(await pc.createOffer())
        pcs.append(pc)
        tracks.append((audio, video))
    conn.send([pc.localDescription.sdp for pc in pcs])
    answers = await loop.run_in_executor(None, conn.recv)
    for pc, sdp in zip(pcs, answers):
        await pc.setRemoteDescription(RTCSessionDescription(sdp=sdp, type="answer"))
    assert await loop.run_in_executor(None, conn.recv) == "go"
    start.set()
    done = [asyncio.Event() for _ in range(calls * 2)]
    for event, track in zip(done, [t for pair in tracks for t in pair]):
        track.on("ended", event.set)
    await asyncio.wait_for(asyncio.gather(*(e.wait() for e in done)), seconds + 120)
    conn.send({
        "video_sent": sum(v.count for _, v in tracks if v.sent >= v.count),
        "audio_sent": sum(a.count for a, _ in tracks if a.sent >= a.count),
        "complete": all(v.sent >= v.count and a.sent >= a.count for a, v in tracks),
    })
    assert await loop.run_in_executor(None, conn.recv) == "bye"
    for pc in pcs:
        await pc.close()


# -- server process -----------------------------------------------------------


def server_main(conn, results, mode: str, calls: int, seconds: float, out_dir: str, options: dict,
                code_root: str | None = None) -> None:
    if code_root:
        sys.path.insert(0, code_root)
    results.put(asyncio.run(_server(conn, mode, calls, seconds, Path(out_dir), options)))


async def _server(conn, mode: str, calls: int, seconds: float, out_dir: Path, opts: dict) -> dict[str, Any]:
    import av
    from aiortc import RTCConfiguration, RTCPeerConnection, RTCRtpReceiver, RTCSessionDescription
    from aiortc.contrib.media import MediaRecorder

    if mode in ("passthrough", "transcode", "none", "mediarecorder"):
        from media.options import RecordingOptions
        from media.recorder import CallRecorder
        from media.storage import atomic_write_json, create_call_directory
        from peer.tap import EncodedFrameTap

    _use_loopback()
    loop = asyncio.get_running_loop()

    # aiortc starts receivers a moment after the connection is up; media
    # sent before would be discarded, so the senders wait for all of them.
    started: list[asyncio.Event] = []
    original_receive = RTCRtpReceiver.receive

    async def receive(self, parameters):
        await original_receive(self, parameters)
        if hasattr(self, "_bench_started"):
            self._bench_started.set()

    RTCRtpReceiver.receive = receive

    offers = await loop.run_in_executor(None, conn.recv)
    udp0 = _udp_rcvbuf_errors()
    pcs, recorders, media_recorders, taps = [], [], [], []
    bot_calls = _BotCalls(mode, out_dir, opts) if mode.startswith("bot") else None
    for i, sdp in enumerate(offers):
        if bot_calls is not None:
            pc, answer = await bot_calls.answer(i, sdp)
            for transceiver in pc.getTransceivers():
                transceiver.receiver._bench_started = asyncio.Event()
                started.append(transceiver.receiver._bench_started)
            pcs.append((pc, answer))
            continue
        pc = RTCPeerConnection(RTCConfiguration(iceServers=[]))
        recorder = None
        if mode in ("passthrough", "transcode"):
            options = RecordingOptions(mode=mode, **opts)
            call_dir = create_call_directory(out_dir / "calls")
            recorder = CallRecorder(call_dir, options)
            recorders.append((recorder, call_dir))
        media_recorder = None
        if mode == "mediarecorder":
            media_recorder = MediaRecorder(str(out_dir / f"mediarecorder-{i}.mp4"))
            media_recorders.append(media_recorder)

        def on_track(track, pc=pc, recorder=recorder, media_recorder=media_recorder):
            receiver = next(t.receiver for t in pc.getTransceivers() if t.receiver.track is track)
            receiver._bench_started = asyncio.Event()
            started.append(receiver._bench_started)
            if media_recorder is not None:
                media_recorder.addTrack(track)  # reads decoded frames
                return
            tap = EncodedFrameTap.attach(receiver, track, decode=False)
            if recorder is not None:
                recorder.add_source(tap)
            taps.append(tap)

        pc.on("track", on_track)
        await pc.setRemoteDescription(RTCSessionDescription(sdp=sdp, type="offer"))
        await pc.setLocalDescription(await pc.createAnswer())
        pcs.append(pc)
    if bot_calls is not None:
        conn.send([answer for _, answer in pcs])
        pcs = [pc for pc, _ in pcs]
    else:
        conn.send([pc.localDescription.sdp for pc in pcs])
    await asyncio.wait_for(asyncio.gather(*(e.wait() for e in started)), 60)
    if bot_calls is not None:
        taps = bot_calls.taps()
        recorders = [(r, r.call_dir) for r in bot_calls.recorders()]
    for media_recorder in media_recorders:
        await media_recorder.start()

    lags: list[float] = []
    measuring = False

    async def lag_monitor() -> None:
        while True:
            t0 = loop.time()
            await asyncio.sleep(0.01)
            if measuring:
                lags.append(loop.time() - t0 - 0.01)

    monitor = asyncio.ensure_future(lag_monitor())
    conn.send("go")
    await asyncio.sleep(WARMUP)  # media time: measure the steady state only
    measuring = True
    cpu0, wall0, rss0, threads0 = _cpu(), time.monotonic(), _rss_mb(), _thread_cpu()
    await asyncio.sleep(max(1.0, seconds - WARMUP - 1.0))
    cpu1, wall1, rss1, threads1 = _cpu(), time.monotonic(), _rss_mb(), _thread_cpu()
    # The recorder's own threads (file writer, picture sampler); everything
    # it does on the event loop (the tap) is in the loop thread's share.
    ours = set()
    for recorder, _ in recorders:
        worker = recorder._worker
        ours.add(worker.native_id)
        if worker.sampler is not None:
            ours.add(worker.sampler._thread.native_id)
    window = wall1 - wall0
    loop_cpu = threads1.get(os.getpid(), 0) - threads0.get(os.getpid(), 0)
    recorder_cpu = sum(threads1.get(t, 0) - threads0.get(t, 0) for t in ours)
    measuring = False
    sent = await loop.run_in_executor(None, conn.recv)

    # Let frames still in flight arrive (taps count them), then hang up.
    video_taps = [t for t in taps if t.kind == "video"]
    deadline = time.monotonic() + 10
    while mode != "mediarecorder" and time.monotonic() < deadline:
        if sum(t.frames for t in video_taps) >= sent["video_sent"] + len(video_taps):
            break
        await asyncio.sleep(0.05)
    if mode == "mediarecorder":
        await asyncio.sleep(2.0)
    if bot_calls is not None:
        sections = await bot_calls.end()
    else:
        sections = [(await r.stop("hangup"), d) for r, d in recorders]
        for section, call_dir in sections:
            atomic_write_json(call_dir.manifest_path, {"recording": section})
    for media_recorder in media_recorders:
        await media_recorder.stop()
    conn.send("bye")
    udp_drops = _udp_rcvbuf_errors() - udp0
    monitor.cancel()
    for pc in pcs:
        await pc.close()

    video_rec = audio_rec = 0
    files = [d.file(s["file"]) for s, d in sections if s["file"]]
    files += [out_dir / f"mediarecorder-{i}.mp4" for i in range(len(media_recorders))]
    for path in files:
        v, a = await loop.run_in_executor(None, _count_packets, av, path)
        video_rec += v
        audio_rec += a
    dropped = sum(s["dropped"] for s, _ in sections)
    lags.sort()
    return {
        "mode": mode,
        "calls": calls,
        "cpu_total": 100 * (cpu1 - cpu0) / (wall1 - wall0),
        "lag_p99_ms": 1000 * lags[int(0.99 * (len(lags) - 1))] if lags else 0.0,
        "lag_max_ms": 1000 * lags[-1] if lags else 0.0,
        "rss_growth_mb": rss1 - rss0,
        "loop_thread": 100 * loop_cpu / window,
        "recorder_threads": 100 * recorder_cpu / window,
        "video_sent": sent["video_sent"],
        "audio_sent": sent["audio_sent"],
        "video_recorded": video_rec,
        "audio_recorded": audio_rec,
        "dropped_counted": dropped,
        "pictures": sum(s["frames"].get("saved", 0) for s, _ in sections),
        "pictures_decoded": sum(s["frames"].get("decoded", 0) for s, _ in sections),
        "errors": sorted({e for s, _ in sections for e in s["errors"]})[:3],
        "sender_complete": sent["complete"],
        "udp_drops": udp_drops,
    }


def _cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def _count_packets(av, path: Path) -> tuple[int, int]:
    counts = {"video": 0, "audio": 0}
    try:
        with av.open(str(path)) as container:
            for packet in container.demux():
                if packet.size and packet.stream.type in counts:
                    counts[packet.stream.type] += 1
    except (OSError, av.FFmpegError):
        pass
    return counts["video"], counts["audio"]


# -- orchestration ------------------------------------------------------------


def run_one(mode: str, calls: int, seconds: float, cache_dir: Path, out_root: Path, options: dict,
            baseline_root: Path | None = None) -> Result:
    ctx = mp.get_context("spawn")
    server_conn, sender_conn = ctx.Pipe()
    results = ctx.Queue()
    label = mode
    mode, _, where = mode.partition("@")
    code_root = None
    if where:
        if baseline_root is None:
            raise SystemExit(f"{label}: give --baseline-root")
        code_root = str(baseline_root)
    out_dir = Path(tempfile.mkdtemp(prefix=f"{mode}-{calls}-", dir=out_root))
    server = ctx.Process(target=server_main, args=(server_conn, results, mode, calls, seconds, str(out_dir), options, code_root))
    sender = ctx.Process(target=sender_main, args=(sender_conn, calls, seconds, str(cache_dir)))
    server.start()
    sender.start()
    try:
        data = results.get(timeout=seconds + 300)
    finally:
        for proc in (server, sender):
            proc.join(30)
            if proc.is_alive():
                proc.kill()
                proc.join()
    note = "" if data.pop("sender_complete") else "senders fell behind"
    data["mode"] = label
    r = Result(cpu_per_call=data["cpu_total"] / calls, note=note, **data)
    if mode == "none":
        r.video_recorded = r.audio_recorded = 0
    return r


def print_table(results: list[Result]) -> None:
    head = (
        f"| {'mode':13} | {'calls':>5} | {'CPU/call':>8} | {'writer+sampler/call':>19} | {'CPU total':>9} | {'loop lag p99':>12} | "
        f"{'max':>7} | {'RSS growth':>10} | {'video sent':>10} | {'recorded':>8} | {'lost':>5} | "
        f"{'audio lost':>10} | {'drops counted':>13} | {'UDP drops (host)':>16} |"
    )
    print(head)
    print("|" + "|".join("-" * (len(c)) for c in head.split("|")[1:-1]) + "|")
    for r in results:
        recorded = "-" if r.mode == "none" else str(r.video_recorded)
        lost = "-" if r.mode == "none" else str(r.video_sent - r.video_recorded)
        alost = "-" if r.mode == "none" else str(r.audio_sent - r.audio_recorded)
        if r.mode == "transcode":
            alost = "(aac)"  # AAC frames are 1024 samples, not comparable
        print(
            f"| {r.mode:13} | {r.calls:5d} | {r.cpu_per_call:7.1f}% | {r.recorder_threads / r.calls:18.2f}% | {r.cpu_total:8.1f}% | "
            f"{r.lag_p99_ms:9.1f} ms | {r.lag_max_ms:4.0f} ms | {r.rss_growth_mb:7.0f} MB | "
            f"{r.video_sent:10d} | {recorded:>8} | {lost:>5} | {alost:>10} | {r.dropped_counted:13d} | "
            f"{r.udp_drops:16d} |"
            + (f" {r.note}" if r.note else "")
        )
    for r in results:
        if r.pictures or r.errors:
            print(f"{r.mode} x {r.calls}: {r.pictures} pictures from {r.pictures_decoded} decoded frames"
                  + (f"; errors: {r.errors}" if r.errors else ""))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--runs", default=DEFAULT_RUNS, help="comma-separated mode:calls (default: %(default)s)")
    parser.add_argument("--seconds", type=float, default=20.0, help="media sent per call")
    parser.add_argument("--cache-dir", type=Path, default=Path(tempfile.gettempdir()) / "callbot-bench-cache")
    parser.add_argument("--keep", action="store_true", help="keep the recordings (printed path)")
    parser.add_argument("--frame-interval", type=float, default=1.0, help="recorder's JPEG interval (0: off)")
    parser.add_argument("--keyframe-interval", type=float, default=2.0, help="recorder's keyframe interval")
    parser.add_argument("--baseline-root", type=Path, default=None,
                        help="a checkout of an older commit, for modes written mode@base")
    args = parser.parse_args()

    from record_clip import load_clip

    clip = load_clip(args.cache_dir)  # build the cache once, outside the runs
    out_root = Path(tempfile.mkdtemp(prefix="callbot-record-bench-"))
    print(
        f"{os.cpu_count()} CPUs; 720p30 VP8 ({clip.video_bitrate / 1e6:.2f} Mb/s) + Opus per call; "
        f"{args.seconds:.0f} s per call, measured over the middle {args.seconds - WARMUP - 1:.0f} s\n",
        flush=True,
    )
    results = []
    try:
        for spec in args.runs.split(","):
            mode, calls = spec.split(":")
            print(f"running {mode} x {calls} ...", file=sys.stderr, flush=True)
            options = {"frame_interval": args.frame_interval, "keyframe_interval": args.keyframe_interval}
            results.append(run_one(mode, int(calls), args.seconds, args.cache_dir, out_root, options,
                                   args.baseline_root))
    finally:
        if results:
            print_table(results)
        if args.keep:
            print(f"\nrecordings kept in {out_root}")
        else:
            shutil.rmtree(out_root, ignore_errors=True)


if __name__ == "__main__":
    main()
