"""Signaling bounds that a hostile or slow client runs into: the per-client
backlog in bytes, and a WebSocket that outlives its token."""

from __future__ import annotations

import asyncio
import base64
import json
import os
import socket
import time

from webapp.auth import mint_token
from webapp.config import SecurityConfig
from tests.support.server import Client, running_server, test_config


async def raw_websocket(port: int, path: str = "/ws") -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
    """A WebSocket client with a tiny receive buffer that never reads after
    the handshake: a slow reader the kernel cannot hide (RFC 6455 section 4.1)."""
    sock = socket.socket()
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)  # before connect: a small window
    sock.setblocking(False)
    await asyncio.get_running_loop().sock_connect(sock, ("127.0.0.1", port))
    reader, writer = await asyncio.open_connection(sock=sock)
    key = base64.b64encode(os.urandom(16)).decode()
    writer.write((f"GET {path} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nUpgrade: websocket\r\n"
                  f"Connection: Upgrade\r\nSec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\n\r\n").encode())
    head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 5)
    assert head.startswith(b"HTTP/1.1 101"), head
    return reader, writer


def masked_text_frame(text: str) -> bytes:
    data = text.encode()
    mask = os.urandom(4)
    assert len(data) < 126
    return bytes((0x81, 0x80 | len(data))) + mask + bytes(b ^ mask[i % 4] for i, b in enumerate(data))


async def test_the_backlog_is_bounded_in_bytes_not_only_in_messages(tmp_path):
    """Issue 14 #10: big offers to a reader that does not read. Before, 256
    messages of ~59 KB (15 MB) could pile up for one client; now the bytes
    held for it (ours and the transport's) stay under --backlog-bytes and the
    slow reader is dropped with 1013 well before the message count."""
    sdp = "v=0\r\n" + "a=x" * 19600  # ~59 KB, under the 64 KiB frame limit
    config = test_config(tmp_path, backlog_bytes=512 * 1024, resume_grace=0,
                         security=SecurityConfig(rate_limit=10_000, rate_burst=10_000))
    async with running_server(config) as srv:
        reader, writer = await raw_websocket(srv.port)
        writer.write(masked_text_frame(json.dumps({"type": "login", "username": "victim"})))
        await writer.drain()
        sender = await Client.connect(srv.ws_url, max_msg_size=0)
        await sender.login("mallory")
        hub_conn = None
        try:
            for i in range(100):  # 100 x 59 KB = 5.9 MB, well under 256 messages
                await sender.send({"type": "offer", "otherUsername": "victim", "offer": {"type": "offer", "sdp": sdp}})
                if i == 0:
                    hub_conn = await _connection_of(srv, "victim")
            # Dropped: the name is free again, and the sender is told it is offline.
            err = await sender.recv_type("error", timeout=10, code="user-offline")
            assert "victim" in err["message"]
            assert hub_conn is not None and hub_conn.session.state.value == "closed"
        finally:
            writer.close()
            await sender.close()


async def _connection_of(srv, username: str):
    from tests.support.wait import eventually
    from webapp.keys import HUB

    return await eventually(lambda: srv.app[HUB]._owners.get(username), timeout=5)


async def test_a_websocket_is_closed_when_its_token_expires(tmp_path):
    """Issue 14 #11: the token's exp passes while the socket is open: the
    client is told (token-expired), then the socket is closed with 1008."""
    secret = "s3cret-for-tests-0123456789-0123456789"
    config = test_config(tmp_path, security=SecurityConfig(auth_secret=secret))
    async with running_server(config) as srv:
        token = mint_token(secret, "alice", ttl=2)
        alice = await Client.connect(f"{srv.ws_url}?token={token}")
        await alice.login("alice")
        expires = json.loads(base64.urlsafe_b64decode(token.split(".")[1] + "=="))["exp"]
        err = await alice.recv_type("error", timeout=10, code="token-expired")
        assert time.time() >= expires - 0.1
        assert err["message"]
        assert await alice.close_code(timeout=5) == 1008
        await alice.session.close()
        # A fresh token logs in again, and may resume the held slot.
        fresh = mint_token(secret, "alice", ttl=60)
        again = await Client.connect(f"{srv.ws_url}?token={fresh}")
        r = await again.request({"type": "login", "username": "alice"}, "login")
        assert r["success"] is False and r["error"] == "username-taken"  # held for a resume
        await again.close()
