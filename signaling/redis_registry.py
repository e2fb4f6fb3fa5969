"""Presence and routing through Redis: many processes, one signaling space.

:class:`RedisRegistry` implements :class:`~callbot.signaling.registry.Registry`
with redis-py's asyncio client (imported lazily: without ``--redis-url``
nothing imports ``redis``). Every node (server process) keeps its own
endpoints (WebSocket connections, the bot) in memory; Redis holds who is where
and carries messages between nodes.

Keys and channels (``p`` is the key prefix, ``callbot:`` by default)::

    p users               hash    username -> node id          the claims (HSETNX)
    p nodes               set     node ids that may own users  what reapers look at
    p node:<id>:alive     string  node id, PX lease            the node's lease
    p node:<id>:users     set     usernames the node owns      what a reaper removes
    p node:<id>           channel {"to": username, "payload": {...}}  messages for that node
    p presence            channel {"user": name, "online": bool, "node": id}

Every change of the claims is one Lua script, so it is atomic: a claim takes
the name, records it under the node and announces the join in one step, and a
reaper removing a dead node's users announces each leave exactly once.

Leases: each node renews its lease every ``lease_seconds / 3`` and, in the same
tick, reaps every node whose lease expired. A node that dies (SIGKILL, power,
partition) therefore has its users removed, and their leaves announced on
every node, within ``reap_bound = lease_seconds * 4 / 3`` (plus the hub's
presence interval before clients see it).

Services (the bot) are never in Redis: every node serves the bot name locally,
so a call to the bot is taken by the caller's own node. ``users()`` lists
services first.

Losing Redis (restart, network): the node notices (its pub/sub connection
fails, or its lease renewal does), keeps serving local routing and the bot, and
reconnects with exponential backoff. Once back it re-subscribes, re-asserts its
lease and its local users' claims, and reconciles presence with what Redis
holds. Endpoints are told what was lost, through ``deliver``:

``{"type": "error", "code": "signaling-interrupted", "message": ..., "seconds": s}``
    to every local user: messages to users on other nodes in those ``s``
    seconds were not delivered (their senders got ``user-offline``), and
    presence changes in that window arrive now as one delta.
``{"type": "error", "code": "presence-lost", "message": ...}``
    to a local user whose name somebody else claimed while this node was cut
    off. The registry no longer routes that name to this connection; the
    client must log in again (on a new connection).

While Redis is unreachable: ``route`` to a user on another node returns False,
``users`` answers from the last known presence, ``release`` is applied locally
(and in Redis on reconnect), and ``claim`` raises :class:`RegistryUnavailable`
rather than pretend the name is taken.

Exception tree::

    SignalingError                (callbot.signaling.protocol)
    └── RegistryUnavailable       Redis cannot be reached right now

Routing to other nodes is batched: every route asked for while the previous
batch was on its way goes to Redis as one script call (up to ``ROUTE_BATCH``
messages or ``ROUTE_BATCH_BYTES``), which publishes one message per target
node holding all of that node's envelopes in order. Batches go one after
another, so messages leave in the order they were routed, and a burst costs
one round trip and one publish per node, not one each.

Departures: a user who leaves (released, or reaped with a dead node) is
announced on the presence channel *after* the messages it routed before
leaving, so every node can tell the departure to the local users who were in
a call with it (``subscribe_departures``): a partner receives ``close`` from a
user whose node crashed, as from one who hung up. Presence corrections after a
Redis outage are not departures.

Everything is bounded: ``max_connections`` to Redis in all (one for pub/sub,
one for the lease so a busy pool never starves it, the rest for commands), a reconnect
backoff capped at ``reconnect_max``, routes waiting for their batch at most
``ROUTE_QUEUE`` (past it a route fails as if the link were down), no other
queues (a message read from the node channel goes straight into
``Endpoint.deliver``, itself bounded). A node that cannot read its channel
fast enough is disconnected by Redis (``client-output-buffer-limit pubsub``)
and resynchronises.
"""

from __future__ import annotations

import asyncio
import contextlib
import enum
import hashlib
import json
import logging
import os
import re
import secrets
import socket
from typing import TYPE_CHECKING, Any

import orjson

from signaling.registry import RegistryUnavailable  # noqa: F401  (re-exported: raised from here)
from signaling.registry import DepartureListener, Endpoint, PresenceListener

if TYPE_CHECKING:  # redis is imported lazily, only when this registry is used
    import redis.asyncio

