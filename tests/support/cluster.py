"""Server processes sharing one Redis: start, read their port, kill by PID."""

from __future__ import annotations

import asyncio
import re
import signal
import sys
from pathlib import Path

from tests.support.server import Client
from tests.support.wait import eventually

ROOT = Path(__file__).resolve().parents[2]
SERVER = ROOT / "server.py"
SERVING = re.compile(r"callbot serving on https?://127\.0\.0\.1:(\d+)")
START_TIMEOUT = 30.0


class Node:
    """One ``server.py`` process started by the tests (only these are killed)."""

    def __init__(self, process: asyncio.subprocess.Process, port: int, name: str, log: Path) -> None:
        self.process = process
        self.port = port
        self.name = name
        self.log = log
        self.ws_url = f"ws://127.0.0.1:{port}/ws"

    @classmethod
    async def start(cls, name: str, redis_url: str | None, directory: Path, *,
                    lease: float = 2.0, extra: tuple[str, ...] = ()) -> "Node":
        directory.mkdir(parents=True, exist_ok=True)
        log = directory / f"{name}.log"
        args = [str(SERVER)]
        if redis_url is not None:
            args += ["--redis-url", redis_url, "--redis-lease", str(lease), "--node-id", name]
        args += ["--port", "0", "--ice-address", "127.0.0.1", "--data-dir", str(directory / "data"),
                 "--presence-interval", "0.05", "--log-level", "info", *extra]
        with open(log, "wb") as stderr:
            process = await asyncio.create_subprocess_exec(
                sys.executable, *args, stdout=asyncio.subprocess.PIPE, stderr=stderr,
                cwd=str(ROOT),
            )
        try:
            port = await asyncio.wait_for(cls._read_port(process), START_TIMEOUT)
        except BaseException:
            process.kill()
            await process.wait()
            raise RuntimeError(f"node {name} did not start; log:\n{log.read_text()[-3000:]}")
        return cls(process, port, name, log)

    @staticmethod
    async def _read_port(process: asyncio.subprocess.Process) -> int:
        assert process.stdout is not None
        while True:
            line = await process.stdout.readline()
            if not line:
                raise EOFError("exited before serving")
            match = SERVING.search(line.decode(errors="replace"))
            if match:
                return int(match.group(1))

    async def kill(self) -> None:
        """SIGKILL: no cleanup at all, as in a crash."""
        if self.process.returncode is None:
            self.process.send_signal(signal.SIGKILL)
        await self.process.wait()

    async def stop(self, timeout: float = 10.0) -> None:
        if self.process.returncode is None:
            self.process.terminate()
            try:
                await asyncio.wait_for(self.process.wait(), timeout)
            except asyncio.TimeoutError:
                await self.kill()


async def wait_online(client: Client, wanted: set[str], timeout: float = 10.0) -> list[str]:
    """Ask for presence until ``wanted`` is online (cross-process, so polled)."""
    async def online() -> list[str] | None:
        await client.send({"type": "presence"})
        while True:  # skip deltas: the snapshot is the reply
            reply = await client.recv_type("presence", timeout)
            if "users" in reply:
                break
        return reply["users"] if wanted <= set(reply["users"]) else None
    return await eventually(online, timeout, interval=0.05)


async def wait_left(client: Client, username: str, timeout: float) -> None:
    """The next presence delta naming ``username`` as gone."""
    async def wait() -> None:
        while True:
            m = await client.recv(timeout)
            if m.get("type") == "presence" and username in m.get("left", ()):
                return
    await asyncio.wait_for(wait(), timeout)
