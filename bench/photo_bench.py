"""How long a photo takes over a loopback aiortc data channel, end to end.

    .venv/bin/python bench/photo_bench.py [--runs 30] [--size 2097152] [--chunk 262144]
        [--same-process] [--no-fsync] [--transport-only] [--profile bot.prof]

A bot RTCPeerConnection in this process serves a ``photos`` channel with
``attach_photo_channel`` and a real ``PhotoStore``; a caller RTCPeerConnection
(in a child process by default, as a browser would be; ``--same-process`` puts
both on one event loop) connects over 127.0.0.1. Each run sends one real JPEG
of about ``--size`` bytes in ``--chunk`` byte messages and the caller times
from its first ``channel.send`` (photo-begin) to the ``photo-saved`` reply.

Printed: wall-clock median / p95 / min, and the bot process's CPU time per
photo split into ours (assembler on the loop; decode check + atomic write in
the executor) and the rest (aiortc: UDP, DTLS, SCTP). ``--transport-only``
replaces the photo handler with one that answers photo-end at once, to show
aiortc's own floor. Target: median < 150 ms.
"""

from __future__ import annotations

import argparse
import asyncio
import cProfile
import hashlib
import json
import multiprocessing
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import cv2  # noqa: E402
import numpy as np  # noqa: E402
from aiortc import RTCConfiguration, RTCPeerConnection, RTCSessionDescription  # noqa: E402

from photos import store as photos_store  # noqa: E402
from photos.channel import PHOTOS_LABEL, attach_photo_channel  # noqa: E402
from photos.store import PhotoStore  # noqa: E402
from peer import compat  # noqa: E402
from peer.compat import restrict_host_addresses  # noqa: E402
from media.storage import create_call_directory  # noqa: E402

TIMEOUT = 60.0


def make_jpeg(target: int) -> bytes:
    """A photo-like JPEG (gradients + noise) within ~10% of ``target`` bytes."""
    rng = np.random.default_rng(7)
    pixels = target
    for _ in range(8):
        side = int(pixels**0.5)
        h, w = side, side * 4 // 3
        y, x = np.mgrid[0:h, 0:w]
        base = np.stack([x * 255 // w, y * 255 // h, (x + y) * 127 // (w + h)], axis=-1)
        image = ((base + rng.integers(0, 64, size=(h, w, 3))) % 256).astype(np.uint8)
        ok, buf = cv2.imencode(".jpg", image, [cv2.IMWRITE_JPEG_QUALITY, 92])
        data = buf.tobytes()
        if abs(len(data) - target) <= target * 0.1:
            break
        pixels = int(pixels * target / len(data))
    return data


def percentile(values: list[float], p: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, round(p / 100 * (len(ordered) - 1))))]


# -- the caller (a browser stand-in) -------------------------------------------


class Caller:
    def __init__(self) -> None:
        self.pc = RTCPeerConnection(RTCConfiguration(iceServers=[]))
        self.channel = self.pc.createDataChannel(PHOTOS_LABEL)
        self.replies: asyncio.Queue[dict] = asyncio.Queue()
        self.channel.on("message", lambda m: self.replies.put_nowait(json.loads(m)))

    async def offer(self) -> dict:
        await self.pc.setLocalDescription(await self.pc.createOffer())
        return {"sdp": self.pc.localDescription.sdp, "type": "offer"}

    async def connect(self, answer: dict) -> None:
        opened = asyncio.get_running_loop().create_future()
        self.channel.on("open", lambda: opened.done() or opened.set_result(None))
        await self.pc.setRemoteDescription(RTCSessionDescription(**answer))
        if self.channel.readyState != "open":
            await asyncio.wait_for(opened, TIMEOUT)

    async def send_photos(self, data: bytes, chunk: int, runs: int) -> list[float]:
        sha = hashlib.sha256(data).hexdigest()
        times = []
        for i in range(runs):
            begin = json.dumps({"type": "photo-begin", "id": i, "name": "bench.jpg",
                                "mime": "image/jpeg", "size": len(data), "sha256": sha})
            t0 = time.perf_counter()
            self.channel.send(begin)
            for offset in range(0, len(data), chunk):
                self.channel.send(data[offset : offset + chunk])
            self.channel.send(json.dumps({"type": "photo-end", "id": i}))
            reply = await asyncio.wait_for(self.replies.get(), TIMEOUT)
            times.append((time.perf_counter() - t0) * 1000)
            assert reply["type"] == "photo-saved" and reply["id"] == i, reply
        return times


def caller_process(conn, size: int, chunk: int, runs: int) -> None:
    async def main() -> None:
        loop = asyncio.get_running_loop()
        restrict_host_addresses(("127.0.0.1",))
        data = make_jpeg(size)
        caller = Caller()
        conn.send(await caller.offer())
        await caller.connect(await loop.run_in_executor(None, conn.recv))
        conn.send(("ready", len(data)))
        await loop.run_in_executor(None, conn.recv)  # go
        conn.send(await caller.send_photos(data, chunk, runs))
        await loop.run_in_executor(None, conn.recv)  # done
        await caller.pc.close()

    asyncio.run(main())


# -- the bot --------------------------------------------------------------------


