"""The signaling server with real WebSocket clients against a real server."""

from __future__ import annotations

import asyncio
import json

import aiohttp

from tests.support.server import Client, running_server, test_config

SDP = "v=0\r\no=- 1 1 IN IP4 127.0.0.1\r\ns=-\r\nt=0 0\r\n"


async def test_healthz_and_index(server):
    async with aiohttp.ClientSession() as http:
        async with http.get(server.url + "/healthz") as r:
            assert r.status == 200 and (await r.json())["status"] == "ok"
        async with http.get(server.url + "/") as r:
            assert r.status == 200 and "text/html" in r.headers["Content-Type"]


async def test_login_lists_bot_first_and_refuses_taken_names(connect):
    alice = await connect()
    reply = await alice.login("alice")
    assert reply["users"][0] == "bot" and "alice" in reply["users"]
    bob = await connect()
    for name in ("alice", "bot"):
        r = await bob.request({"type": "login", "username": name}, "login")
        assert r == {"type": "login", "success": False, "error": "username-taken", "message": r["message"]}
    r = await bob.request({"type": "login", "username": "no spaces"}, "login")
    assert r["error"] == "invalid-username"
    await bob.login("bob")
    r = await bob.request({"type": "login", "username": "bob2"}, "login")
    assert r["error"] == "already-logged-in"


async def test_offer_answer_candidates_close_are_relayed(connect):
    alice = await connect("alice")
    bob = await connect("bob")
    await alice.send({"type": "offer", "otherUsername": "bob", "offer": {"type": "offer", "sdp": SDP}})
    assert await bob.recv_type("offer") == {"type": "offer", "offer": {"type": "offer", "sdp": SDP}, "username": "alice"}
    await bob.send({"type": "answer", "otherUsername": "alice", "answer": {"type": "answer", "sdp": SDP}})
    assert await alice.recv_type("answer") == {"type": "answer", "answer": {"type": "answer", "sdp": SDP}, "username": "bob"}
    cand = {"candidate": "candidate:1 1 udp 2122260223 127.0.0.1 50000 typ host", "sdpMid": "0", "sdpMLineIndex": 0}
    await alice.send({"type": "candidate", "otherUsername": "bob", "candidate": cand})
    assert (await bob.recv_type("candidate"))["candidate"] == cand
    await alice.send({"type": "candidate", "otherUsername": "bob", "candidate": None})
    assert (await bob.recv_type("candidate"))["candidate"] is None
    await bob.send({"type": "close", "otherUsername": "alice"})
    assert await alice.recv_type("close") == {"type": "close", "username": "bob"}


async def test_presence_changes_reach_logged_in_clients(connect):
    alice = await connect("alice")
    bob = await connect("bob")
    delta = await alice.recv_type("presence")
    assert "bob" in delta["joined"]
    snapshot = await alice.request({"type": "presence"}, "presence")
    while "users" not in snapshot:  # a delta may arrive first
        snapshot = await alice.recv_type("presence")
    assert snapshot["users"][0] == "bot" and {"alice", "bob"} <= set(snapshot["users"])
    await bob.close()
    delta = await alice.recv_type("presence")
    while "bob" not in delta.get("left", []):
        delta = await alice.recv_type("presence")


async def test_disconnect_sends_close_to_call_partner(connect):
    alice = await connect("alice")
    bob = await connect("bob")
    await alice.send({"type": "offer", "otherUsername": "bob", "offer": {"type": "offer", "sdp": SDP}})
    await bob.recv_type("offer")
    await alice.close()
    assert await bob.recv_type("close") == {"type": "close", "username": "alice"}


BAD_FRAMES = [
    ("{oops", "bad-json"),
    ("[]", "not-an-object"),
    ("42", "not-an-object"),
    ('{"type":"teleport"}', "unknown-type"),
    ('{"no":"type"}', "unknown-type"),
    ('{"type":"offer","otherUsername":"bob"}', "invalid-field"),
    ('{"type":"offer","otherUsername":"bob","offer":{"type":"offer","sdp":5}}', "invalid-field"),
    ('{"type":"candidate","otherUsername":"bob","candidate":"x"}', "invalid-field"),
    ('{"type":"close","otherUsername":"ghost"}', "user-offline"),
    ('{"type":"close","otherUsername":"alice"}', "self-message"),
]


async def test_each_bad_input_gets_an_error_and_the_connection_keeps_working(connect):
    fresh = await connect()
    r = await fresh.request({"type": "presence"}, "error")
    assert r["code"] == "not-logged-in" and r["message"]
    alice = await connect("alice")
    bob = await connect("bob")
    for frame, code in BAD_FRAMES:
        await alice.send(frame)
        r = await alice.recv_type("error")
        assert r["code"] == code, (frame, r)
        assert isinstance(r["message"], str) and r["message"]
        # still relayed afterwards
        await alice.send({"type": "close", "otherUsername": "bob"})
        assert (await bob.recv_type("close"))["username"] == "alice"


