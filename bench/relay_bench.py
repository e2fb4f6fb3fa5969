#!/usr/bin/env python3
"""Relay benchmark: signaling messages between client pairs, through one
process (in-memory registry) and through two processes sharing Redis.

    .venv/bin/python bench/relay_bench.py [--pairs 50] [--messages 400] [--window 16]

Each pair is two WebSocket clients; the sender sends ``candidate`` messages
carrying a send timestamp, at most ``--window`` unanswered at a time, and the
receiver measures latency on arrival. In the Redis run the sender is on node 1
and the receiver on node 2, so every message crosses Redis. All clients live
in this process and share one clock. Both runs use the same flags; the servers'
per-connection rate limit is raised out of the way.

Needs ``redis-server`` on PATH for the second run (skipped otherwise).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import shutil
import statistics
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import aiohttp

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from tests.support.cluster import Node  # noqa: E402
from tests.support.redis_process import RedisProcess  # noqa: E402

SERVER_FLAGS = (
    "--rate-limit", "1000000", "--rate-burst", "1000000",
    "--max-connections-per-address", "100000", "--backlog", "4096",
    "--log-level", "warning",
)


@dataclass
class Result:
    name: str
    messages: int
    seconds: float
    latencies_ms: list[float]

    def line(self) -> str:
        lat = sorted(self.latencies_ms)
        p50 = statistics.median(lat)
        p95 = lat[min(len(lat) - 1, int(len(lat) * 0.95))]
        return (f"{self.name:<28} {self.messages / self.seconds:>10.0f} msg/s   "
                f"p50 {p50:>7.2f} ms   p95 {p95:>7.2f} ms   ({self.messages} msgs in {self.seconds:.2f}s)")


async def login(session: aiohttp.ClientSession, url: str, username: str) -> aiohttp.ClientWebSocketResponse:
    ws = await session.ws_connect(url, max_msg_size=0)
    await ws.send_str(json.dumps({"type": "login", "username": username}))
    while True:
        msg = json.loads((await ws.receive(timeout=30)).data)
        if msg.get("type") == "login":
            assert msg["success"], msg
            return ws


async def drain(ws: aiohttp.ClientWebSocketResponse) -> None:
    """Read and drop (presence deltas); aiohttp answers pings while reading."""
    while not ws.closed:
        msg = await ws.receive()
        if msg.type in (aiohttp.WSMsgType.CLOSE, aiohttp.WSMsgType.CLOSED, aiohttp.WSMsgType.ERROR):
            return


async def run_pair(tx: aiohttp.ClientWebSocketResponse, rx: aiohttp.ClientWebSocketResponse,
                   target: str, count: int, window: int, latencies: list[float]) -> None:
    credit = asyncio.Semaphore(window)

    async def receive() -> None:
        got = 0
        while got < count:
            msg = await rx.receive(timeout=20)
            if msg.type is not aiohttp.WSMsgType.TEXT:
                raise RuntimeError(f"receiver got {msg.type!r} {msg.data!r}")
            data = json.loads(msg.data)
            if data.get("type") != "candidate":
                continue  # presence deltas
            sent_ns = int(data["candidate"]["candidate"].split()[-1])
            latencies.append((time.perf_counter_ns() - sent_ns) / 1e6)
            got += 1
            credit.release()

    receiver = asyncio.create_task(receive())
    for i in range(count):
        await credit.acquire()
        if receiver.done():
            break
        await tx.send_str(json.dumps({
            "type": "candidate", "otherUsername": target,
            "candidate": {"candidate": f"bench {i} {time.perf_counter_ns()}", "sdpMid": "0", "sdpMLineIndex": 0},
        }))
    await receiver


async def measure(name: str, send_url: str, recv_url: str, pairs: int, count: int, window: int) -> Result:
    async with aiohttp.ClientSession() as session:
        senders, receivers = [], []
        for p in range(pairs):
            senders.append(await login(session, send_url, f"s{p}"))
            receivers.append(await login(session, recv_url, f"r{p}"))
        # Senders read nothing else: drain them so pings get their pongs.
        drains = [asyncio.create_task(drain(ws)) for ws in senders]
        # Warm up every path once (script cache, connections).
        await asyncio.gather(*(run_pair(senders[p], receivers[p], f"r{p}", window, window, [])
                               for p in range(pairs)))
        latencies: list[float] = []
        t0 = time.perf_counter()
        await asyncio.gather(*(run_pair(senders[p], receivers[p], f"r{p}", count, window, latencies)
                               for p in range(pairs)))
        seconds = time.perf_counter() - t0
        for ws in senders + receivers:
            await ws.close()
        for task in drains:
            task.cancel()
    return Result(name, pairs * count, seconds, latencies)


async def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--pairs", type=int, default=50, help="sender/receiver pairs")
    p.add_argument("--messages", type=int, default=400, help="messages per pair")
    p.add_argument("--window", type=int, default=16, help="unanswered messages per pair")
    p.add_argument("--workdir", type=Path, default=None, help="keep node logs and data here (default: a temp dir)")
    a = p.parse_args()
    print(f"relay bench: {a.pairs} pairs x {a.messages} messages, window {a.window}", flush=True)
    results: list[Result] = []
    with tempfile.TemporaryDirectory(prefix="relay-bench-") as tmp:
        base = a.workdir or Path(tmp)
        node = await Node.start("single", None, base / "single", extra=SERVER_FLAGS)
        try:
            url = node.ws_url
            results.append(await measure("1 process (in-memory)", url, url, a.pairs, a.messages, a.window))
        finally:
            await node.stop()
        print(results[-1].line(), flush=True)

        if shutil.which("redis-server") is None:
            print("redis-server not found: skipping the Redis run")
        else:
            redis = RedisProcess(base / "redis")
            redis.start()
            try:
                n1, n2 = await asyncio.gather(
                    Node.start("n1", redis.url, base / "n1", lease=10.0, extra=SERVER_FLAGS),
                    Node.start("n2", redis.url, base / "n2", lease=10.0, extra=SERVER_FLAGS),
                )
                try:
                    results.append(await measure("2 processes via Redis", n1.ws_url, n2.ws_url,
                                                 a.pairs, a.messages, a.window))
                finally:
                    await asyncio.gather(n1.stop(), n2.stop())
            finally:
                redis.kill()
            print(results[-1].line(), flush=True)
    print()
    for r in results:
        print(r.line())
    return 0


if __name__ == "__main__":
    sys.exit(asyncio.run(main()))
