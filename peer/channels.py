"""Application data channels: every label but ``photos``, for a bot's messages.

Messages the caller sends become :meth:`Bot.on_message` events (in order,
through the call's bounded event queue). :meth:`AppChannels.send` picks the
channel by label, else the first one the caller opened, else opens ``chat``
itself (the data section must be in the offer). Messages sent before a
channel is open wait for it, at most :data:`MAX_WAITING` of them.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Any

from media.errors import InvalidState
from photos import PHOTOS_LABEL

if TYPE_CHECKING:
    from peer.call import CallSession

logger = logging.getLogger(__name__)

DEFAULT_LABEL = "chat"
#: Messages held for a channel that is still opening.
MAX_WAITING = 256
#: Largest message the bot may send: aiortc's and browsers' SCTP max message size.
MAX_MESSAGE_BYTES = 256 * 1024


class AppChannels:
    def __init__(self, session: CallSession) -> None:
        self.session = session
        self.channels: dict[str, Any] = {}
        self._waiting: dict[str, list[str | bytes]] = {}
        self.received = 0
        self.sent = 0

    def on_datachannel(self, channel: Any) -> None:
        """A channel the caller opened (``pc.on("datachannel")``)."""
        if channel.label == PHOTOS_LABEL:
            self.session.media.on_photos_channel(channel)
            return
        self._add(channel)

    def _add(self, channel: Any) -> None:
        label = channel.label
        if label in self.channels:
            # A second channel with the same label: the newest one carries it.
            logger.info("call %s: a second %r channel replaces the first", self.session.id, label)
        self.channels[label] = channel

        def on_message(message: str | bytes) -> None:
            self.received += 1
            self.session.events.put("on_message", self._hook, message, label)

        def on_open() -> None:
            for message in self._waiting.pop(label, []):
                self._send_now(channel, message)

        channel.on("message", on_message)
        channel.on("open", on_open)
        if channel.readyState == "open":
            on_open()

    async def _hook(self, message: str | bytes, label: str) -> None:
        await self.session.bot.on_message(self.session.call, message, label)

    def send(self, message: str | bytes, label: str | None = None) -> None:
        if not isinstance(message, (str, bytes)):
            raise TypeError("a message is str or bytes")
        size = len(message.encode() if isinstance(message, str) else message)
        if size > MAX_MESSAGE_BYTES:
            raise ValueError(f"a message is at most {MAX_MESSAGE_BYTES} bytes, this one {size}")
        channel = self._channel(label)
        if channel.readyState == "open":
            self._send_now(channel, message)
        elif channel.readyState == "connecting":
            waiting = self._waiting.setdefault(channel.label, [])
            if len(waiting) >= MAX_WAITING:
                raise InvalidState("send (too many messages wait for the channel to open)", "connecting")
            waiting.append(message)
        else:
            raise InvalidState(f"send on channel {channel.label!r}", channel.readyState)

    def _channel(self, label: str | None) -> Any:
        if label is not None and label in self.channels:
            return self.channels[label]
        if label is None:
            for channel in self.channels.values():
                if channel.readyState in ("connecting", "open"):
                    return channel
        pc = self.session.pc
        if pc.sctp is None:
            raise InvalidState("send (the caller offered no data channels)", "no-data")
        channel = pc.createDataChannel(label or DEFAULT_LABEL, ordered=True)
        self._add(channel)
        return channel

    def _send_now(self, channel: Any, message: str | bytes) -> None:
        channel.send(message)
        self.sent += 1

    def stats(self) -> dict[str, int]:
        return {"received": self.received, "sent": self.sent}