logger = logging.getLogger(__name__)

NODE_ID_PATTERN = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,99}")
#: Routes sent to Redis in one script call at most, and their bytes.
ROUTE_BATCH = 512
ROUTE_BATCH_BYTES = 1024 * 1024
#: Routes waiting for a batch at most; past it routing fails (backpressure).
ROUTE_QUEUE = 65536


class LinkState(enum.Enum):
    NEW = "new"
    UP = "up"
    DOWN = "down"
    CLOSED = "closed"


# -- Lua scripts: every change of the claims is atomic ---------------------------

# KEYS: users, nodes, alive, node users; ARGV: name, node, lease ms, presence channel
_CLAIM = """
if redis.call('HSETNX', KEYS[1], ARGV[1], ARGV[2]) == 0 then return {0, 0} end
redis.call('SADD', KEYS[4], ARGV[1])
local readded = redis.call('SADD', KEYS[2], ARGV[2])
redis.call('SET', KEYS[3], ARGV[2], 'PX', ARGV[3])
redis.call('PUBLISH', ARGV[4], cjson.encode({user=ARGV[1], online=true, node=ARGV[2]}))
return {1, readded}
"""

# KEYS: users, node users; ARGV: name, node, presence channel
_RELEASE = """
if redis.call('HGET', KEYS[1], ARGV[1]) ~= ARGV[2] then return 0 end
redis.call('HDEL', KEYS[1], ARGV[1])
redis.call('SREM', KEYS[2], ARGV[1])
redis.call('PUBLISH', ARGV[3], cjson.encode({user=ARGV[1], online=false, node=ARGV[2]}))
return 1
"""

# KEYS: users; ARGV: key prefix, then target, message, target, message, ...
# One call routes a whole batch: the messages for each node go out as ONE
# publish (a JSON array of the envelopes, in order). Returns, per message,
# -1: nobody has that name; 0: its node is not listening (dead, not yet
# reaped); n > 0: delivered.
_ROUTE = """
local nodes, order, batches, result = {}, {}, {}, {}
for i = 2, #ARGV, 2 do
  local node = redis.call('HGET', KEYS[1], ARGV[i])
  local k = i / 2
  if node then
    nodes[k] = node
    if not batches[node] then batches[node] = {}; table.insert(order, node) end
    table.insert(batches[node], ARGV[i + 1])
  else
    result[k] = -1
  end
end
local receivers = {}
for _, node in ipairs(order) do
  receivers[node] = redis.call('PUBLISH', ARGV[1] .. 'node:' .. node, '[' .. table.concat(batches[node], ',') .. ']')
end
for k = 1, (#ARGV - 1) / 2 do
  if nodes[k] then result[k] = receivers[nodes[k]] end
end
return result
"""

# KEYS: nodes, alive; ARGV: node, lease ms. Returns 1 when the node had been
# dropped from the node set (reaped, or Redis lost its data): resync needed.
_HEARTBEAT = """
redis.call('SET', KEYS[2], ARGV[1], 'PX', ARGV[2])
return redis.call('SADD', KEYS[1], ARGV[1])
"""

# KEYS: nodes, users; ARGV: key prefix, presence channel. Returns reaped node ids.
_REAP = """
local reaped = {}
for _, node in ipairs(redis.call('SMEMBERS', KEYS[1])) do
  if redis.call('EXISTS', ARGV[1] .. 'node:' .. node .. ':alive') == 0 then
    local owned = ARGV[1] .. 'node:' .. node .. ':users'
    for _, name in ipairs(redis.call('SMEMBERS', owned)) do
      if redis.call('HGET', KEYS[2], name) == node then
        redis.call('HDEL', KEYS[2], name)
        redis.call('PUBLISH', ARGV[2], cjson.encode({user=name, online=false, node=node}))
      end
    end
    redis.call('DEL', owned)
    redis.call('SREM', KEYS[1], node)
    table.insert(reaped, node)
  end
end
return reaped
"""

