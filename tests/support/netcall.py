"""The server and aiortc callers as processes inside a Topology's namespaces.

``CALLBOT_TEST_SERVER_ROOT=/path/to/checkout`` runs that checkout's
``server.py`` instead of this one's (with this venv): how a regression test
is shown to fail on an older commit (the README's "Tests" section).
"""

from __future__ import annotations

import asyncio
import json
import os
import re
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from tests.support.netns import Topology

ROOT = Path(__file__).resolve().parents[2]
SERVER_ROOT = Path(os.environ.get("CALLBOT_TEST_SERVER_ROOT") or ROOT)
START_TIMEOUT = 60.0


@dataclass
class NetServer:
    process: asyncio.subprocess.Process
    url: str
    data_dir: Path
    log: Path

    def calls(self) -> list[dict[str, Any]]:
        """Every call's meta.json, oldest first."""
        out = []
        for path in sorted((self.data_dir / "calls").glob("*/meta.json")):
            try:
                out.append(json.loads(path.read_text()))
            except (OSError, ValueError):
                continue  # being replaced right now: the next look sees it
        return out

    def finished_calls(self) -> list[dict[str, Any]]:
        return [m for m in self.calls() if m.get("status") == "complete"]

    def log_text(self) -> str:
        try:
            return self.log.read_text(errors="replace")[-6000:]
        except OSError:
            return ""


async def start_server(topo: Topology, directory: Path, *flags: str) -> NetServer:
    """``server.py`` in the bot's namespace on 0.0.0.0:``topo.http_port``,
    reachable from outside as ``topo.server_url`` (the router forwards it)."""
    directory.mkdir(parents=True, exist_ok=True)
    data_dir = directory / "data"
    log = directory / "server.log"
    with log.open("wb") as stderr:
        process = await topo.spawn(
            "bot", sys.executable, str(SERVER_ROOT / "server.py"),
            "--host", "0.0.0.0", "--port", str(topo.http_port), "--data-dir", str(data_dir),
            "--log-level", "info", *flags,
            stdout=asyncio.subprocess.PIPE, stderr=stderr, cwd=str(SERVER_ROOT),
            env={**os.environ, "PYTHONUNBUFFERED": "1"},
        )
    assert process.stdout is not None
    try:
        line = (await asyncio.wait_for(process.stdout.readline(), START_TIMEOUT)).decode()
    except asyncio.TimeoutError:
        line = ""
    if not re.search(r"serving on https?://", line):
        raise RuntimeError(f"server did not start: {line!r}\n{log.read_text(errors='replace')[-3000:]}")
    return NetServer(process, topo.server_url, data_dir, log)


@dataclass
class CallerRun:
    events: list[dict[str, Any]] = field(default_factory=list)
    stderr: str = ""

    def event(self, name: str) -> dict[str, Any] | None:
        return next((e for e in self.events if e["event"] == name), None)

    @property
    def result(self) -> dict[str, Any]:
        return self.event("result") or {"outcome": "no-result"}

    @property
    def connected(self) -> bool:
        return self.result.get("outcome") == "connected"

    def describe(self) -> str:
        return json.dumps(self.events, indent=1)[-4000:] + "\n" + self.stderr[-3000:]


async def run_caller(topo: Topology, *args: str, role: str = "caller", username: str = "ann",
                     timeout: float = 60.0) -> CallerRun:
    """``tests/support/net_caller.py`` in ``role``'s namespace, to its end."""
    process = await topo.spawn(
        role, sys.executable, "-m", "tests.support.net_caller", "--url", topo.server_url,
        "--username", username, *args,
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE, cwd=str(ROOT),
        env={**os.environ, "PYTHONPATH": str(ROOT), "PYTHONUNBUFFERED": "1"},
    )
    run = CallerRun()
    try:
        out, err = await asyncio.wait_for(process.communicate(), timeout)
    except asyncio.TimeoutError:
        process.kill()
        out, err = await process.communicate()
        run.stderr = "caller timed out\n"
    for line in out.decode(errors="replace").splitlines():
        try:
            run.events.append(json.loads(line))
        except ValueError:
            run.stderr += line + "\n"
    run.stderr += err.decode(errors="replace")
    return run
