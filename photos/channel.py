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

A call has at most ``limits.max_channels`` (1) ``photos`` channels open at
once: each channel is an assembler with its own photo in flight, so twenty
channels would be twenty photos in flight. A further one is closed at once
(``PhotoChannel.refused``); the photos in flight of a call are bounded over all
its channels and uploads by ``max_in_flight`` in any case.

The other direction (a bot sending the caller a photo): :meth:`PhotoChannel.send_photo`
sends ``photo-begin``, chunks paced by ``bufferedAmount`` and ``photo-end``,
and waits for the caller's ``photo-saved`` (whose size and SHA-256 must match)
or ``photo-error``. Those two replies, arriving on the channel, are routed to
the waiting send instead of the assembler.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import logging
from typing import TYPE_CHECKING, Any, Awaitable, Callable

from photos.errors import ERROR_CODES, BadMessage, HashMismatch, PeerError, PhotoError, StorageFailed, UnknownMime
from photos.image import ImageInfo
from photos.protocol import (
    MIME_TYPES,
    Event,
    PhotoAssembler,
    PhotoComplete,
    PhotoFailed,
    PhotoId,
    error_reply,
    saved_reply,
)
from photos.store import PhotoStore
from media import metrics

if TYPE_CHECKING:
    from aiortc import RTCDataChannel

__all__ = ["PHOTOS_LABEL", "PhotoChannel", "attach_photo_channel"]

logger = logging.getLogger(__name__)

PHOTOS_LABEL = "photos"
#: Chunks the bot sends: the RFC 8841 default max message size, which every
#: peer accepts whatever it advertises.
SEND_CHUNK = 64 * 1024
#: Keep at most this much queued in the channel while sending.
SEND_HIGH_WATER = 1 << 20

CheckPhoto = Callable[[PhotoComplete, ImageInfo], Awaitable[None]]
#: Told of each photo saved, after its photo-saved reply went out: (entry, bytes).
AfterSave = Callable[[dict[str, Any], bytes], None]


