"""Resume: a lost connection keeps its username for --resume-grace seconds;
a new connection with the resume token re-attaches and gets what was routed
to it meanwhile, in order. Real server, real WebSocket clients."""

from __future__ import annotations

import asyncio

from tests.support.server import Client, running_server, test_config
from tests.support.wait import eventually
from webapp.keys import HUB

SDP = "v=0\r\no=- 1 1 IN IP4 127.0.0.1\r\ns=-\r\nt=0 0\r\n"


def candidate(i: int) -> dict:
    return {"candidate": f"candidate:{i} 1 udp 2122260223 127.0.0.1 {50000 + i} typ host",
            "sdpMid": "0", "sdpMLineIndex": 0}


async def in_a_call(url: str) -> tuple[Client, Client, dict]:
    """alice and bob, partners (alice offered, bob answered); alice's login reply."""
    alice = await Client.connect(url)
    reply = await alice.login("alice")
    bob = await Client.connect(url)
    await bob.login("bob")
    await alice.send({"type": "offer", "otherUsername": "bob", "offer": {"type": "offer", "sdp": SDP}})
    await bob.recv_type("offer")
    await bob.send({"type": "answer", "otherUsername": "alice", "answer": {"type": "answer", "sdp": SDP}})
    await alice.recv_type("answer")
    return alice, bob, reply


async def test_login_reply_carries_a_resume_token_and_the_grace(tmp_path):
    async with running_server(test_config(tmp_path, resume_grace=7.0)) as srv:
        a, b = await Client.connect(srv.ws_url), await Client.connect(srv.ws_url)
        ra, rb = await a.login("alice"), await b.login("bob")
        assert ra["resumeGrace"] == 7.0
        assert isinstance(ra["resumeToken"], str) and len(ra["resumeToken"]) >= 20
        assert ra["resumeToken"] != rb["resumeToken"]
        assert "resumed" not in ra
        await a.close()
        await b.close()
    async with running_server(test_config(tmp_path, resume_grace=0)) as srv:
        a = await Client.connect(srv.ws_url)
        reply = await a.login("alice")
        assert "resumeToken" not in reply and "resumeGrace" not in reply
        await a.close()


async def test_a_dropped_connection_resumes_with_the_queued_messages_in_order(tmp_path):
    async with running_server(test_config(tmp_path, resume_grace=10.0)) as srv:
        alice, bob, reply = await in_a_call(srv.ws_url)
        await alice.drop()
        await asyncio.wait_for(_held(srv, "alice"), 5)
        # bob keeps talking to alice: no close for him, no user-offline either.
        for i in range(5):
            await bob.send({"type": "candidate", "otherUsername": "alice", "candidate": candidate(i)})
        await bob.send({"type": "presence"})
        users = (await bob.recv_type("presence"))["users"]
        assert "alice" in users  # still claimed

        again = await Client.connect(srv.ws_url)
        resumed = await again.request(
            {"type": "login", "username": "alice", "resume": reply["resumeToken"]}, "login")
        assert resumed["success"] is True and resumed["resumed"] is True
        assert resumed["username"] == "alice" and "bob" in resumed["users"]
        assert resumed["resumeToken"] != reply["resumeToken"]  # rotated
        got = [await again.recv_type("candidate") for _ in range(5)]
        assert [g["candidate"] for g in got] == [candidate(i) for i in range(5)]
        assert all(g["username"] == "bob" for g in got)
        # The call goes on both ways, and bob was never sent close.
        await again.send({"type": "candidate", "otherUsername": "bob", "candidate": None})
        relayed = await bob.recv()
        while relayed["type"] == "presence":
            relayed = await bob.recv()
        assert relayed == {"type": "candidate", "candidate": None, "username": "alice"}
        # The partnership carried over: alice leaving now closes bob's call.
        await again.close()
        assert await bob.recv_type("close", timeout=2) == {"type": "close", "username": "alice"}
        await bob.close()


async def test_a_wrong_token_while_the_slot_is_held_is_username_taken(tmp_path):
    async with running_server(test_config(tmp_path, resume_grace=10.0)) as srv:
        alice, bob, reply = await in_a_call(srv.ws_url)
        await alice.drop()
        await asyncio.wait_for(_held(srv, "alice"), 5)
        thief = await Client.connect(srv.ws_url)
        for attempt in ({"type": "login", "username": "alice", "resume": "x" * 22},
                        {"type": "login", "username": "alice"}):
            r = await thief.request(attempt, "login")
            assert r["success"] is False and r["error"] == "username-taken"
        r = await thief.request({"type": "login", "username": "alice", "resume": 5}, "login")
        assert r["success"] is False and r["error"] == "invalid-field"
        # The real owner still resumes.
        again = await Client.connect(srv.ws_url)
        r = await again.request({"type": "login", "username": "alice", "resume": reply["resumeToken"]}, "login")
        assert r["resumed"] is True
        for c in (thief, again, bob):
            await c.close()


