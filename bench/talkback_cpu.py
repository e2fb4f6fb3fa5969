#!/usr/bin/env python3
"""Server CPU per call for each talk-back mode (none, echo, overlay).

A real server process per mode; callers in this process send 640x480 VP8 and
Opus for a fixed time; the server's CPU time comes from /proc. Recording is
on in every mode (the default), so the differences are the talk-back's cost.

    .venv/bin/python bench/talkback_cpu.py --calls 2 --seconds 10
"""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from aiortc.mediastreams import AudioStreamTrack  # noqa: E402

from peer.compat import restrict_host_addresses  # noqa: E402
from tests.support.server import Client  # noqa: E402
from tests.support.caller import Caller, PatternVideoTrack  # noqa: E402
from tests.support.process import ServerProcess  # noqa: E402

TICKS = os.sysconf("SC_CLK_TCK")


def cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / TICKS  # utime + stime


async def drain(track) -> None:
    try:
        while True:
            await track.recv()
    except Exception:
        pass


async def measure(mode: str, calls: int, seconds: float) -> float:
    with tempfile.TemporaryDirectory() as tmp:
        server = await ServerProcess.start(Path(tmp), "--talkback", mode)
        try:
            clients, callers, drains = [], [], []
            for i in range(calls):
                client = await Client.connect(server.ws_url)
                await client.login(f"caller{i}")
                caller = Caller(client, tracks=[PatternVideoTrack(640, 480), AudioStreamTrack()])
                await caller.call()
                clients.append(client)
                callers.append(caller)
                drains += [asyncio.ensure_future(drain(t)) for t in caller.received.values()]
            await asyncio.sleep(2)  # past the recorder's start and the first keyframes
            start_cpu, start = cpu_seconds(server.proc.pid), time.monotonic()
            await asyncio.sleep(seconds)
            used = cpu_seconds(server.proc.pid) - start_cpu
            elapsed = time.monotonic() - start
            for caller in callers:
                await caller.hangup()
            for task in drains:
                task.cancel()
            for client in clients:
                await client.close()
        finally:
            await server.stop()
    return used / elapsed / calls * 100


async def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--calls", type=int, default=2)
    parser.add_argument("--seconds", type=float, default=10)
    args = parser.parse_args()
    restrict_host_addresses(("127.0.0.1",))
    results = {mode: await measure(mode, args.calls, args.seconds) for mode in ("none", "echo", "overlay")}
    print(f"server CPU per call, {args.calls} concurrent 640x480 VP8+Opus calls, {args.seconds:.0f} s, recording on")
    print(f"{'talkback':10} {'% of a core per call':>22} {'vs none':>8}")
    for mode, pct in results.items():
        print(f"{mode:10} {pct:>21.1f}% {pct / results['none']:>7.2f}x")


if __name__ == "__main__":
    asyncio.run(main())
