#!/usr/bin/env python3
"""Call set-up time through real NATs: direct (the bot behind a 1:1 NAT with
--announce-address) against through a TURN relay (no direct path), measured
in the same run, calls alternating between the two.

    sudo .venv/bin/python bench/nat_setup.py --calls 20 [--tcp]

Needs root (network namespaces, as tests/net) and Debian's coturn. Both
topologies have coturn and give the bot and the caller TURN credentials, so
both gather the same way; only the path differs:

- direct: the bot's router forwards the --rtc-ports range, the bot
  announces the router's address; the caller is behind its own NAT;
- relay: the bot's router forwards no UDP, the caller's NAT nothing: the
  only path is through coturn;
- with --tcp, a third: as relay, but the bot's UDP is dropped by its router
  and the bot has a TCP TURN URL next to its UDP one.

Set-up time is the caller's: offer sent to ``connectionState`` connected,
through the real signaling (the caller is an aiortc process in its
namespace: tests/support/net_caller.py). Prints median and p95 per path and
the ratio to direct.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import statistics
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from tests.support.coturn import SECRET, Coturn, turn_url  # noqa: E402
from tests.support.netcall import run_caller, start_server  # noqa: E402
from tests.support.netns import BOT_PUBLIC, RTC_PORTS, Topology  # noqa: E402

PORTS = f"{RTC_PORTS[0]}-{RTC_PORTS[1]}"
COMMON = ("--turn-secret", SECRET, "--allow-open-turn", "--turn-url", turn_url("udp"), "--rtc-ports", PORTS,
          "--connect-timeout", "20", "--no-record", "--frame-interval", "0", "--log-level", "warning")
PATHS = {
    "direct": (dict(bot_nat="forward"), ("--announce-address", BOT_PUBLIC), False),
    "relay (UDP)": (dict(bot_nat="masquerade"), (), False),
    "relay (TCP, bot's UDP blocked)": (dict(bot_nat="masquerade"),
                                       ("--bot-turn-url", turn_url("udp"), "--bot-turn-url", turn_url("tcp")), True),
}


def p95(values: list[float]) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(0.95 * (len(ordered) - 1)))]


async def main(args: argparse.Namespace) -> int:
    names = list(PATHS)[: 3 if args.tcp else 2]
    times: dict[str, list[float]] = {n: [] for n in names}
    pairs: dict[str, set[str]] = {n: set() for n in names}
    failures: dict[str, int] = {n: 0 for n in names}
    async with contextlib.AsyncExitStack() as stack:
        work = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="nat-setup-")))
        setups = {}
        for i, name in enumerate(names):
            topo_kwargs, flags, block_udp = PATHS[name]
            topo = await stack.enter_async_context(Topology(caller_nat=True, turn=True, **topo_kwargs))
            if block_udp:
                topo.block_udp_from_bot()
            coturn = await Coturn.start(topo, work / f"coturn-{i}")
            stack.push_async_callback(coturn.stop)
            await start_server(topo, work / f"server-{i}", *COMMON, *flags)
            setups[name] = topo
        for _ in range(args.warmup):
            for name in names:
                await run_caller(setups[name], "--timeout", "20")
        for n in range(args.calls):
            for name in names:
                run = await run_caller(setups[name], "--timeout", "20", username=f"u{n}")
                connected = run.event("connected")
                if connected is None:
                    failures[name] += 1
                    continue
                times[name].append(connected["seconds"] * 1000)
                pair = connected["pair"] or {}
                pairs[name].add(f"{pair.get('local')} -> {pair.get('remote')}")
            print(f"{n + 1}/{args.calls}", file=sys.stderr, flush=True)
    base = statistics.median(times[names[0]]) if times[names[0]] else float("nan")
    print(f"calls per path: {args.calls} (+{args.warmup} warm-up), alternating")
    print("| path | median | p95 | vs direct | caller's pair | failed |")
    print("|---|---|---|---|---|---|")
    for name in names:
        if not times[name]:
            print(f"| {name} | - | - | - | - | {failures[name]} |")
            continue
        median = statistics.median(times[name])
        print(f"| {name} | {median:.0f} ms | {p95(times[name]):.0f} ms | {median / base:.2f}x "
              f"| {', '.join(sorted(pairs[name]))} | {failures[name]} |")
    return 0


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--calls", type=int, default=20)
    parser.add_argument("--warmup", type=int, default=1)
    parser.add_argument("--tcp", action="store_true", help="also the TCP relay with the bot's UDP blocked")
    sys.exit(asyncio.run(main(parser.parse_args())))
