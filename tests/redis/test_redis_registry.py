"""RedisRegistry against a real redis-server: several nodes in one process."""

from __future__ import annotations

import asyncio
import contextlib
from typing import Any, AsyncIterator, Awaitable, Callable

import pytest

from signaling.redis_registry import LinkState, RedisRegistry, RegistryUnavailable

from tests.support.redis_process import RedisProcess
from tests.support.wait import eventually

TIMEOUT = 10.0
LEASE = 0.9


class Inbox:
    """An Endpoint that records what it is given."""

    def __init__(self) -> None:
        self.queue: asyncio.Queue[dict[str, Any]] = asyncio.Queue()

    def deliver(self, payload: dict[str, Any]) -> None:
        self.queue.put_nowait(payload)

    async def next(self) -> dict[str, Any]:
        return await asyncio.wait_for(self.queue.get(), TIMEOUT)


class Presence:
    """A presence listener whose view can be awaited."""

    def __init__(self, registry: RedisRegistry) -> None:
        self.online: set[str] = set()
        self.changed = asyncio.Condition()
        registry.subscribe(self._on)

    def _on(self, user: str, online: bool) -> None:
        (self.online.add if online else self.online.discard)(user)
        asyncio.ensure_future(self._notify())

    async def _notify(self) -> None:
        async with self.changed:
            self.changed.notify_all()

    async def until(self, predicate: Callable[[set[str]], bool], timeout: float = TIMEOUT) -> None:
        async def wait() -> None:
            async with self.changed:
                await self.changed.wait_for(lambda: predicate(self.online))
        await asyncio.wait_for(wait(), timeout)


@pytest.fixture
async def nodes(redis_server: RedisProcess) -> AsyncIterator[Callable[..., Awaitable[RedisRegistry]]]:
    started: list[RedisRegistry] = []

    async def make(node_id: str, **kwargs: Any) -> RedisRegistry:
        kwargs.setdefault("lease_seconds", LEASE)
        registry = RedisRegistry(redis_server.url, node_id=node_id, **kwargs)
        await registry.start()
        started.append(registry)
        return registry

    yield make
    for registry in started:
        await registry.close()


async def crash(registry: RedisRegistry) -> None:
    """Stop a node the way SIGKILL would: no leave, its lease just lapses."""
    for task in registry._tasks:
        task.cancel()
    for task in registry._tasks:
        with contextlib.suppress(asyncio.CancelledError):
            await task
    registry._tasks = []
    registry.state = LinkState.CLOSED
    assert registry._redis is not None
    await registry._redis.aclose()
    registry._redis = None


async def test_start_fails_cleanly_without_redis() -> None:
    from tests.support.redis_process import free_port

    registry = RedisRegistry(f"redis://127.0.0.1:{free_port()}", node_id="n", lease_seconds=1.5)
    with pytest.raises(RegistryUnavailable):
        await registry.start()
    await registry.close()


async def test_names_are_unique_across_nodes_and_messages_cross(nodes) -> None:
    a, b = await nodes("a"), await nodes("b")
    bot_a, bot_b, alice, bob = Inbox(), Inbox(), Inbox(), Inbox()
    a.add_service("bot", bot_a)
    b.add_service("bot", bot_b)
    seen_on_a, seen_on_b = Presence(a), Presence(b)

    assert await a.claim("alice", alice)
    assert not await b.claim("alice", Inbox())  # taken on another node
    assert not await b.claim("bot", Inbox())  # a service name
    assert await b.claim("bob", bob)
    assert await a.users() == ["bot", "alice", "bob"]
    assert await b.users() == ["bot", "alice", "bob"]
    await seen_on_a.until(lambda s: s == {"alice", "bob"})
    await seen_on_b.until(lambda s: s == {"alice", "bob"})

    assert await a.route("bob", {"type": "offer", "username": "alice", "n": 1})
    assert await a.route("bob", {"type": "candidate", "username": "alice", "n": 2})
    assert (await bob.next())["n"] == 1
    assert (await bob.next())["n"] == 2  # order kept
    assert await b.route("alice", {"type": "answer", "username": "bob"})
    assert (await alice.next())["type"] == "answer"

    # The bot name is served by the caller's own node.
    assert await b.route("bot", {"type": "offer", "username": "bob"})
    assert (await bot_b.next())["username"] == "bob"
    assert bot_a.queue.empty()

    assert not await a.route("carol", {"type": "offer", "username": "alice"})

    await b.release("bob", Inbox())  # not the holder: ignored
    assert "bob" in await a.users()
    await b.release("bob", bob)
    await seen_on_a.until(lambda s: s == {"alice"})
    assert not await a.route("bob", {"type": "offer", "username": "alice"})
    assert await a.claim("bob", Inbox())  # free again, on any node


