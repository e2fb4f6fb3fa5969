"""Two server processes sharing a real redis-server: one signaling space."""

from __future__ import annotations

import asyncio
import hashlib
import time
from pathlib import Path
from typing import AsyncIterator, Awaitable, Callable

import cv2
import numpy as np
import pytest
from aiortc import RTCPeerConnection, RTCSessionDescription

from tests.support.server import Client

from tests.support.cluster import Node, wait_left, wait_online
from tests.support.redis_process import RedisProcess

LEASE = 1.5
REAP_BOUND = LEASE * 4 / 3
CHUNK = 16 * 1024

pytestmark = pytest.mark.timeout(60)


@pytest.fixture
async def start_nodes(redis_server: RedisProcess, tmp_path: Path) -> AsyncIterator[Callable[..., Awaitable[list[Node]]]]:
    started: list[Node] = []

    async def start(*names: str) -> list[Node]:
        nodes = await asyncio.gather(*(Node.start(n, redis_server.url, tmp_path / n, lease=LEASE) for n in names))
        started.extend(nodes)
        return list(nodes)

    yield start
    await asyncio.gather(*(n.stop() for n in started))


@pytest.fixture
async def clients() -> AsyncIterator[Callable[[Node, str], Awaitable[Client]]]:
    made: list[Client] = []

    async def connect(node: Node, username: str) -> Client:
        client = await Client.connect(node.ws_url)
        made.append(client)
        await client.login(username)
        return client

    yield connect
    for client in made:
        await client.close()


def a_photo() -> bytes:
    """A real JPEG, big enough to need many data-channel messages."""
    rng = np.random.default_rng(7)
    image = rng.integers(0, 256, size=(480, 640, 3), dtype=np.uint8)
    ok, encoded = cv2.imencode(".jpg", image, [cv2.IMWRITE_JPEG_QUALITY, 90])
    assert ok
    return encoded.tobytes()


def candidate_lines(sdp: str) -> list[str]:
    return [line[2:] for line in sdp.splitlines() if line.startswith("a=candidate:")]


async def test_a_call_with_a_photo_crosses_nodes(start_nodes, clients) -> None:
    node1, node2 = await start_nodes("n1", "n2")
    alice = await clients(node1, "alice")
    bob = await clients(node2, "bob")
    users = await wait_online(alice, {"alice", "bob"})
    assert users[0] == "bot"  # services first, then everyone on any node
    duplicate = await Client.connect(node2.ws_url)
    try:
        reply = await duplicate.request({"type": "login", "username": "alice"}, "login")
        assert not reply["success"] and reply["error"] == "username-taken"  # held on node 1
    finally:
        await duplicate.close()

    caller, callee = RTCPeerConnection(), RTCPeerConnection()
    try:
        channel = caller.createDataChannel("photos")
        opened = asyncio.Event()
        channel.on("open", opened.set)
        received: list[bytes] = []
        done = asyncio.Event()

        @callee.on("datachannel")
        def on_datachannel(ch) -> None:
            @ch.on("message")
            def on_message(message) -> None:
                if message == "end":
                    done.set()
                else:
                    received.append(message)

        # alice (node 1) -> bob (node 2): offer, then each candidate, then end-of-candidates.
        await caller.setLocalDescription(await caller.createOffer())
        offer = caller.localDescription
        await alice.send({"type": "offer", "otherUsername": "bob", "offer": {"type": offer.type, "sdp": offer.sdp}})
        cands = candidate_lines(offer.sdp)
        assert cands
        for c in cands:
            await alice.send({"type": "candidate", "otherUsername": "bob",
                              "candidate": {"candidate": c, "sdpMid": "0", "sdpMLineIndex": 0}})
        await alice.send({"type": "candidate", "otherUsername": "bob", "candidate": None})

        got = await bob.recv_type("offer", username="alice")
        relayed = [await bob.recv_type("candidate", username="alice") for _ in range(len(cands) + 1)]
        assert [r["candidate"] and r["candidate"]["candidate"] for r in relayed] == [*cands, None]
        await callee.setRemoteDescription(RTCSessionDescription(**got["offer"]))
        await callee.setLocalDescription(await callee.createAnswer())
        answer = callee.localDescription
        await bob.send({"type": "answer", "otherUsername": "alice", "answer": {"type": answer.type, "sdp": answer.sdp}})

        got = await alice.recv_type("answer", username="bob")
        await caller.setRemoteDescription(RTCSessionDescription(**got["answer"]))
        await asyncio.wait_for(opened.wait(), 15)

        photo = a_photo()
        for i in range(0, len(photo), CHUNK):
            channel.send(photo[i:i + CHUNK])
        channel.send("end")
        await asyncio.wait_for(done.wait(), 15)
        data = b"".join(received)
        assert hashlib.sha256(data).digest() == hashlib.sha256(photo).digest()
        decoded = cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_COLOR)
        assert decoded is not None and decoded.shape == (480, 640, 3)

        await alice.send({"type": "close", "otherUsername": "bob"})
        await bob.recv_type("close", username="alice")
    finally:
        await caller.close()
        await callee.close()