class TransportOnly:
    """A floor for comparison: answer photo-end at once, no checks, no disk."""

    def __init__(self, channel) -> None:
        self.channel = channel
        channel.on("message", self.on_message)

    def on_message(self, message) -> None:
        if isinstance(message, str):
            m = json.loads(message)
            if m["type"] == "photo-end":
                self.channel.send(json.dumps({"type": "photo-saved", "id": m["id"]}))

    async def wait_closed(self) -> None:
        pass


class OwnCpu:
    """CPU seconds spent in our code: assembler on the loop, save in threads."""

    def __init__(self) -> None:
        self.assembler = 0.0
        self.save = 0.0

    def wrap(self, photo_channel) -> None:
        assembler = photo_channel.assembler
        real_receive = assembler.receive

        def receive(message):
            t = time.thread_time()
            try:
                return real_receive(message)
            finally:
                self.assembler += time.thread_time() - t

        assembler.receive = receive
        for name in ("verify_image", "atomic_write_bytes"):
            real = getattr(photos_store, name)

            def timed(*args, _real=real, **kwargs):
                t = time.thread_time()
                try:
                    return _real(*args, **kwargs)
                finally:
                    self.save += time.thread_time() - t

            setattr(photos_store, name, timed)


async def run(args: argparse.Namespace) -> None:
    restrict_host_addresses(("127.0.0.1",))
    if not args.aiortc_reassembly:
        compat.install_sctp_speedup()  # as the bot does (peer.runtime)
    runs = args.warmup + args.runs
    with tempfile.TemporaryDirectory(prefix="photo-bench-") as tmp:
        store = PhotoStore(create_call_directory(Path(tmp)), fsync=not args.no_fsync)
        loop = asyncio.get_running_loop()
        bot = RTCPeerConnection(RTCConfiguration(iceServers=[]))
        attached = loop.create_future()

        @bot.on("datachannel")
        def on_datachannel(channel) -> None:
            if args.transport_only:
                attached.set_result(TransportOnly(channel))
            else:
                attached.set_result(attach_photo_channel(channel, store))

        async def answer(offer: dict) -> dict:
            await bot.setRemoteDescription(RTCSessionDescription(**offer))
            await bot.setLocalDescription(await bot.createAnswer())
            return {"sdp": bot.localDescription.sdp, "type": "answer"}

        child = None
        if args.same_process:
            caller = Caller()
            await caller.connect(await answer(await caller.offer()))
            data = make_jpeg(args.size)
            size = len(data)
        else:
            ctx = multiprocessing.get_context("spawn")
            conn, child_conn = ctx.Pipe()
            child = ctx.Process(target=caller_process, args=(child_conn, args.size, args.chunk, runs))
            child.start()
            recv = lambda: loop.run_in_executor(None, conn.recv)  # noqa: E731
            conn.send(await answer(await recv()))
            _, size = await recv()
        photo_channel = await asyncio.wait_for(attached, TIMEOUT)
        own = OwnCpu()
        if not args.transport_only:
            own.wrap(photo_channel)
        profiler = cProfile.Profile() if args.profile else None

        cpu0 = time.process_time()
        if profiler:
            profiler.enable()
        if child is None:
            times = await caller.send_photos(data, args.chunk, runs)
        else:
            conn.send("go")
            times = await recv()
        if profiler:
            profiler.disable()
        cpu = time.process_time() - cpu0
        if child is not None:
            conn.send("done")
            await loop.run_in_executor(None, child.join, TIMEOUT)
        else:
            await caller.pc.close()
        await bot.close()
        await photo_channel.wait_closed()
        assert len(store.entries) == (0 if args.transport_only else runs)

    times = times[args.warmup :]
    chunks = -(-size // args.chunk)
    print(f"photo: {size} bytes JPEG in {chunks} chunks of <= {args.chunk} bytes; "
          f"caller in {'this' if child is None else 'a child'} process; "
          f"{'TRANSPORT ONLY; ' if args.transport_only else ''}"
          f"fsync {'off' if args.no_fsync else 'on'}; {args.runs} runs after {args.warmup} warm-up")
    print(f"first send -> photo-saved: median {statistics.median(times):6.1f} ms   "
          f"p95 {percentile(times, 95):6.1f} ms   min {min(times):6.1f} ms")
    per = lambda seconds: seconds / runs * 1000  # noqa: E731  (CPU counted over warm-up runs too)
    who = "bot + caller" if child is None else "bot"
    print(f"{who} process CPU per photo: {per(cpu):6.1f} ms; ours: assembler {per(own.assembler):.1f} ms "
          f"on the loop, decode check + write {per(own.save):.1f} ms in the executor")
    if profiler:
        profiler.dump_stats(args.profile)
        print(f"profile of the bot process written to {args.profile}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=30)
    parser.add_argument("--warmup", type=int, default=3)
    parser.add_argument("--size", type=int, default=2 * 1024 * 1024)
    parser.add_argument("--chunk", type=int, default=256 * 1024)
    parser.add_argument("--same-process", action="store_true")
    parser.add_argument("--no-fsync", action="store_true")
    parser.add_argument("--transport-only", action="store_true",
                        help="no photo handling at all: aiortc's own floor for comparison")
    parser.add_argument("--profile", metavar="FILE", help="write a cProfile of the bot's timed runs")
    parser.add_argument("--aiortc-reassembly", action="store_true",
                        help="without peer.compat's SCTP speed-up: aiortc's own quadratic reassembly")
    asyncio.run(run(parser.parse_args()))


if __name__ == "__main__":
    main()
