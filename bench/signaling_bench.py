#!/usr/bin/env python3
"""Signaling benchmark: our server against the Node.js tutorial's ``ws`` relay.

    .venv/bin/python bench/signaling_bench.py [--rounds 3] [--pairs 100] [--seconds 5]

Both servers are real processes on loopback, each on one event loop (one
core), driven by one load generator (``bench/node_relay/loadgen.js``, Node
with ``ws``, so the generator is the same for both and not the bottleneck of
either). Runs are interleaved (node, ours, node, ours, ...), each on a fresh
server process, and the table gives the median of the rounds and the ratio
ours / node measured in this one sitting.

Scenarios:

* **relay** (closed loop): ``--pairs`` pairs play offer/answer ping-pong with
  ``--window`` offers outstanding per pair and ``--sdp``-byte SDPs; server
  CPU-seconds (utime + stime from ``/proc/<pid>/stat``) per 10,000 relayed
  messages over the measured window, and messages/s.
* **latency** at a fixed rate (``--rate`` messages/s in all): p50 and p99 of
  send-to-receive.
* **logins**: ``--clients`` clients connect and log in (200 at a time):
  logins/s; then, all idle and logged in, the server's RSS growth per
  connection.

The generator offers permessage-deflate, as browsers do; the Node relay
(``ws`` server default) declines it, ours declines it unless
``--ws-compression`` (the row "ours, --ws-compression" measures its cost).
Rate limits are lifted by flags for ours (the relay has none).

Needs ``node`` and ``npm``; ``ws`` is installed from npm into
``bench/node_relay/node_modules`` (gitignored) on first use.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
NODE_DIR = ROOT / "bench" / "node_relay"
CLOCK_TICKS = os.sysconf("SC_CLK_TCK")

OURS_FLAGS = (
    "--log-level", "warning", "--rate-limit", "1000000000", "--rate-burst", "1000000000",
    "--max-connections-per-address", "1000000", "--resume-grace", "0",
)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def cpu_seconds(pid: int) -> float:
    """utime + stime of a process, from /proc/<pid>/stat (fields 14 and 15)."""
    text = Path(f"/proc/{pid}/stat").read_text()
    fields = text[text.rindex(")") + 2:].split()
    return (int(fields[11]) + int(fields[12])) / CLOCK_TICKS


def rss_bytes(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) * 1024
    raise RuntimeError("no VmRSS")


@dataclass
class Server:
    name: str
    argv: list[str]
    ready: str  # a line the server prints once it listens
    path: str = "/"  # the tutorial's clients open the root path

    async def start(self, port: int, workdir: Path) -> asyncio.subprocess.Process:
        argv = [a.replace("{port}", str(port)).replace("{data}", str(workdir / "data")) for a in self.argv]
        proc = await asyncio.create_subprocess_exec(
            *argv, cwd=str(ROOT), stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.DEVNULL,
        )
        assert proc.stdout is not None
        while True:
            line = await asyncio.wait_for(proc.stdout.readline(), 30)
            if not line:
                raise RuntimeError(f"{self.name} exited before listening")
            if self.ready in line.decode(errors="replace"):
                break
        # Keep reading stdout so the server never blocks on a full pipe.
        asyncio.get_running_loop().create_task(_drain(proc.stdout))
        return proc


async def _drain(stream: asyncio.StreamReader) -> None:
    while await stream.readline():
        pass


def servers(python: str) -> list[Server]:
    ours = [python, str(ROOT / "server.py"), "--port", "{port}", "--data-dir", "{data}", *OURS_FLAGS]
    return [
        Server("node ws relay (tutorial)", ["node", str(NODE_DIR / "relay.js"), "{port}"], "relay listening"),
        Server("ours", ours, "callbot serving"),
        Server("ours, --ws-compression", [*ours, "--ws-compression"], "callbot serving"),
        Server("ours, --event-loop asyncio", [*ours, "--event-loop", "asyncio"], "callbot serving"),
    ]


@dataclass
class Figures:
    cpu_per_10k: list[float] = field(default_factory=list)
    msgs_per_s: list[float] = field(default_factory=list)
    p50_ms: list[float] = field(default_factory=list)
    p99_ms: list[float] = field(default_factory=list)
    logins_per_s: list[float] = field(default_factory=list)
    bytes_per_idle: list[float] = field(default_factory=list)


async def run_generator(args: list[str], pid: int, *, on_idle=None) -> dict:
    """Run loadgen.js; read the server's CPU at its start and end lines."""
    gen = await asyncio.create_subprocess_exec(
        "node", str(NODE_DIR / "loadgen.js"), *args, cwd=str(ROOT),
        stdin=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.PIPE,
    )
    assert gen.stdout is not None and gen.stdin is not None
    result: dict = {}
    cpu0 = 0.0
    try:
        while True:
            line = await asyncio.wait_for(gen.stdout.readline(), 300)
            if not line:
                break
            event = json.loads(line)
            if event["event"] == "start":
                cpu0 = cpu_seconds(pid)
            elif event["event"] == "end":
                result = {**event, "cpu": cpu_seconds(pid) - cpu0}
            elif event["event"] == "idle":
                if on_idle is not None:
                    result.update(await on_idle())
                gen.stdin.write(b"done\n")
                await gen.stdin.drain()
        if await gen.wait() != 0:
            raise RuntimeError(f"load generator failed ({gen.returncode}) with {args}")
    finally:
        if gen.returncode is None:
            gen.kill()
            await gen.wait()
    return result