async def test_the_bot_answers_on_the_callers_node(start_nodes, clients) -> None:
    node1, node2 = await start_nodes("n1", "n2")
    carol = await clients(node2, "carol")
    pc = RTCPeerConnection()
    try:
        pc.createDataChannel("photos")
        await pc.setLocalDescription(await pc.createOffer())
        await carol.send({"type": "offer", "otherUsername": "bot",
                          "offer": {"type": "offer", "sdp": pc.localDescription.sdp}})
        answer = await carol.recv_type("answer", timeout=20, username="bot")
        await pc.setRemoteDescription(RTCSessionDescription(**answer["answer"]))
        await carol.send({"type": "close", "otherUsername": "bot"})
    finally:
        await pc.close()
    # The call was taken by node 2's own bot, not node 1's.
    assert "offer from carol" in node2.log.read_text()
    assert "offer from carol" not in node1.log.read_text()


async def test_a_killed_node_leaves_presence_within_the_lease(start_nodes, clients) -> None:
    node1, node2 = await start_nodes("n1", "n2")
    alice = await clients(node1, "alice")
    await clients(node2, "bob")
    await wait_online(alice, {"bob"})

    await node2.kill()
    t0 = time.monotonic()
    await wait_left(alice, "bob", timeout=REAP_BOUND + 3.0)
    elapsed = time.monotonic() - t0
    # The bound: the lease, one renewal period, and one presence interval.
    assert elapsed <= REAP_BOUND + 1.0, elapsed
    err = await alice.request({"type": "candidate", "otherUsername": "bob", "candidate": None}, "error")
    assert err["code"] == "user-offline"
    again = await clients(node1, "bob")  # the name is free again
    assert again.username == "bob"


async def test_redis_restart_nodes_reconnect_and_say_what_was_lost(start_nodes, clients, redis_server) -> None:
    node1, node2 = await start_nodes("n1", "n2")
    alice = await clients(node1, "alice")
    bob = await clients(node2, "bob")
    await wait_online(alice, {"bob"})

    redis_server.restart()  # SIGKILL, then a fresh, empty server on the same port

    for client in (alice, bob):
        notice = await client.recv_type("error", timeout=15, code="signaling-interrupted")
        assert notice["seconds"] >= 0
    await wait_online(alice, {"alice", "bob"})
    await wait_online(bob, {"alice", "bob"})
    await alice.send({"type": "candidate", "otherUsername": "bob", "candidate": None})
    assert (await bob.recv_type("candidate", username="alice"))["candidate"] is None
    carol = await clients(node1, "carol")  # new logins work again
    await wait_online(bob, {"carol"})
    await carol.send({"type": "close", "otherUsername": "bob"})
    await bob.recv_type("close", username="carol")


