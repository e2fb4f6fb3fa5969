"""Run ``server.py`` as a real process for fault tests (signals, crashes)."""

from __future__ import annotations

import asyncio
import os
import re
import signal
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


class ServerProcess:
    def __init__(self, proc: asyncio.subprocess.Process, url: str) -> None:
        self.proc = proc
        self.url = url
        self.ws_url = url.replace("http", "ws", 1) + "/ws"

    @classmethod
    async def start(cls, data_dir: Path, *args: str, timeout: float = 30, cwd: Path = ROOT) -> "ServerProcess":
        proc = await asyncio.create_subprocess_exec(
            sys.executable, str(ROOT / "server.py"),
            "--port", "0", "--data-dir", str(data_dir), "--ice-address", "127.0.0.1",
            "--log-level", os.environ.get("CALLBOT_TEST_SERVER_LOG", "warning"), *args,
            stdout=asyncio.subprocess.PIPE, cwd=cwd,
            env={**os.environ, "PYTHONUNBUFFERED": "1"},
        )
        assert proc.stdout is not None
        line = (await asyncio.wait_for(proc.stdout.readline(), timeout)).decode()
        match = re.search(r"serving on (https?://\S+)", line)
        if not match:
            if proc.returncode is None:
                proc.kill()
            returncode = await proc.wait()
            raise RuntimeError(f"server did not start (exit {returncode}): {line!r}; its stderr is above")
        return cls(proc, match.group(1))

    def send_signal(self, sig: signal.Signals) -> None:
        self.proc.send_signal(sig)

    async def wait(self, timeout: float = 15) -> int:
        return await asyncio.wait_for(self.proc.wait(), timeout)

    async def stop(self) -> None:
        if self.proc.returncode is None:
            self.proc.kill()
            await self.proc.wait()
