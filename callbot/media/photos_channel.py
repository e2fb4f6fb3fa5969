"""The photos protocol on an aiortc ``RTCDataChannel``: a thin adapter.

Messages go through :class:`PhotoAssembler` as they arrive (hashing and
copying a 256 KiB chunk costs well under a millisecond, so that stays on the
loop). Its events go into one bounded queue per channel, and one task per
channel answers them strictly in order, awaiting ``PhotoStore.save`` for
complete photos, so a ``photo-saved`` never overtakes an earlier reply.

The channel's ``close`` event (or :meth:`PhotoChannel.aclose`) stops it all:
the photo in flight is dropped, queued photos release their quota slots, the
task is cancelled and awaited by :meth:`PhotoChannel.wait_closed`.

A peer that gets more than ``max_queue`` replies ahead of us, or leaves more
than ``max_buffered`` bytes of replies unread, is flooding: the channel is
closed (the one case where an error does not leave the channel usable).
"""

from __future__ import annotations

import asyncio
import json
import logging
from typing import TYPE_CHECKING

from .photos_errors import PhotoError, StorageFailed
from .photos_protocol import (
    Event,
    PhotoAssembler,
    PhotoComplete,
    PhotoFailed,
    error_reply,
    saved_reply,
)
from .photos_store import PhotoStore

if TYPE_CHECKING:
    from aiortc import RTCDataChannel

__all__ = ["PHOTOS_LABEL", "PhotoChannel", "attach_photo_channel"]

logger = logging.getLogger(__name__)

PHOTOS_LABEL = "photos"


class PhotoChannel:
    """Serves the photos protocol on one data channel until it closes."""

    def __init__(
        self,
        channel: RTCDataChannel,
        store: PhotoStore,
        *,
        max_queue: int = 1024,
        max_buffered: int = 1 << 20,
    ) -> None:
        self.channel = channel
        self.store = store
        self.assembler = PhotoAssembler(store.limits, quota=store.quota)
        self._max_buffered = max_buffered
        self._log = f"photos {store.directory.call_id} ch{channel.id}"
        self._queue: asyncio.Queue[Event] = asyncio.Queue(maxsize=max_queue)
        self._closed = False
        self._task = asyncio.get_running_loop().create_task(self._serve(), name=self._log)
        channel.on("message", self._on_message)
        channel.on("close", self._on_close)
        if channel.readyState == "closed":
            self._shutdown("channel already closed")

    @property
    def closed(self) -> bool:
        return self._closed

    async def wait_closed(self) -> None:
        """Return once the channel's work has stopped (after its close)."""
        try:
            await asyncio.shield(self._task)
        except asyncio.CancelledError:
            if not self._task.cancelled():
                raise  # we were cancelled, not the task

    async def aclose(self) -> None:
        """Stop serving the channel (the caller closes the channel itself)."""
        self._shutdown("closed by the server")
        await self.wait_closed()

    # -- channel events (synchronous, on the loop) -------------------------

    def _on_message(self, message: str | bytes) -> None:
        if self._closed:
            return
        events = self.assembler.receive(message)
        for i, event in enumerate(events):
            try:
                self._queue.put_nowait(event)
            except asyncio.QueueFull:
                for dropped in events[i:]:
                    if isinstance(dropped, PhotoComplete):
                        dropped.slot.release()
                logger.warning("%s: %d replies outstanding; closing", self._log, self._queue.qsize())
                self._shutdown("peer is flooding")
                self.channel.close()
                return

    def _on_close(self) -> None:
        self._shutdown("channel closed")

    def _shutdown(self, why: str) -> None:
        if self._closed:
            return
        self._closed = True
        logger.debug("%s: stopping: %s", self._log, why)
        self.channel.remove_listener("message", self._on_message)
        self.channel.remove_listener("close", self._on_close)
        self.assembler.close()  # releases the slot of a photo in flight
        while not self._queue.empty():
            event = self._queue.get_nowait()
            if isinstance(event, PhotoComplete):
                event.slot.release()
        self._task.cancel()

    # -- the one task per channel -----------------------------------------

    async def _serve(self) -> None:
        while True:
            event = await self._queue.get()
            try:
                if isinstance(event, PhotoComplete):
                    await self._save(event)
                else:
                    # A failed photo is worth a line; a stray message is not
                    # (a misbehaving peer could fill the log with them).
                    level = logging.INFO if isinstance(event, PhotoFailed) else logging.DEBUG
                    logger.log(level, "%s: photo %r: %s", self._log, event.id, event.error.code)
                    self._send(error_reply(event.id, event.error))
            except Exception:  # never let one reply end the channel's service
                logger.exception("%s: answering %r failed", self._log, event)

    async def _save(self, photo: PhotoComplete) -> None:
        try:
            entry = await self.store.save(photo, source="datachannel")
        except PhotoError as exc:
            logger.info("%s: photo %r: %s", self._log, photo.id, exc.code)
            self._send(error_reply(photo.id, exc))
        except Exception:
            photo.slot.release()
            logger.exception("%s: photo %r: saving failed", self._log, photo.id)
            self._send(error_reply(photo.id, StorageFailed("the server could not store the photo")))
        else:
            self._send(saved_reply(photo.id, entry["size"], entry["sha256"]))

    def _send(self, reply: dict) -> None:
        if self.channel.readyState != "open":
            return
        if self.channel.bufferedAmount > self._max_buffered:
            logger.warning("%s: peer leaves %d bytes unread; closing", self._log, self.channel.bufferedAmount)
            self._shutdown("peer is not reading")
            self.channel.close()
            return
        self.channel.send(json.dumps(reply))


def attach_photo_channel(
    channel: RTCDataChannel,
    store: PhotoStore,
    *,
    max_queue: int = 1024,
    max_buffered: int = 1 << 20,
) -> PhotoChannel:
    """Serve the photos protocol on ``channel`` (call from the event loop).

    The bot calls this from its ``datachannel`` handler for a channel whose
    label is :data:`PHOTOS_LABEL`, with the call's :class:`PhotoStore`, and
    may ``await photo_channel.wait_closed()`` when tearing the call down.
    """
    return PhotoChannel(channel, store, max_queue=max_queue, max_buffered=max_buffered)
