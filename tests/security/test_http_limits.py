"""Issue 14 #3: idle, silent and slow HTTP connections, with raw sockets
against a real server process; the bound is the server's descriptors."""

from __future__ import annotations

import asyncio
import time

import aiohttp
import pytest

from tests.support.process import ServerProcess
from tests.support.resources import open_fds
from tests.support.wait import eventually


async def connect_from(port: int, source: str) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
    """A TCP connection to the server from ``source`` (any 127.x.y.z is loopback on Linux)."""
    return await asyncio.open_connection("127.0.0.1", port, local_addr=(source, 0))


async def closed_by_server(reader: asyncio.StreamReader, timeout: float) -> bytes:
    """Everything the server sent until it closed the connection."""
    data = b""
    while True:
        block = await asyncio.wait_for(reader.read(4096), timeout)
        if not block:
            return data
        data += block


def port_of(proc: ServerProcess) -> int:
    return int(proc.url.rsplit(":", 1)[1])


async def healthy(url: str) -> bool:
    async with aiohttp.ClientSession() as http:
        async with http.get(url + "/healthz", timeout=aiohttp.ClientTimeout(total=5)) as r:
            return r.status == 200


@pytest.mark.slow
async def test_silent_trickling_and_idle_connections_are_closed(tmp_path):
    # The default --idle-timeout (15 s), so that the old code is tested as it ran.
    proc = await ServerProcess.start(tmp_path, "--max-connections-per-address", "100")
    try:
        port = port_of(proc)
        base = open_fds(proc.proc.pid)
        silent = [await connect_from(port, "127.0.0.1") for _ in range(20)]
        trickling = [await connect_from(port, "127.0.0.1") for _ in range(20)]
        for _, w in trickling:
            w.write(b"GET / HTTP/1.1\r\n")
        # A keep-alive connection that got its answer and then says nothing.
        idle_r, idle_w = await connect_from(port, "127.0.0.1")
        idle_w.write(b"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")
        assert (await idle_r.readline()).startswith(b"HTTP/1.1 200")

        stop = asyncio.Event()

        async def trickle(writer: asyncio.StreamWriter) -> None:
            n = 0
            while not stop.is_set() and not writer.is_closing():
                writer.write(f"X-Slow-{n}: a\r\n".encode())
                n += 1
                # The attack is the passing of time: a header line every 0.3 s.
                await asyncio.sleep(0.3)

        tricklers = [asyncio.create_task(trickle(w)) for _, w in trickling]
        started = time.monotonic()
        assert await healthy(proc.url)  # real requests are served meanwhile
        await asyncio.gather(*(closed_by_server(r, 30) for r, _ in silent + trickling + [(idle_r, idle_w)]))
        # Old code (aiohttp's keep-alive of 3630 s): still open after 30 s.
        assert time.monotonic() - started < 25
        stop.set()
        await asyncio.gather(*tricklers, return_exceptions=True)
        for _, w in silent + trickling + [(idle_r, idle_w)]:
            w.close()
        await eventually(lambda: open_fds(proc.proc.pid) <= base + 2, 10)
    finally:
        await proc.stop()


async def test_one_address_cannot_take_every_descriptor(tmp_path):
    """300 silent sockets from one address: the server holds
    --max-connections-per-address (32) of them and refuses the rest at once;
    another address is served."""
    proc = await ServerProcess.start(tmp_path)
    conns = []
    try:
        port = port_of(proc)
        base = open_fds(proc.proc.pid)
        conns = [await connect_from(port, "127.0.0.1") for _ in range(300)]
        refused = await asyncio.gather(*(closed_by_server(r, 10) for r, _ in conns[32:]))
        assert all(answer.startswith(b"HTTP/1.1 429") for answer in refused)
        held = open_fds(proc.proc.pid) - base
        assert held <= 40, f"the server holds {held} more descriptors"  # old code: 300
        r, w = await connect_from(port, "127.0.0.2")
        w.write(b"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n")
        assert (await closed_by_server(r, 5)).startswith(b"HTTP/1.1 200")
        w.close()
    finally:
        for _, w in conns:
            w.close()
        await proc.stop()


async def test_connections_in_total_are_bounded(tmp_path):
    proc = await ServerProcess.start(tmp_path, "--max-connections", "40")
    conns = []
    try:
        port = port_of(proc)
        base = open_fds(proc.proc.pid)
        for i in range(2, 8):  # 6 addresses x 10 connections, under 32 each
            conns += [await connect_from(port, f"127.0.0.{i}") for _ in range(10)]
        refused = await asyncio.gather(*(closed_by_server(r, 10) for r, _ in conns[40:]))
        assert all(answer.startswith(b"HTTP/1.1 503") for answer in refused)
        assert open_fds(proc.proc.pid) - base <= 44
    finally:
        for _, w in conns:
            w.close()
        await proc.stop()


async def test_the_idle_timeout_cuts_waiting_not_working_connections(tmp_path):
    """--idle-timeout closes connections that have not sent a request, never
    a WebSocket or a response in progress that outlives it."""
    from webapp.config import SecurityConfig
    from tests.support.server import Client, running_server, test_config

    config = test_config(tmp_path, security=SecurityConfig(idle_timeout=1.0))
    async with running_server(config) as srv:
        alice = await Client.connect(srv.ws_url)
        await alice.login("alice")
        silent_r, silent_w = await connect_from(srv.port, "127.0.0.1")
        started = time.monotonic()
        assert await closed_by_server(silent_r, 10) == b""
        assert time.monotonic() - started < 5
        # The passing of time is the thing under test: the WebSocket outlives
        # the idle timeout twice over and still works.
        await asyncio.sleep(2.0)
        await alice.send({"type": "presence"})
        reply = await alice.recv_type("presence")
        while "users" not in reply:  # a coalesced delta may come first
            reply = await alice.recv_type("presence")
        assert "alice" in reply["users"]
        silent_w.close()
        await alice.close()