async def test_a_login_while_redis_is_down_is_refused_and_can_be_retried(start_nodes, clients, redis_server) -> None:
    (node1,) = await start_nodes("n1")
    alice = await clients(node1, "alice")
    redis_server.kill()
    dave = await Client.connect(node1.ws_url)
    reply = await dave.request({"type": "login", "username": "dave"}, "login")
    assert reply["success"] is False and reply["error"] == "unavailable"
    redis_server.start()
    await alice.recv_type("error", timeout=15, code="signaling-interrupted")
    await dave.login("dave")  # the same connection logs in once Redis is back
    await dave.close()


async def test_partners_on_other_nodes_get_close_when_a_node_is_killed(start_nodes, clients) -> None:
    """A departure looks the same whether the partner is on the same node or
    another, a crash included: bob (node 2) was in a call with alice (node 1);
    node 1 is SIGKILLed; bob receives close from alice within the reap bound."""
    node1, node2 = await start_nodes("n1", "n2")
    alice = await clients(node1, "alice")
    bob = await clients(node2, "bob")
    carol = await clients(node2, "carol")  # not alice's partner: hears no close
    await wait_online(bob, {"alice"})
    sdp = "v=0\r\no=- 1 1 IN IP4 127.0.0.1\r\ns=-\r\nt=0 0\r\n"
    await alice.send({"type": "offer", "otherUsername": "bob", "offer": {"type": "offer", "sdp": sdp}})
    await bob.recv_type("offer", username="alice")

    await node1.kill()
    t0 = time.monotonic()
    closed = await bob.recv_type("close", timeout=REAP_BOUND + 3.0)
    elapsed = time.monotonic() - t0
    assert closed == {"type": "close", "username": "alice"}
    assert elapsed <= REAP_BOUND + 1.0, elapsed
    await wait_left(carol, "alice", timeout=5)
    await carol.send({"type": "presence"})
    while True:  # carol's next messages: presence only, never a close
        m = await carol.recv()
        assert m["type"] != "close", m
        if "users" in m:
            break


async def test_a_held_slot_keeps_its_claim_in_redis_and_resumes_on_its_node(start_nodes, clients) -> None:
    """The claim of a lost connection stays in Redis for the grace period (the
    node's lease keeps it): the name is taken on every node; the resume must
    reach the node that holds the slot (sticky routing)."""
    node1, node2 = await start_nodes("n1", "n2")
    bob = await clients(node2, "bob")
    alice = await Client.connect(node1.ws_url)
    reply = await alice.login("alice")
    sdp = "v=0\r\no=- 1 1 IN IP4 127.0.0.1\r\ns=-\r\nt=0 0\r\n"
    await alice.send({"type": "offer", "otherUsername": "bob", "offer": {"type": "offer", "sdp": sdp}})
    await bob.recv_type("offer", username="alice")
    await alice.drop()

    # Across nodes and leases (2 x the lease), alice stays claimed and bob
    # can still reach her slot: his candidates are queued on node 1.
    other = await Client.connect(node2.ws_url)
    try:
        for _ in range(2):
            r = await other.request({"type": "login", "username": "alice"}, "login")
            assert r["success"] is False and r["error"] == "username-taken"
            await bob.send({"type": "candidate", "otherUsername": "alice", "candidate": None})
            await wait_online(bob, {"alice"})
            # Time itself is what is tested: lease renewals must keep the claim.
            await asyncio.sleep(LEASE)
    finally:
        await other.close()
    again = await Client.connect(node1.ws_url)
    try:
        r = await again.request({"type": "login", "username": "alice", "resume": reply["resumeToken"]}, "login")
        assert r["success"] is True and r["resumed"] is True
        for _ in range(2):
            assert (await again.recv_type("candidate", username="bob"))["candidate"] is None
    finally:
        await again.close()
