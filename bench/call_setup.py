#!/usr/bin/env python3
"""Call set-up time: offer sent to connected, for calls to the bot over
loopback through the real signaling. Prints median and p95.

    .venv/bin/python bench/call_setup.py --calls 50

For scale, the same run times a bare aiortc-to-aiortc connection in one
process (no signaling, no bot) as the baseline the bot's figure is compared to.
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from aiortc import RTCConfiguration, RTCPeerConnection  # noqa: E402
from aiortc.mediastreams import AudioStreamTrack  # noqa: E402

from webapp.config import SecurityConfig  # noqa: E402
from peer.compat import restrict_host_addresses  # noqa: E402
from tests.support.server import Client, running_server, test_config  # noqa: E402
from tests.support.caller import Caller, PatternVideoTrack  # noqa: E402


def pct(values: list[float], p: float) -> float:
    values = sorted(values)
    return values[min(len(values) - 1, int(round(p / 100 * (len(values) - 1))))]


async def bare_connection() -> float:
    a = RTCPeerConnection(RTCConfiguration(iceServers=[]))
    b = RTCPeerConnection(RTCConfiguration(iceServers=[]))
    a.addTrack(PatternVideoTrack()); a.addTrack(AudioStreamTrack())
    done = asyncio.Event()
    a.on("connectionstatechange", lambda: a.connectionState == "connected" and done.set())
    await a.setLocalDescription(await a.createOffer())
    start = time.perf_counter()
    await b.setRemoteDescription(a.localDescription)
    await b.setLocalDescription(await b.createAnswer())
    await a.setRemoteDescription(b.localDescription)
    await asyncio.wait_for(done.wait(), 10)
    elapsed = time.perf_counter() - start
    await a.close(); await b.close()
    return elapsed


async def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--calls", type=int, default=50)
    args = parser.parse_args()
    restrict_host_addresses(("127.0.0.1",))
    baseline = [await bare_connection() for _ in range(args.calls)]
    with tempfile.TemporaryDirectory() as tmp:
        config = test_config(Path(tmp), security=SecurityConfig(rate_limit=1000, rate_burst=1000))
        async with running_server(config) as srv:
            client = await Client.connect(srv.ws_url)
            await client.login("bench")
            setup = []
            for _ in range(args.calls):
                caller = Caller(client)
                setup.append(await caller.call())
                await caller.hangup()
            await client.close()
    ms = lambda v: f"{v * 1000:6.1f} ms"  # noqa: E731
    print(f"call setup over loopback, {args.calls} calls (offer sent -> connected)")
    print(f"{'':28} {'median':>9} {'p95':>9}")
    print(f"{'bare aiortc pair (baseline)':28} {ms(statistics.median(baseline)):>9} {ms(pct(baseline, 95)):>9}")
    print(f"{'call to the bot':28} {ms(statistics.median(setup)):>9} {ms(pct(setup, 95)):>9}")
    print(f"ratio bot/baseline (median): {statistics.median(setup) / statistics.median(baseline):.2f}")


if __name__ == "__main__":
    asyncio.run(main())