async def one_run(server: Server, a: argparse.Namespace, workdir: Path, figures: Figures) -> None:
    base = ["--sdp", str(a.sdp), "--deflate"]
    # relay + latency on one server process, logins on a fresh one.
    port = free_port()
    proc = await server.start(port, workdir)
    url = f"ws://127.0.0.1:{port}{server.path}"
    try:
        r = await run_generator(["relay", url, "--pairs", str(a.pairs), "--seconds", str(a.seconds),
                                 "--window", str(a.window), "--prefix", "r", *base], proc.pid)
        figures.cpu_per_10k.append(r["cpu"] / r["messages"] * 10_000)
        figures.msgs_per_s.append(r["messages"] / r["seconds"])
        r = await run_generator(["rate", url, "--pairs", str(a.pairs), "--seconds", str(a.seconds),
                                 "--rate", str(a.rate), "--prefix", "f", *base], proc.pid)
        figures.p50_ms.append(r["p50_ms"])
        figures.p99_ms.append(r["p99_ms"])
    finally:
        proc.terminate()
        await proc.wait()

    port = free_port()
    proc = await server.start(port, workdir)
    url = f"ws://127.0.0.1:{port}{server.path}"
    try:
        await asyncio.sleep(1.0)  # let start-up work settle before the baseline RSS
        rss0 = rss_bytes(proc.pid)

        async def at_idle() -> dict:
            await asyncio.sleep(1.0)  # presence deltas go out; then the connections are idle
            return {"rss": rss_bytes(proc.pid)}

        r = await run_generator(["logins", url, "--clients", str(a.clients), "--concurrency", "200",
                                 "--prefix", "l", *base], proc.pid, on_idle=at_idle)
        figures.logins_per_s.append(r["logins"] / r["seconds"])
        figures.bytes_per_idle.append((r["rss"] - rss0) / r["logins"])
    finally:
        proc.terminate()
        await proc.wait()


def ensure_ws() -> None:
    if not (NODE_DIR / "node_modules" / "ws").is_dir():
        subprocess.run(["npm", "install", "--no-audit", "--no-fund", "--silent"], cwd=NODE_DIR, check=True)


async def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--rounds", type=int, default=3, help="interleaved rounds (median reported)")
    p.add_argument("--pairs", type=int, default=100, help="client pairs (2 clients each)")
    p.add_argument("--window", type=int, default=4, help="offers outstanding per pair (closed loop)")
    p.add_argument("--seconds", type=float, default=5.0, help="measured window per scenario")
    p.add_argument("--sdp", type=int, default=1000, help="bytes of SDP per offer/answer")
    p.add_argument("--rate", type=int, default=5000, help="messages/s in all for the latency run")
    p.add_argument("--clients", type=int, default=5000, help="clients in the logins run")
    p.add_argument("--only", action="append", default=[], help="run only the servers of this name (repeatable; default all)")
    a = p.parse_args()
    if shutil.which("node") is None:
        print("node not found: apt-get install nodejs npm", file=sys.stderr)
        return 2
    ensure_ws()
    chosen = [s for s in servers(sys.executable) if not a.only or s.name in a.only]
    results = {s.name: Figures() for s in chosen}
    print(f"signaling bench: {a.pairs} pairs, window {a.window}, {a.sdp}-byte SDPs, {a.seconds}s windows, "
          f"{a.rate} msg/s for latency, {a.clients} logins; {a.rounds} interleaved rounds", flush=True)
    with tempfile.TemporaryDirectory(prefix="signaling-bench-") as tmp:
        for round_ in range(a.rounds):
            for server in chosen:
                f = results[server.name]
                await one_run(server, a, Path(tmp), f)
                print(f"round {round_ + 1} {server.name:<28} {f.cpu_per_10k[-1]:.3f} cpu-s/10k  "
                      f"{f.msgs_per_s[-1]:>8.0f} msg/s  p99 {f.p99_ms[-1]:6.2f} ms  "
                      f"{f.logins_per_s[-1]:>7.0f} logins/s  {f.bytes_per_idle[-1] / 1024:6.1f} KiB/idle",
                      flush=True)
    med = {name: {k: statistics.median(v) for k, v in vars(f).items()} for name, f in results.items()}
    first = results[chosen[0].name]
    print()
    print(f"load average at the end: {os.getloadavg()[0]:.1f} (the machine is shared: compare ratios)")
    print("| server | CPU-s / 10k msgs (median) | CPU ratio to the first row, per round (median) | msg/s | "
          "p50 / p99 at rate | logins/s | RSS per idle conn |")
    print("|---|---|---|---|---|---|---|")
    for name, m in med.items():
        # Each round's ratio pairs runs made one after the other, so a load
        # change between rounds cancels out; the median of those is reported.
        ratios = [o / b for o, b in zip(results[name].cpu_per_10k, first.cpu_per_10k)]
        shown = ", ".join(f"{r:.2f}" for r in ratios)
        print(f"| {name} | {m['cpu_per_10k']:.3f} | {statistics.median(ratios):.2f}x ({shown}) | {m['msgs_per_s']:,.0f} | "
              f"{m['p50_ms']:.2f} / {m['p99_ms']:.2f} ms | {m['logins_per_s']:,.0f} | "
              f"{m['bytes_per_idle'] / 1024:.1f} KiB |")
    return 0


if __name__ == "__main__":
    sys.exit(asyncio.run(main()))
