"""A real coturn (Debian's ``turnserver``) in a test's network namespace, with
``use-auth-secret`` (the TURN REST API credentials our ``--turn-secret`` mints)."""

from __future__ import annotations

import asyncio
import shutil
from pathlib import Path

from tests.support.netns import TURN_PUBLIC, Topology

TURNSERVER = shutil.which("turnserver") or "/usr/bin/turnserver"
SECRET = "coturn-secret-for-tests"
REALM = "turn.test.invalid"
PORT = 3478
START_TIMEOUT = 20.0


def turn_url(transport: str, host: str = TURN_PUBLIC) -> str:
    return f"turn:{host}:{PORT}?transport={transport}"


def coturn_argv(directory: Path, address: str = TURN_PUBLIC) -> list[str]:
    """The command line, also shown in the README's "Deploying behind NAT"."""
    return [
        TURNSERVER, "-n",  # no configuration file
        "--no-cli",  # no telnet console
        f"--listening-ip={address}", f"--relay-ip={address}", f"--listening-port={PORT}",
        "--min-port=49152", "--max-port=49252",  # relay ports
        f"--realm={REALM}",
        "--use-auth-secret", f"--static-auth-secret={SECRET}",
        "--no-tls", "--no-dtls", "--fingerprint",
        # Relays to loopback, multicast and "this network" stay refused
        # (coturn's defaults); our peers are on TEST-NET-2.
        "--no-multicast-peers",
        f"--userdb={directory / 'turndb'}", f"--pidfile={directory / 'turnserver.pid'}",
        # -v prints the "listener opened" lines readiness is read from.
        "--log-file=stdout", "--simple-log", "-v",
    ]


class Coturn:
    def __init__(self, process: asyncio.subprocess.Process, log: Path, drain: asyncio.Task[None]) -> None:
        self.process = process
        self.log = log
        self._drain = drain

    @classmethod
    async def start(cls, topo: Topology, directory: Path) -> "Coturn":
        directory.mkdir(parents=True, exist_ok=True)
        log = directory / "coturn.log"
        process = await topo.spawn("turn", *coturn_argv(directory), stdout=asyncio.subprocess.PIPE,
                                   stderr=asyncio.subprocess.STDOUT)
        out = log.open("wb")
        seen: set[str] = set()

        async def ready() -> None:
            assert process.stdout is not None
            while seen != {"udp", "tcp"}:
                line = await process.stdout.readline()
                if not line:
                    raise RuntimeError(f"coturn exited ({await process.wait()}); see {log}")
                out.write(line)
                if b"UDP listener opened" in line:
                    seen.add("udp")
                if b"TCP listener opened" in line:
                    seen.add("tcp")

        try:
            await asyncio.wait_for(ready(), START_TIMEOUT)
        except BaseException:
            out.close()
            raise

        async def drain() -> None:
            assert process.stdout is not None
            try:
                while line := await process.stdout.readline():
                    out.write(line)
                    out.flush()
            finally:
                out.close()

        return cls(process, log, asyncio.get_running_loop().create_task(drain()))

    async def stop(self) -> None:
        if self.process.returncode is None:
            self.process.terminate()
            try:
                await asyncio.wait_for(self.process.wait(), 10)
            except asyncio.TimeoutError:
                self.process.kill()
                await self.process.wait()
        await asyncio.wait_for(self._drain, 10)
