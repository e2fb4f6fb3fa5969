"""The bot: a username that is always online and answers every offer with a
real aiortc RTCPeerConnection.

The bot is a signaling :class:`~callbot.signaling.registry.Endpoint`: the
registry delivers it the messages users route to its name, and it routes its
answers back through the same registry, so a bot call looks to the signaling
exactly like a call between two users.

A call is identified on the wire by the (user, bot) pair, so each user has at
most one call with the bot at a time; a second offer while one is active is
refused with ``already-in-call``. ``--max-calls`` bounds the total.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import shutil
from pathlib import Path
from typing import Any

from ..config import Config
from ..signaling.protocol import IceCandidate
from ..signaling.registry import Registry
from ..storage import create_call_directory
from .call import BotCall
from . import sctp_speedup
from .ice import restrict_host_addresses
from .manifest import mark_interrupted

logger = logging.getLogger(__name__)


def free_bytes(path: Path) -> int:
    path.mkdir(parents=True, exist_ok=True)
    return shutil.disk_usage(path).free


class Bot:
    def __init__(self, config: Config, registry: Registry) -> None:
        self.config = config
        self.name = config.bot_name
        self.registry = registry
        self.calls: dict[str, BotCall] = {}
        self._tasks: set[asyncio.Task[Any]] = set()
        self._closed = False
        restrict_host_addresses(config.ice.addresses)
        sctp_speedup.install()
        interrupted = mark_interrupted(config.calls_dir)
        if interrupted:
            logger.warning("marked %d calls interrupted by a crash: %s", len(interrupted), ", ".join(interrupted))

    # -- Endpoint ----------------------------------------------------------------

    def deliver(self, payload: dict[str, Any]) -> None:
        sender = payload.get("username")
        kind = payload.get("type")
        if not isinstance(sender, str):
            return
        if kind == "offer":
            self._spawn(self._on_offer(sender, payload["offer"]["sdp"]))
        elif kind == "candidate":
            call = self.calls.get(sender)
            if call is not None:
                init = payload.get("candidate")
                candidate = None if init is None else IceCandidate(
                    init["candidate"], init.get("sdpMid"), init.get("sdpMLineIndex"),
                    init.get("usernameFragment"),
                )
                self._spawn(call.add_candidate(candidate))
        elif kind == "close":
            call = self.calls.get(sender)
            if call is not None:
                self._spawn(call.end("caller-closed"))
        elif kind == "answer":
            self._send(sender, {"type": "error", "code": "unexpected-answer",
                                "message": "the bot never sends offers"})

    # -- calls ---------------------------------------------------------------------

    async def _on_offer(self, caller: str, offer_sdp: str) -> None:
        if self._closed:
            self._error(caller, "shutting-down", "the server is shutting down")
            return
        previous = self.calls.get(caller)
        if previous is not None and previous.ending:
            # A hang-up still being finalized: the new call waits for it.
            with contextlib.suppress(asyncio.TimeoutError):
                await asyncio.wait_for(previous.ended.wait(), 10)
        if caller in self.calls:
            self._error(caller, "already-in-call", "you already have a call with the bot; close it first")
            return
        if len(self.calls) >= self.config.bot.max_calls:
            self._error(caller, "too-many-calls", f"the bot is in {len(self.calls)} calls, its limit; try later")
            return
        floor = self.config.security.min_free_bytes
        if floor and await asyncio.to_thread(free_bytes, self.config.data_dir) < floor:
            logger.warning("refusing a call from %s: less than %d bytes free", caller, floor)
            self._error(caller, "disk-full", "the server is low on disk space and cannot record; try later")
            return
        try:
            directory = await asyncio.to_thread(create_call_directory, self.config.calls_dir)
        except OSError as exc:
            logger.error("cannot create a call directory: %s", exc)
            self._error(caller, "storage-unavailable", "the server cannot store calls right now")
            return
        call = BotCall(
            self.config, caller, directory,
            send=lambda message: self._send(caller, message),
            on_ended=self._forget,
        )
        self.calls[caller] = call
        logger.info("call %s: offer from %s", call.id, caller)
        try:
            await call.answer(offer_sdp)
        except Exception as exc:  # a bad SDP or an aiortc failure ends this call only
            logger.warning("call %s: cannot answer: %s", call.id, exc)
            call.manifest.errors.append(f"answer failed: {exc}")
            self._error(caller, "bad-offer", f"the offer could not be answered: {exc}")
            await call.end("bad-offer", notify=False)

    def _forget(self, call: BotCall) -> None:
        if self.calls.get(call.caller) is call:
            del self.calls[call.caller]

    def _send(self, target: str, message: dict[str, Any]) -> None:
        message = {**message, "username": self.name}
        self._spawn(self.registry.route(target, message))

    def _error(self, target: str, code: str, text: str) -> None:
        self._send(target, {"type": "error", "code": code, "message": text})

    def _spawn(self, coro: Any) -> None:
        task = asyncio.ensure_future(coro)
        self._tasks.add(task)
        task.add_done_callback(self._done)

    def _done(self, task: asyncio.Task[Any]) -> None:
        self._tasks.discard(task)
        if not task.cancelled() and task.exception() is not None:
            logger.error("bot task failed", exc_info=task.exception())

    async def close(self) -> None:
        """End every call (recordings finalized), then stop."""
        if self._closed:
            return
        self._closed = True
        await asyncio.gather(*(c.end("server-shutdown") for c in list(self.calls.values())))
        for task in list(self._tasks):
            task.cancel()
        for task in list(self._tasks):
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task