async def test_after_the_grace_partners_get_close_and_a_late_resume_is_a_fresh_login(tmp_path):
    async with running_server(test_config(tmp_path, resume_grace=0.5)) as srv:
        alice, bob, reply = await in_a_call(srv.ws_url)
        loop = asyncio.get_running_loop()
        dropped = loop.time()
        await alice.drop()
        assert await bob.recv_type("close", timeout=5) == {"type": "close", "username": "alice"}
        assert loop.time() - dropped >= 0.5  # not before the grace ran out
        late = await Client.connect(srv.ws_url)
        r = await late.request({"type": "login", "username": "alice", "resume": reply["resumeToken"]}, "login")
        assert r["success"] is True and r["resumed"] is False
        await late.close()
        await bob.close()


async def test_a_clean_close_with_1000_ends_the_session_at_once(tmp_path):
    async with running_server(test_config(tmp_path, resume_grace=30.0)) as srv:
        alice, bob, _ = await in_a_call(srv.ws_url)
        await alice.close()  # aiohttp closes with 1000
        assert await bob.recv_type("close", timeout=2) == {"type": "close", "username": "alice"}
        assert srv.app[HUB].held == []
        await bob.close()


async def test_a_close_with_1001_keeps_the_slot(tmp_path):
    """Browsers close with 1001 (going away) on a reload: resumable."""
    async with running_server(test_config(tmp_path, resume_grace=30.0)) as srv:
        alice, bob, reply = await in_a_call(srv.ws_url)
        await alice.ws.close(code=1001)
        await alice.session.close()
        await asyncio.wait_for(_held(srv, "alice"), 5)
        again = await Client.connect(srv.ws_url)
        r = await again.request({"type": "login", "username": "alice", "resume": reply["resumeToken"]}, "login")
        assert r["resumed"] is True
        await again.close()
        assert await bob.recv_type("close", timeout=2) == {"type": "close", "username": "alice"}
        await bob.close()


async def test_a_resume_before_the_server_noticed_the_drop_takes_over(tmp_path):
    """A client on a new network reconnects while its old socket still looks
    alive to the server: the resume wins, the old socket is closed."""
    async with running_server(test_config(tmp_path, resume_grace=30.0)) as srv:
        alice, bob, reply = await in_a_call(srv.ws_url)
        again = await Client.connect(srv.ws_url)
        r = await again.request({"type": "login", "username": "alice", "resume": reply["resumeToken"]}, "login")
        assert r["resumed"] is True
        assert await alice.close_code() == 1000
        await bob.send({"type": "candidate", "otherUsername": "alice", "candidate": candidate(1)})
        assert (await again.recv_type("candidate"))["candidate"] == candidate(1)
        for c in (alice, again, bob):
            await c.close()


async def test_what_a_held_slot_keeps_is_bounded_and_overflow_ends_it(tmp_path):
    async with running_server(test_config(tmp_path, resume_grace=30.0, backlog=4)) as srv:
        alice, bob, reply = await in_a_call(srv.ws_url)
        await alice.drop()
        await asyncio.wait_for(_held(srv, "alice"), 5)
        for i in range(5):  # one more than the backlog
            await bob.send({"type": "candidate", "otherUsername": "alice", "candidate": candidate(i)})
        # The slot ends early, as after the grace: bob's call is closed.
        assert await bob.recv_type("close", timeout=5) == {"type": "close", "username": "alice"}
        assert srv.app[HUB].held == []
        again = await Client.connect(srv.ws_url)
        r = await again.request({"type": "login", "username": "alice", "resume": reply["resumeToken"]}, "login")
        assert r["success"] is True and r["resumed"] is False
        for c in (again, bob):
            await c.close()


async def test_bytes_held_for_a_slot_are_bounded(tmp_path):
    big_sdp = "v=0\r\n" + "a=x\r\n" * 9000  # ~45 KB
    config = test_config(tmp_path, resume_grace=30.0, backlog_bytes=200_000)
    async with running_server(config) as srv:
        alice, bob, reply = await in_a_call(srv.ws_url)
        await alice.drop()
        await asyncio.wait_for(_held(srv, "alice"), 5)
        for _ in range(5):  # 225 KB > 200 KB, far under the message count
            await bob.send({"type": "offer", "otherUsername": "alice", "offer": {"type": "offer", "sdp": big_sdp}})
        assert await bob.recv_type("close", timeout=5) == {"type": "close", "username": "alice"}
        await bob.close()


async def _held(srv, username: str) -> None:
    await eventually(lambda: username in srv.app[HUB].held, timeout=5)