# KEYS: users, nodes, alive, node users; ARGV: node, lease ms, presence channel,
# then every username held locally. Makes Redis agree with the node: names it
# owns but no longer holds are released, names it holds are (re)claimed.
# Returns the names somebody else holds now.
_SYNC = """
redis.call('SET', KEYS[3], ARGV[1], 'PX', ARGV[2])
redis.call('SADD', KEYS[2], ARGV[1])
local here = {}
for i = 4, #ARGV do here[ARGV[i]] = true end
for _, name in ipairs(redis.call('SMEMBERS', KEYS[4])) do
  if not here[name] then
    redis.call('SREM', KEYS[4], name)
    if redis.call('HGET', KEYS[1], name) == ARGV[1] then
      redis.call('HDEL', KEYS[1], name)
      redis.call('PUBLISH', ARGV[3], cjson.encode({user=name, online=false, node=ARGV[1]}))
    end
  end
end
local lost = {}
for i = 4, #ARGV do
  local name = ARGV[i]
  if redis.call('HSETNX', KEYS[1], name, ARGV[1]) == 1 then
    redis.call('SADD', KEYS[4], name)
    redis.call('PUBLISH', ARGV[3], cjson.encode({user=name, online=true, node=ARGV[1]}))
  elseif redis.call('HGET', KEYS[1], name) == ARGV[1] then
    redis.call('SADD', KEYS[4], name)
  else
    table.insert(lost, name)
  end
end
return lost
"""

# KEYS: users, nodes, alive, node users; ARGV: node, presence channel.
# A clean shutdown: every user of the node leaves now, not a lease later.
_LEAVE = """
for _, name in ipairs(redis.call('SMEMBERS', KEYS[4])) do
  if redis.call('HGET', KEYS[1], name) == ARGV[1] then
    redis.call('HDEL', KEYS[1], name)
    redis.call('PUBLISH', ARGV[2], cjson.encode({user=name, online=false, node=ARGV[1]}))
  end
end
redis.call('DEL', KEYS[4], KEYS[3])
redis.call('SREM', KEYS[2], ARGV[1])
return 1
"""


def default_node_id() -> str:
    """Host, pid and a random suffix: unique even when a pid is reused."""
    host = re.sub(r"[^A-Za-z0-9_.-]", "-", socket.gethostname()) or "node"
    return f"{host}-{os.getpid()}-{secrets.token_hex(3)}"