async def test_binary_frame_closes_with_1003(connect):
    alice = await connect("alice")
    await alice.ws.send_bytes(b"\x00\x01")
    assert await alice.close_code() == 1003
    # the server carries on, and the name is free again
    other = await connect()
    await other.login("alice")


async def test_oversized_frame_closes_with_1009(connect):
    alice = await connect("alice")
    await alice.send(json.dumps({"type": "presence", "pad": "x" * (64 * 1024)}))
    assert await alice.close_code() == 1009
    other = await connect()
    await other.login("alice")


async def test_silent_client_is_dropped_within_the_heartbeat(tmp_path):
    """A client that stops answering pings (its socket dropped without a close)
    leaves presence within 1.5 heartbeats, and its partner gets close (with
    resume off; with it, the grace period comes on top: tests/signaling/test_resume.py)."""
    config = test_config(tmp_path, heartbeat=0.5, resume_grace=0)
    async with running_server(config) as srv:
        watcher = await Client.connect(srv.ws_url)
        await watcher.login("watcher")
        # autoping=False and never reading: pings go unanswered, like a dead peer.
        ghost = await Client.connect(srv.ws_url, autoping=False, heartbeat=None)
        await ghost.send({"type": "login", "username": "ghost"})
        await watcher.recv_type("presence")  # ghost joined
        await ghost.send({"type": "offer", "otherUsername": "watcher", "offer": {"type": "offer", "sdp": SDP}})
        await watcher.recv_type("offer")
        loop = asyncio.get_running_loop()
        started = loop.time()
        assert await watcher.recv_type("close", timeout=5) == {"type": "close", "username": "ghost"}
        delta = await watcher.recv_type("presence", timeout=5)
        while "ghost" not in delta.get("left", []):
            delta = await watcher.recv_type("presence", timeout=5)
        assert loop.time() - started < 0.5 * 1.5 + 1.0
        await watcher.close()
        await ghost.session.close()


async def test_many_logins_cost_one_presence_message_per_client_per_interval(tmp_path):
    config = test_config(tmp_path, presence_interval=0.3)
    async with running_server(config) as srv:
        first = await Client.connect(srv.ws_url)
        await first.login("first")
        clients = [await Client.connect(srv.ws_url) for _ in range(30)]
        await asyncio.gather(*(c.login(f"user{i}") for i, c in enumerate(clients)))
        # first sees all 30 joins in very few deltas, not 30 messages
        seen: set[str] = set()
        deltas = 0
        while len(seen) < 30:
            delta = await first.recv_type("presence")
            deltas += 1
            seen.update(delta["joined"])
        assert deltas <= 3
        for c in [first, *clients]:
            await c.close()


async def test_server_shutdown_closes_sockets_with_1001(tmp_path):
    async with running_server(test_config(tmp_path)) as srv:
        alice = await Client.connect(srv.ws_url)
        await alice.login("alice")
        await srv.runner.shutdown()
        assert await alice.close_code() == 1001
        await alice.session.close()


async def test_the_tutorials_clients_connect_on_the_root_path(server):
    """The Node tutorial's client opens ws://host:port/ (the root path): the
    upgrade there is signaling, unchanged; a plain GET / is still the page."""
    root = server.ws_url[: -len("/ws")] + "/"
    alice = await Client.connect(root)
    bob = await Client.connect(root)
    try:
        assert (await alice.request({"type": "login", "username": "alice"}, "login"))["success"] is True
        assert (await bob.request({"type": "login", "username": "bob"}, "login"))["success"] is True
        await alice.send({"type": "offer", "otherUsername": "bob", "offer": {"type": "offer", "sdp": SDP}})
        assert await bob.recv_type("offer") == {"type": "offer", "offer": {"type": "offer", "sdp": SDP}, "username": "alice"}
        await bob.send({"type": "answer", "otherUsername": "alice", "answer": {"type": "answer", "sdp": SDP}})
        assert (await alice.recv_type("answer"))["username"] == "bob"
        await alice.send({"type": "close", "otherUsername": "bob"})
        assert await bob.recv_type("close") == {"type": "close", "username": "alice"}
    finally:
        await alice.close()
        await bob.close()
    async with aiohttp.ClientSession() as http:
        async with http.get(server.url + "/") as r:
            assert r.status == 200 and "text/html" in r.headers["Content-Type"]