async def test_a_dead_node_is_reaped_within_the_lease(nodes) -> None:
    a, b = await nodes("a"), await nodes("b")
    seen_on_a = Presence(a)
    assert await b.claim("bob", Inbox())
    assert await b.claim("bea", Inbox())
    await seen_on_a.until(lambda s: s == {"bob", "bea"})

    await crash(b)
    loop = asyncio.get_running_loop()
    t0 = loop.time()
    await seen_on_a.until(lambda s: not s, timeout=a.reap_bound + 2.0)
    elapsed = loop.time() - t0
    assert elapsed <= a.reap_bound + 0.5, elapsed
    assert await a.users() == []
    assert not await a.route("bob", {"type": "offer", "username": "x"})
    assert await a.claim("bob", Inbox())


async def test_close_leaves_at_once(nodes) -> None:
    a, b = await nodes("a", lease_seconds=30.0), await nodes("b", lease_seconds=30.0)
    seen_on_a = Presence(a)
    assert await b.claim("bob", Inbox())
    await seen_on_a.until(lambda s: s == {"bob"})
    await b.close()
    await seen_on_a.until(lambda s: not s, timeout=2.0)  # far below the 30 s lease


async def test_redis_restart_reconnects_resyncs_and_tells_what_was_lost(nodes, redis_server: RedisProcess) -> None:
    a, b = await nodes("a"), await nodes("b")
    alice, ann, bob = Inbox(), Inbox(), Inbox()
    seen_on_b = Presence(b)
    assert await a.claim("alice", alice)
    assert await a.claim("ann", ann)
    assert await b.claim("bob", bob)
    await seen_on_b.until(lambda s: s == {"alice", "ann", "bob"})

    # Hold node a back after the restart until b has taken "alice".
    gate = asyncio.Event()
    connect_a = a._connect

    async def gated_connect() -> Any:
        await gate.wait()
        return await connect_a()

    a._connect = gated_connect  # type: ignore[method-assign]

    redis_server.kill()
    await eventually(lambda: a.state is LinkState.DOWN and b.state is LinkState.DOWN)
    # While Redis is down: local routing works, remote routing fails, claims refuse.
    assert await a.route("ann", {"type": "candidate", "username": "alice"})
    assert (await ann.next())["type"] == "candidate"
    assert not await a.route("bob", {"type": "candidate", "username": "alice"})
    with pytest.raises(RegistryUnavailable):
        await a.claim("amy", Inbox())
    assert await a.users() == ["alice", "ann", "bob"]  # the last known view

    redis_server.start()  # same port, empty: every key is gone
    await eventually(lambda: b.state is LinkState.UP)
    notice = await bob.next()
    assert notice["code"] == "signaling-interrupted" and notice["seconds"] >= 0
    alice2 = Inbox()
    assert await b.claim("alice", alice2)  # b does not know a still holds it

    gate.set()
    await eventually(lambda: a.state is LinkState.UP)
    lost = await alice.next()
    assert lost["type"] == "error" and lost["code"] == "presence-lost"
    assert (await ann.next())["code"] == "signaling-interrupted"
    # ann was re-claimed; alice now belongs to b's login.
    assert await a.users() == ["alice", "ann", "bob"]
    await seen_on_b.until(lambda s: s == {"alice", "ann", "bob"})
    assert await b.route("ann", {"type": "offer", "username": "bob"})
    assert (await ann.next())["type"] == "offer"
    assert await a.route("alice", {"type": "offer", "username": "ann"})
    assert (await alice2.next())["username"] == "ann"
    assert alice.queue.empty()
