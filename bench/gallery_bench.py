#!/usr/bin/env python3
"""Gallery benchmark: what one refresh of the gallery costs the server, with
many calls on disk.

    .venv/bin/python bench/gallery_bench.py [--calls 3000] [--frames 20] [--rounds 5]

Makes ``--calls`` finished call directories (each with ``--frames`` sampled
frames, a photo and a recording, as the bot leaves them; half of them by one
caller) and runs the real app in this process. Then times, median over
``--rounds``, the requests the page makes:

- the whole list, ``GET /api/calls`` (what the page asked for before it paged
  on the server, every 5-15 s while the gallery is open): the baseline;
- one page, ``?limit=12``, the first time (the call index cold: every
  ``meta.json`` read once) and after (warm);
- one page filtered by caller and by dates.

Figures are server wall time per request and response size, and each page's
ratio to the whole list in the same run.
"""

from __future__ import annotations

import argparse
import asyncio
import calendar
import json
import statistics
import sys
import tempfile
import time
from pathlib import Path

import aiohttp

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from media.storage import new_call_id  # noqa: E402
from tests.support.server import running_server, test_config  # noqa: E402


def make_calls(calls_dir: Path, count: int, frames: int) -> None:
    start = calendar.timegm((2025, 1, 1, 0, 0, 0))
    jpeg = b"\xff\xd8\xff\xe0" + bytes(2000)
    for i in range(count):
        when = start + i * 3600
        call_id = new_call_id(when)
        d = calls_dir / call_id
        (d / "frames").mkdir(parents=True)
        for f in range(frames):
            (d / "frames" / f"frame-{f:06d}.jpg").write_bytes(jpeg)
        (d / "photo-0001.jpg").write_bytes(jpeg)
        (d / "recording.webm").write_bytes(b"\x1a\x45\xdf\xa3" + bytes(4000))
        caller = "ann" if i % 2 else f"user{i % 97}"
        meta = {
            "call_id": call_id, "caller": caller, "bot": "bot", "status": "complete",
            "started_at": time.strftime("%Y-%m-%dT%H:%M:%S.000Z", time.gmtime(when)), "duration": 60.0,
            "photos": [{"file": "photo-0001.jpg", "name": "snap.jpg", "size": len(jpeg)}],
            "recording": {"file": "recording.webm"},
        }
        (d / "meta.json").write_text(json.dumps(meta))


async def timed(http: aiohttp.ClientSession, url: str, params: dict[str, str]) -> tuple[float, int, int]:
    t0 = time.perf_counter()
    async with http.get(url + "/api/calls", params=params) as r:
        body = await r.read()
        assert r.status == 200, (r.status, body[:200])
    elapsed = time.perf_counter() - t0
    return elapsed, len(body), len(json.loads(body)["calls"])


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--calls", type=int, default=3000)
    parser.add_argument("--frames", type=int, default=20)
    parser.add_argument("--rounds", type=int, default=5)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        config = test_config(Path(tmp))
        t0 = time.perf_counter()
        make_calls(config.calls_dir, args.calls, args.frames)
        print(f"{args.calls} calls with {args.frames} frames each made in {time.perf_counter() - t0:.1f} s")
        async with running_server(config) as srv, aiohttp.ClientSession() as http:
            cold = await timed(http, srv.url, {"limit": "12"})  # reads every meta.json once
            rows = {
                "whole list (baseline)": {},
                "page of 12, index warm": {"limit": "12"},
                "page 10 of 12": {"limit": "12", "offset": "108"},
                "page of 12, one caller": {"limit": "12", "caller": "ann"},
                "page of 12, three days": {"limit": "12", "from": "2025-01-03T00:00:00Z", "to": "2025-01-05T23:59:59Z"},
            }
            results = {}
            for name, params in rows.items():
                samples = [await timed(http, srv.url, params) for _ in range(args.rounds)]
                results[name] = (statistics.median(s[0] for s in samples), samples[0][1], samples[0][2])
    base = results["whole list (baseline)"][0]
    print(f"{'request':28} {'median':>10} {'vs whole':>9} {'bytes':>11} {'calls':>6}")
    print(f"{'page of 12, index cold':28} {cold[0] * 1000:8.1f} ms {cold[0] / base:8.3f}x {cold[1]:11,d} {cold[2]:6d}")
    for name, (t, size, count) in results.items():
        print(f"{name:28} {t * 1000:8.1f} ms {t / base:8.3f}x {size:11,d} {count:6d}")


if __name__ == "__main__":
    asyncio.run(main())