class RedisRegistry:
    """Presence and routing shared by every node using the same Redis."""

    def __init__(
        self,
        url: str,
        *,
        node_id: str | None = None,
        lease_seconds: float = 10.0,
        key_prefix: str = "callbot:",
        max_connections: int = 16,
        reconnect_max: float | None = None,
    ) -> None:
        if lease_seconds <= 0:
            raise ValueError("lease_seconds must be > 0")
        if max_connections < 3:
            raise ValueError("max_connections must be at least 3 (pub/sub, lease, commands)")
        self.url = url
        self.node_id = node_id if node_id is not None else default_node_id()
        if NODE_ID_PATTERN.fullmatch(self.node_id) is None:
            raise ValueError(f"node id {self.node_id!r} must match {NODE_ID_PATTERN.pattern}")
        self.lease_seconds = lease_seconds
        self.key_prefix = key_prefix
        self.max_connections = max_connections
        #: Longest wait between reconnect attempts.
        self.reconnect_max = reconnect_max if reconnect_max is not None else min(2.0, lease_seconds / 2)
        self.state = LinkState.NEW

        p = key_prefix
        self._users_key = p + "users"
        self._nodes_key = p + "nodes"
        self._alive_key = f"{p}node:{self.node_id}:alive"
        self._owned_key = f"{p}node:{self.node_id}:users"
        self._node_channel = f"{p}node:{self.node_id}"
        self._presence_channel = p + "presence"

        self._services: dict[str, Endpoint] = {}
        self._local: dict[str, Endpoint] = {}
        #: Everyone online as announced to listeners (the presence mirror).
        self._known: set[str] = set()
        self._listeners: list[PresenceListener] = []
        self._departure_listeners: list[DepartureListener] = []
        #: Routes of this loop turn, waiting for the route sender.
        self._routes: list[tuple[str, bytes, asyncio.Future[bool]]] = []
        self._routes_ready = asyncio.Event()
        self._route_sha = hashlib.sha1(_ROUTE.encode()).hexdigest()

        self._redis: redis.asyncio.Redis | None = None
        #: Lease renewal and reaping on their own connection, so that a busy
        #: pool (many routes waiting) can never starve the lease.
        self._lease_redis: redis.asyncio.Redis | None = None
        self._slots = asyncio.Semaphore(1)  # sized in start()
        #: A release that failed left a stale claim: the lease task resyncs.
        self._resync_wanted = False
        self._scripts: dict[str, Any] = {}
        self._lock = asyncio.Lock()  # claims and resyncs, so a resync never misses a claim
        self._link_lost = asyncio.Event()
        self._tasks: list[asyncio.Task[None]] = []
        self._log = f"node {self.node_id}:"

    @property
    def reap_bound(self) -> float:
        """Seconds within which a dead node's users are removed from Redis."""
        return self.lease_seconds * 4 / 3

    @property
    def _lease_ms(self) -> int:
        return max(1, int(self.lease_seconds * 1000))

    def __repr__(self) -> str:
        return f"<RedisRegistry {self.node_id} {self.state.value} {len(self._local)} local>"

    # -- lifecycle -------------------------------------------------------------------

    async def start(self) -> None:
        """Connect, subscribe and register this node; raises
        :class:`RegistryUnavailable` if Redis cannot be reached."""
        if self.state is not LinkState.NEW:
            raise RuntimeError(f"start() in state {self.state.value}")
        import redis.asyncio as aioredis  # lazy: the in-memory path never needs redis

        timeout = max(0.5, self.lease_seconds / 3)

        def client(max_connections: int) -> redis.asyncio.Redis:
            # A plain pool behind our own FIFO semaphore (self._slots): under
            # a burst of routes redis-py's BlockingConnectionPool left waiters
            # unserved until its timeout although commands took milliseconds.
            return aioredis.Redis.from_pool(aioredis.ConnectionPool.from_url(
                self.url,
                max_connections=max_connections,
                socket_timeout=timeout,
                socket_connect_timeout=timeout,
                decode_responses=True,
            ))

        self._redis = client(self.max_connections - 1)
        self._slots = asyncio.Semaphore(self.max_connections - 2)  # the pool minus pub/sub
        self._lease_redis = client(1)
        for name, source in (
            ("claim", _CLAIM), ("release", _RELEASE), ("route", _ROUTE),
            ("heartbeat", _HEARTBEAT), ("reap", _REAP), ("sync", _SYNC), ("leave", _LEAVE),
        ):
            self._scripts[name] = self._redis.register_script(source)
        try:
            pubsub = await self._connect()
        except _redis_errors() as exc:
            await self._redis.aclose()
            await self._lease_redis.aclose()
            self.state = LinkState.CLOSED
            raise RegistryUnavailable(f"cannot reach Redis at {self.url}: {exc}") from exc
        self._set_state(LinkState.UP)
        self._tasks = [
            asyncio.create_task(self._keep_link(pubsub), name=f"redis-link-{self.node_id}"),
            asyncio.create_task(self._keep_lease(), name=f"redis-lease-{self.node_id}"),
            asyncio.create_task(self._send_routes(), name=f"redis-routes-{self.node_id}"),
        ]
        logger.info("%s registry up (lease %.1fs, reap bound %.1fs)", self._log, self.lease_seconds, self.reap_bound)

    async def close(self) -> None:
        """Stop; if Redis is reachable, this node's users leave at once."""
        if self.state is LinkState.CLOSED:
            return
        was_up = self.state is LinkState.UP
        self.state = LinkState.CLOSED
        for task in self._tasks:
            task.cancel()
        for task in self._tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task
        self._tasks = []
        self._fail_routes(self._routes)
        self._routes = []
        self._local.clear()
        if self._redis is not None:
            if was_up:
                try:
                    await asyncio.wait_for(self._scripts["leave"](
                        keys=[self._users_key, self._nodes_key, self._alive_key, self._owned_key],
                        args=[self.node_id, self._presence_channel],
                    ), self.lease_seconds)
                except (asyncio.TimeoutError, *_redis_errors()) as exc:
                    logger.warning("%s could not leave cleanly (%s); reaped within %.1fs",
                                   self._log, exc, self.reap_bound)
            await self._redis.aclose()
            self._redis = None
        if self._lease_redis is not None:
            await self._lease_redis.aclose()
            self._lease_redis = None

    # -- Registry --------------------------------------------------------------------

    def add_service(self, username: str, endpoint: Endpoint) -> None:
        self._services[username] = endpoint

    async def claim(self, username: str, endpoint: Endpoint) -> bool:
        if username in self._services or username in self._local:
            return False
        if self.state is not LinkState.UP:
            raise RegistryUnavailable(f"signaling store unreachable ({self.state.value}); try again shortly")
        async with self._lock:
            if username in self._local:
                return False
            try:
                taken, readded = await self._run("claim", 
                    keys=[self._users_key, self._nodes_key, self._alive_key, self._owned_key],
                    args=[username, self.node_id, self._lease_ms, self._presence_channel],
                )
            except _redis_errors() as exc:
                # Loss of the link itself is noticed by the channel reader and
                # the lease; a busy pool must not force a reconnect.
                raise RegistryUnavailable(f"claim failed: {exc}") from exc
            if not taken:
                return False
            self._local[username] = endpoint
        if readded:
            # This node had been reaped (its lease lapsed): the other local
            # users are gone from Redis too; reconnect and resync them.
            logger.warning("%s found itself reaped while claiming %r; resyncing", self._log, username)
            self._link_lost.set()
        return True

    async def release(self, username: str, endpoint: Endpoint) -> None:
        if self._local.get(username) is not endpoint:
            return
        del self._local[username]
        if self.state is not LinkState.UP:
            return  # the resync after reconnecting releases it in Redis
        try:
            await self._run("release", 
                keys=[self._users_key, self._owned_key],
                args=[username, self.node_id, self._presence_channel],
            )
        except _redis_errors() as exc:
            logger.info("%s release of %r deferred to resync: %s", self._log, username, exc)
            self._resync_wanted = True

    def replace(self, username: str, old: Endpoint, new: Endpoint) -> bool:
        # The claim in Redis names this node, not an endpoint: it stays.
        if self._local.get(username) is not old:
            return False
        self._local[username] = new
        return True

    async def users(self) -> list[str]:
        names: set[str] | None = None
        if self.state is LinkState.UP and self._redis is not None:
            try:
                async with self._slots:
                    names = set(await self._redis.hkeys(self._users_key))
            except _redis_errors() as exc:
                logger.info("%s users() from the presence mirror: %s", self._log, exc)
        if names is None:
            names = self._known | set(self._local)
        return list(self._services) + sorted(n for n in names if n not in self._services)

    def route_now(self, target: str, payload: dict[str, Any]) -> bool | None:
        endpoint = self._local.get(target) or self._services.get(target)
        if endpoint is None:
            return None if self.state is LinkState.UP else False
        self._deliver(endpoint, payload)
        return True

    async def route(self, target: str, payload: dict[str, Any]) -> bool:
        endpoint = self._services.get(target) or self._local.get(target)
        if endpoint is not None:
            self._deliver(endpoint, payload)
            return True
        if self.state is not LinkState.UP or len(self._routes) >= ROUTE_QUEUE:
            return False
        message = orjson.dumps({"to": target, "payload": payload})
        future: asyncio.Future[bool] = asyncio.get_running_loop().create_future()
        self._routes.append((target, message, future))
        self._routes_ready.set()
        return await future

    def subscribe(self, listener: PresenceListener) -> None:
        self._listeners.append(listener)

    def subscribe_departures(self, listener: DepartureListener) -> None:
        self._departure_listeners.append(listener)

    # -- routes to other nodes, batched -----------------------------------------------

    async def _send_routes(self) -> None:
        """One pipeline of route scripts per batch, batches one at a time:
        routes leave in order, and what piles up during a round trip goes in
        the next one."""
        while True:
            await self._routes_ready.wait()
            self._routes_ready.clear()
            while self._routes:
                size, end = 0, 0
                for _, message, _ in self._routes[:ROUTE_BATCH]:
                    size += len(message)
                    end += 1
                    if size >= ROUTE_BATCH_BYTES:
                        break
                batch = self._routes[:end]
                del self._routes[:end]
                try:
                    results = await self._route_batch(batch)
                except _redis_errors() as exc:
                    logger.info("%s %d routes failed: %s", self._log, len(batch), exc)
                    self._fail_routes(batch)
                    continue
                for (_, _, future), result in zip(batch, results):
                    if not future.done():
                        future.set_result(not isinstance(result, Exception) and int(result) > 0)

    async def _route_batch(self, batch: list[tuple[str, bytes, asyncio.Future[bool]]]) -> list[Any]:
        assert self._redis is not None
        args: list[Any] = [self.key_prefix]
        for target, message, _ in batch:
            args += (target, message)
        for attempt in range(2):
            try:
                async with self._slots:
                    return await self._redis.evalsha(self._route_sha, 1, self._users_key, *args)
            except Exception as exc:
                if attempt == 0 and _is_noscript(exc):
                    # Redis restarted and lost its script cache: load it, resend.
                    async with self._slots:
                        await self._redis.script_load(_ROUTE)
                    continue
                raise
        raise AssertionError("unreachable")

    @staticmethod
    def _fail_routes(batch: list[tuple[str, bytes, asyncio.Future[bool]]]) -> None:
        for _, _, future in batch:
            if not future.done():
                future.set_result(False)

    # -- the link to Redis -------------------------------------------------------------

    async def _run(self, script: str, *, keys: list[str], args: list[Any]) -> Any:
        async with self._slots:
            return await self._scripts[script](keys=keys, args=args)

    async def _connect(self) -> Any:
        """Subscribe, then make Redis and the presence mirror agree with this
        node. Subscribing first means no change published after the snapshot
        is missed (applying a change twice is harmless)."""
        assert self._redis is not None
        pubsub = self._redis.pubsub(ignore_subscribe_messages=True)
        try:
            await pubsub.subscribe(self._node_channel, self._presence_channel)
            await self._resync()
        except BaseException:
            with contextlib.suppress(Exception):
                await pubsub.aclose()
            raise
        self._link_lost.clear()
        return pubsub

    async def _resync(self) -> None:
        assert self._redis is not None
        async with self._lock:
            self._resync_wanted = False
            lost = await self._run("sync", 
                keys=[self._users_key, self._nodes_key, self._alive_key, self._owned_key],
                args=[self.node_id, self._lease_ms, self._presence_channel, *sorted(self._local)],
            )
            for name in lost:
                endpoint = self._local.pop(name, None)
                if endpoint is not None:
                    logger.warning("%s %r was claimed elsewhere while cut off: presence lost", self._log, name)
                    self._deliver(endpoint, {
                        "type": "error",
                        "code": "presence-lost",
                        "message": f"{name!r} was taken by another login while the server was "
                                   "cut off from the signaling store; log in again",
                    })
            async with self._slots:
                snapshot = set(await self._redis.hkeys(self._users_key))
        for name in sorted(self._known - snapshot):
            self._apply_presence(name, False)
        for name in sorted(snapshot - self._known):
            self._apply_presence(name, True)

    async def _keep_link(self, pubsub: Any) -> None:
        """Read the node and presence channels; on failure reconnect with
        capped exponential backoff, then tell local users what was lost."""
        loop = asyncio.get_running_loop()
        down_since: float | None = None
        backoff = 0.05
        while True:
            if pubsub is not None:
                if down_since is not None:
                    self._tell_interrupted(loop.time() - down_since)
                    down_since = None
                self._set_state(LinkState.UP)
                backoff = 0.05
                try:
                    await self._read_until_lost(pubsub)
                except _redis_errors() as exc:
                    logger.warning("%s lost Redis: %s", self._log, exc or type(exc).__name__)
                finally:
                    with contextlib.suppress(Exception):
                        await pubsub.aclose()
                pubsub = None
                down_since = loop.time()
                self._set_state(LinkState.DOWN)
            await asyncio.sleep(backoff)  # backoff between attempts, not a wait for an event
            backoff = min(backoff * 2, self.reconnect_max)
            try:
                pubsub = await self._connect()
                logger.info("%s reconnected to Redis after %.1fs", self._log, loop.time() - down_since)
            except _redis_errors() as exc:
                logger.debug("%s reconnect failed: %s", self._log, exc)

    async def _read_until_lost(self, pubsub: Any) -> None:
        reader = asyncio.ensure_future(self._read(pubsub))
        lost = asyncio.ensure_future(self._link_lost.wait())
        try:
            await asyncio.wait({reader, lost}, return_when=asyncio.FIRST_COMPLETED)
        finally:
            for task in (reader, lost):
                task.cancel()
            for task in (reader, lost):
                with contextlib.suppress(asyncio.CancelledError):
                    await task  # re-raises the reader's error, if it had one
        if lost.done() and not lost.cancelled():
            logger.warning("%s link declared lost; reconnecting", self._log)

    async def _read(self, pubsub: Any) -> None:
        async for message in pubsub.listen():
            if message.get("type") != "message":
                continue
            channel, data = message["channel"], message["data"]
            if channel == self._node_channel:
                self._on_node_message(data)
            elif channel == self._presence_channel:
                self._on_presence_message(data)

    async def _keep_lease(self) -> None:
        """Renew this node's lease and reap expired ones, every lease / 3."""
        period = self.lease_seconds / 3
        while True:
            await asyncio.sleep(period)  # the lease period itself, not a wait for an event
            if self.state is not LinkState.UP:
                continue
            try:
                readded = await self._scripts["heartbeat"](
                    keys=[self._nodes_key, self._alive_key], args=[self.node_id, self._lease_ms],
                    client=self._lease_redis,
                )
                if readded:
                    logger.warning("%s was dropped from the node set (lease lapsed or Redis lost data)", self._log)
                    self._link_lost.set()
                    continue
                reaped = await self._scripts["reap"](
                    keys=[self._nodes_key, self._users_key], args=[self.key_prefix, self._presence_channel],
                    client=self._lease_redis,
                )
                for node in reaped:
                    logger.warning("%s reaped node %s (lease expired)", self._log, node)
            except _redis_errors() as exc:
                logger.warning("%s lease renewal failed: %s", self._log, exc)
                self._link_lost.set()
                continue
            if self._resync_wanted:
                try:
                    await self._resync()
                except _redis_errors() as exc:
                    logger.info("%s resync failed, will retry: %s", self._log, exc)
                    self._resync_wanted = True

    # -- incoming --------------------------------------------------------------------

    def _on_node_message(self, data: str) -> None:
        """A batch of envelopes (a JSON array, in order), or one envelope."""
        try:
            decoded = orjson.loads(data)
        except ValueError as exc:
            logger.warning("%s dropped a malformed node message: %s", self._log, exc)
            return
        for message in decoded if isinstance(decoded, list) else (decoded,):
            try:
                target, payload = message["to"], message["payload"]
                if not isinstance(target, str) or not isinstance(payload, dict):
                    raise TypeError("to must be a string and payload an object")
            except (KeyError, TypeError) as exc:
                logger.warning("%s dropped a malformed node message: %s", self._log, exc)
                continue
            endpoint = self._local.get(target)
            if endpoint is None:
                logger.debug("%s %r left before a message reached it", self._log, target)
                continue
            self._deliver(endpoint, payload)

    def _on_presence_message(self, data: str) -> None:
        try:
            message = json.loads(data)
            user, online = message["user"], message["online"]
            if not isinstance(user, str) or not isinstance(online, bool):
                raise TypeError("user must be a string and online a boolean")
        except (ValueError, KeyError, TypeError) as exc:
            logger.warning("%s dropped a malformed presence message: %s", self._log, exc)
            return
        self._apply_presence(user, online)
        if not online and user not in self._local:
            for departed in self._departure_listeners:
                try:
                    departed(user)
                except Exception:  # one broken listener must not stop the others
                    logger.exception("%s departure listener failed", self._log)

    def _apply_presence(self, user: str, online: bool) -> None:
        """Update the mirror; listeners hear only actual changes."""
        if online == (user in self._known):
            return
        (self._known.add if online else self._known.discard)(user)
        for listener in self._listeners:
            try:
                listener(user, online)
            except Exception:  # one broken listener must not stop the others
                logger.exception("%s presence listener failed", self._log)

    def _deliver(self, endpoint: Endpoint, payload: dict[str, Any]) -> None:
        try:
            endpoint.deliver(payload)
        except Exception:  # one failing endpoint must not stop the channel reader
            logger.exception("%s endpoint %r failed to take a message", self._log, endpoint)

    def _tell_interrupted(self, seconds: float) -> None:
        notice = {
            "type": "error",
            "code": "signaling-interrupted",
            "seconds": round(seconds, 1),
            "message": f"the server lost its signaling store for {seconds:.1f}s: messages to users "
                       "on other servers in that time were not delivered; presence has been refreshed",
        }
        for endpoint in list(self._local.values()):
            self._deliver(endpoint, notice)

    def _set_state(self, state: LinkState) -> None:
        if self.state is LinkState.CLOSED or state is self.state:
            return
        logger.info("%s link %s -> %s", self._log, self.state.value, state.value)
        self.state = state


def _is_noscript(result: Any) -> bool:
    import redis.exceptions

    return isinstance(result, redis.exceptions.NoScriptError)


def _redis_errors() -> tuple[type[BaseException], ...]:
    """What a failed Redis call raises (redis is imported lazily)."""
    import redis.exceptions

    return (redis.exceptions.RedisError, OSError, asyncio.TimeoutError)
