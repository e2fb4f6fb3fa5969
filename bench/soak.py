#!/usr/bin/env python3
"""Soak: cycle calls to the bot, each sending a photo, against a real server
process for a set time; report the server's RSS, open file descriptors,
threads and asyncio tasks before and after (read from /proc and /healthz).

    .venv/bin/python bench/soak.py --seconds 60
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

import aiohttp  # noqa: E402

from peer.compat import restrict_host_addresses  # noqa: E402
from tests.support.server import Client  # noqa: E402
from tests.support.caller import Caller  # noqa: E402
from tests.support.photos import PhotoCaller, make_jpeg  # noqa: E402
from tests.support.process import ServerProcess  # noqa: E402


def proc_stats(pid: int) -> dict[str, int]:
    status = Path(f"/proc/{pid}/status").read_text().splitlines()
    fields = dict(line.split(":", 1) for line in status)
    return {
        "rss_kib": int(fields["VmRSS"].split()[0]),
        "threads": int(fields["Threads"]),
        "fds": len(os.listdir(f"/proc/{pid}/fd")),
    }


async def snapshot(server: ServerProcess) -> dict[str, int]:
    async with aiohttp.ClientSession() as http:
        async with http.get(server.url + "/healthz") as r:
            health = await r.json()
    return {**proc_stats(server.proc.pid), "tasks": health["tasks"], "bot_calls": health["bot_calls"]}


async def one_call(client: Client, photo: bytes) -> None:
    caller = Caller(client)
    channel = caller.pc.createDataChannel("photos")
    opened = asyncio.Event()
    channel.on("open", opened.set)
    photos = PhotoCaller(channel)
    await caller.call()
    await asyncio.wait_for(opened.wait(), 10)
    photos.send_photo("p", photo)
    reply = await photos.reply()
    assert reply["type"] == "photo-saved", reply
    await caller.hangup()


async def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--seconds", type=float, default=60)
    parser.add_argument("--warmup", type=int, default=5, help="calls before the first snapshot")
    parser.add_argument("--every", type=float, default=30, help="seconds between progress snapshots")
    args = parser.parse_args()
    restrict_host_addresses(("127.0.0.1",))
    photo = make_jpeg(200_000)
    with tempfile.TemporaryDirectory() as tmp:
        server = await ServerProcess.start(Path(tmp), "--rate-limit", "1000", "--rate-burst", "1000")
        try:
            client = await Client.connect(server.ws_url)
            await client.login("soak")
            for _ in range(args.warmup):
                await one_call(client, photo)
            await asyncio.sleep(1)  # let the warm-up calls' teardown finish before measuring
            before = await snapshot(server)
            calls = 0
            start = time.monotonic()
            deadline = start + args.seconds
            next_report = start + args.every
            while time.monotonic() < deadline:
                await one_call(client, photo)
                calls += 1
                if time.monotonic() >= next_report:
                    next_report += args.every
                    now = await snapshot(server)
                    print(f"  {time.monotonic() - start:6.0f} s  {calls:6d} calls  rss {now['rss_kib']} KiB"
                          f"  fds {now['fds']}  threads {now['threads']}  tasks {now['tasks']}", flush=True)
            await asyncio.sleep(1)  # same settling time as before the first snapshot
            after = await snapshot(server)
            await client.close()
        finally:
            await server.stop()
    print(f"soak: {calls} calls with a 200 KB photo each in {args.seconds:.0f} s (after {args.warmup} warm-up calls)")
    print(f"{'':10} {'before':>10} {'after':>10} {'change':>10}")
    for key in ("rss_kib", "fds", "threads", "tasks", "bot_calls"):
        print(f"{key:10} {before[key]:>10} {after[key]:>10} {after[key] - before[key]:>+10}")


if __name__ == "__main__":
    asyncio.run(main())