class PhotoChannel:
    """Serves the photos protocol on one data channel until it closes."""

    def __init__(
        self,
        channel: RTCDataChannel,
        store: PhotoStore,
        *,
        max_queue: int = 1024,
        max_buffered: int = 1 << 20,
        check: CheckPhoto | None = None,
        after_save: AfterSave | None = None,
    ) -> None:
        self.channel = channel
        self.store = store
        self.assembler = PhotoAssembler(store.limits, quota=store.quota)
        self._check = check
        self._after_save = after_save
        # Sends waiting for the peer's reply: id -> future of the reply.
        self._acks: dict[PhotoId, asyncio.Future[dict[str, Any]]] = {}
        self._send_lock = asyncio.Lock()
        self._max_buffered = max_buffered
        self._log = f"photos {store.directory.call_id} ch{channel.id}"
        self._queue: asyncio.Queue[Event] = asyncio.Queue(maxsize=max_queue)
        self._closed = False
        self._task = asyncio.get_running_loop().create_task(self._serve(), name=self._log)
        #: True when the call already had its photos channels: this one was closed.
        self.refused = store.open_channels >= store.limits.max_channels
        store.open_channels += 1
        channel.on("message", self._on_message)
        channel.on("close", self._on_close)
        if self.refused:
            logger.warning("%s: the call already has %d photos channel(s) open; closing this one",
                           self._log, store.open_channels - 1)
            self._shutdown("one photos channel per call")
            channel.close()
        elif channel.readyState == "closed":
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
        if isinstance(message, str) and self._acks and self._take_ack(message):
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
        self.store.open_channels -= 1
        logger.debug("%s: stopping: %s", self._log, why)
        self.channel.remove_listener("message", self._on_message)
        self.channel.remove_listener("close", self._on_close)
        self.assembler.close()  # releases the slot of a photo in flight
        for future in self._acks.values():
            if not future.done():
                future.set_exception(ConnectionError("the photos channel closed"))
        self._acks.clear()
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
                    if isinstance(event, PhotoFailed):
                        metrics.photo_refused(event.error.code)
                    self._send(error_reply(event.id, event.error))
            except Exception:  # never let one reply end the channel's service
                logger.exception("%s: answering %r failed", self._log, event)

    async def _save(self, photo: PhotoComplete) -> None:
        try:
            entry = await self.store.save(photo, source="datachannel", check=self._check)
        except PhotoError as exc:
            logger.info("%s: photo %r: %s", self._log, photo.id, exc.code)
            metrics.photo_refused(exc.code)
            self._send(error_reply(photo.id, exc))
        except Exception:
            photo.slot.release()
            logger.exception("%s: photo %r: saving failed", self._log, photo.id)
            self._send(error_reply(photo.id, StorageFailed("the server could not store the photo")))
        else:
            metrics.photo_saved("datachannel")
            self._send(saved_reply(photo.id, entry["size"], entry["sha256"]))
            if self._after_save is not None:
                self._after_save(entry, bytes(photo.data))

    def _send(self, reply: dict) -> None:
        if self.channel.readyState != "open":
            return
        if self.channel.bufferedAmount > self._max_buffered:
            logger.warning("%s: peer leaves %d bytes unread; closing", self._log, self.channel.bufferedAmount)
            self._shutdown("peer is not reading")
            self.channel.close()
            return
        self.channel.send(json.dumps(reply))


    # -- sending photos to the peer -----------------------------------------------

    def _take_ack(self, message: str) -> bool:
        """A photo-saved/photo-error for one of our sends: resolve it."""
        if len(message) > 4096:
            return False
        try:
            reply = json.loads(message)
        except ValueError:
            return False
        if not isinstance(reply, dict) or reply.get("type") not in ("photo-saved", "photo-error"):
            return False
        future = self._acks.pop(reply.get("id"), None)  # type: ignore[arg-type]
        if future is None:
            return False
        if not future.done():
            future.set_result(reply)
        return True

    async def send_photo(
        self, data: bytes, *, photo_id: PhotoId, mime: str, name: str = "", timeout: float = 30.0
    ) -> dict[str, Any]:
        """Send one photo and return the peer's ``photo-saved`` reply.

        Raises the :class:`PhotoError` the peer's ``photo-error`` names
        (``PeerError`` with its code if we do not know it), ``HashMismatch`` if
        the peer saved other bytes, ``TimeoutError``, or ``ConnectionError``
        when the channel closes first.
        """
        if mime not in MIME_TYPES:
            raise UnknownMime(f"mime: must be one of {', '.join(MIME_TYPES)}")
        if not data:
            raise BadMessage("a photo has at least one byte")
        sha256 = hashlib.sha256(data).hexdigest()
        async with self._send_lock:  # one photo at a time on the wire
            await self._wait_open(timeout)
            future: asyncio.Future[dict[str, Any]] = asyncio.get_running_loop().create_future()
            self._acks[photo_id] = future
            try:
                self.channel.send(json.dumps({
                    "type": "photo-begin", "id": photo_id, "name": name, "mime": mime,
                    "size": len(data), "sha256": sha256,
                }))
                view = memoryview(data)
                for start in range(0, len(data), SEND_CHUNK):
                    await self._drain()
                    self.channel.send(bytes(view[start:start + SEND_CHUNK]))
                self.channel.send(json.dumps({"type": "photo-end", "id": photo_id}))
                reply = await asyncio.wait_for(future, timeout)
            finally:
                self._acks.pop(photo_id, None)
        if reply["type"] == "photo-saved":
            if reply.get("size") != len(data) or reply.get("sha256") != sha256:
                raise HashMismatch("the peer saved other bytes than were sent")
            return reply
        code = str(reply.get("error") or "photo-error")
        message = str(reply.get("message") or code)
        error_class = ERROR_CODES.get(code)
        if error_class is not None and error_class.__init__ is PhotoError.__init__:
            raise error_class(message)
        error = PeerError(message)
        error.code = code  # type: ignore[misc]
        raise error

    async def _wait_open(self, timeout: float) -> None:
        if self.channel.readyState == "open":
            return
        if self.channel.readyState != "connecting" or self._closed:
            raise ConnectionError("the photos channel is closed")
        opened = asyncio.get_running_loop().create_future()

        def wake() -> None:
            if not opened.done():
                opened.set_result(None)

        self.channel.on("open", wake)
        self.channel.on("close", wake)
        try:
            await asyncio.wait_for(opened, timeout)
        finally:
            self.channel.remove_listener("open", wake)
            self.channel.remove_listener("close", wake)
        if self.channel.readyState != "open":
            raise ConnectionError("the photos channel closed before it opened")

    async def _drain(self) -> None:
        """Wait until the channel's send buffer is below the high-water mark."""
        if self._closed or self.channel.readyState != "open":
            raise ConnectionError("the photos channel closed")
        if self.channel.bufferedAmount <= SEND_HIGH_WATER:
            return
        low = asyncio.get_running_loop().create_future()

        def wake() -> None:
            if not low.done():
                low.set_result(None)

        self.channel.bufferedAmountLowThreshold = SEND_HIGH_WATER // 2
        self.channel.on("bufferedamountlow", wake)
        self.channel.on("close", wake)
        try:
            await low
        finally:
            self.channel.remove_listener("bufferedamountlow", wake)
            self.channel.remove_listener("close", wake)


def attach_photo_channel(
    channel: RTCDataChannel,
    store: PhotoStore,
    *,
    max_queue: int = 1024,
    max_buffered: int = 1 << 20,
    check: CheckPhoto | None = None,
    after_save: AfterSave | None = None,
) -> PhotoChannel:
    """Serve the photos protocol on ``channel`` (call from the event loop).

    The bot calls this from its ``datachannel`` handler for a channel whose
    label is :data:`PHOTOS_LABEL`, with the call's :class:`PhotoStore`, and
    may ``await photo_channel.wait_closed()`` when tearing the call down.
    """
    return PhotoChannel(
        channel, store, max_queue=max_queue, max_buffered=max_buffered, check=check, after_save=after_save
    )
