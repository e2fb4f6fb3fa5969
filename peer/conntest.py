"""Connection tests: a short-lived aiortc peer that echoes data-channel
messages, for the page's "Test my connection".

A test is what a bot call would be on the network (the same ICE servers,
``--rtc-ports``, ``--announce-address`` and candidate policy), without media,
recording or anything on disk: the browser offers a data channel, the peer
answers, echoes every message it receives on any data channel back
verbatim, and reports the selected candidate pair and its round-trip time.
Each test ends when asked to, or by itself after :data:`LIFETIME` seconds;
at most ``limit`` run at once, so a client cannot make the server hold more
than that many peer connections for it.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import secrets
import time
from typing import Any

from aiortc import RTCPeerConnection, RTCSessionDescription

from media.errors import CallbotError
from peer import compat
from peer.call import MAX_CANDIDATES, BadOffer, check_offer
from peer.config import PeerConfig
from peer.ice import candidate_policy, rtc_configuration
from peer.quality import RTT_TIMEOUT
from peer.sdp import announce_addresses, filter_offer_candidates

logger = logging.getLogger(__name__)

#: Seconds a test lives at most.
LIFETIME = 30.0
#: Tests running at once, over all clients.
MAX_TESTS = 4
#: Seconds between RTT measurements while connected.
RTT_INTERVAL = 2.0


class TestsBusy(CallbotError):
    """Every slot is taken; ``retry_after`` seconds until one frees."""

    def __init__(self, limit: int, retry_after: int) -> None:
        super().__init__(f"{limit} connection tests running; retry in {retry_after} s")
        self.retry_after = retry_after


class ConnectionTest:
    """One browser's test: a peer connection that echoes data-channel messages."""

    __test__ = False  # not a pytest class, despite its name

    def __init__(self, config: PeerConfig, owner: str | None) -> None:
        self.id = secrets.token_urlsafe(16)
        self.owner = owner
        self.config = config
        self.started = time.monotonic()
        self.pc = RTCPeerConnection(rtc_configuration(config.ice, config.turn))
        self.rtt: float | None = None
        self.closed = asyncio.Event()
        self._tasks: set[asyncio.Task[Any]] = set()
        self.pc.on("datachannel", self._on_channel)
        self.pc.on("connectionstatechange", self._on_state)

    @property
    def expires_in(self) -> float:
        return max(0.0, LIFETIME - (time.monotonic() - self.started))

    async def answer(self, offer_sdp: str) -> str:
        """The answer to a data-channel-only offer; :class:`peer.call.BadOffer`
        or :class:`peer.compat.PortsExhausted` otherwise."""
        kinds, _ = check_offer(offer_sdp)
        if kinds != frozenset({"application"}):
            raise BadOffer("a connection test offers a data channel only, no audio or video")
        offer_sdp, _, dropped = filter_offer_candidates(offer_sdp, candidate_policy(self.config.ice), MAX_CANDIDATES)
        if dropped:
            logger.info("connection test %s: candidates dropped: %s", self.id[:6], ", ".join(dropped[:8]))
        await self.pc.setRemoteDescription(RTCSessionDescription(sdp=offer_sdp, type="offer"))
        with compat.rtc_port_range(self.config.ice.rtc_ports):
            await self.pc.setLocalDescription(await self.pc.createAnswer())
        self._spawn(self._expire())
        return announce_addresses(self.pc.localDescription.sdp, self.config.ice.announce_addresses)

    def status(self) -> dict[str, Any]:
        pair = compat.selected_pair(self.pc)
        selected = None
        if pair is not None:
            selected = {"local": pair["local"], "remote": pair["remote"], "protocol": pair["protocol"],
                        "rtt": None if self.rtt is None else round(self.rtt, 4)}
        return {"state": self.pc.connectionState, "selected": selected}

    def _on_channel(self, channel: Any) -> None:
        def echo(message: Any) -> None:
            # Verbatim: text comes back as text, bytes as bytes.
            if channel.readyState == "open":
                with contextlib.suppress(Exception):
                    channel.send(message)

        channel.on("message", echo)

    async def _on_state(self) -> None:
        state = self.pc.connectionState
        logger.info("connection test %s: %s", self.id[:6], state)
        if state == "connected":
            self._spawn(self._measure())
        elif state in ("failed", "closed"):
            self._spawn(self.close())

    async def _measure(self) -> None:
        while self.pc.connectionState == "connected":
            rtt = await compat.ice_rtt(self.pc, RTT_TIMEOUT)
            if rtt is not None:
                self.rtt = rtt
            await asyncio.sleep(RTT_INTERVAL)

    async def _expire(self) -> None:
        await asyncio.sleep(self.expires_in)
        await self.close()

    def _spawn(self, coro: Any) -> None:
        task = asyncio.get_running_loop().create_task(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def close(self) -> None:
        """End the test and free its connection (idempotent)."""
        if self.closed.is_set():
            return
        self.closed.set()
        with contextlib.suppress(Exception):
            await self.pc.close()
        current = asyncio.current_task()
        for task in list(self._tasks):
            if task is not current:
                task.cancel()


class ConnectionTests:
    """The running tests, at most ``limit`` at once."""

    def __init__(self, config: PeerConfig, limit: int = MAX_TESTS) -> None:
        self.config = config
        self.limit = limit
        self.tests: dict[str, ConnectionTest] = {}
        self._tasks: set[asyncio.Task[None]] = set()

    async def start(self, offer_sdp: str, owner: str | None) -> tuple[ConnectionTest, str]:
        """A new test and its answer SDP; :class:`TestsBusy` when all slots are taken."""
        if len(self.tests) >= self.limit:
            soonest = min(t.expires_in for t in self.tests.values())
            raise TestsBusy(self.limit, max(1, int(soonest + 0.999)))
        test = ConnectionTest(self.config, owner)
        self.tests[test.id] = test  # holds its slot while answering
        task = asyncio.get_running_loop().create_task(self._forget_when_closed(test))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        try:
            answer = await test.answer(offer_sdp)
        except BaseException:
            await test.close()
            raise
        return test, answer

    async def _forget_when_closed(self, test: ConnectionTest) -> None:
        await test.closed.wait()
        self.tests.pop(test.id, None)

    def get(self, test_id: str, owner: str | None, admin: bool = False) -> ConnectionTest | None:
        test = self.tests.get(test_id)
        if test is None or test.closed.is_set():
            return None
        if not admin and test.owner != owner:
            return None  # another user's test does not exist for this one
        return test

    async def close(self) -> None:
        await asyncio.gather(*(t.close() for t in list(self.tests.values())))
        self.tests.clear()
        for task in list(self._tasks):
            task.cancel()
