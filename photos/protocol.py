"""The photo transfer protocol as a pure state machine (no I/O, no event loop).

Wire format (a contract outside clients depend on), on a data channel labelled
``photos`` (reliable, ordered)::

    -> {"type":"photo-begin","id":ID,"name":NAME,"mime":MIME,"size":BYTES,"sha256":HEX}
    -> binary chunk, each at most the negotiated max message size (256 KiB)
    -> ...
    -> {"type":"photo-end","id":ID}
    <- {"type":"photo-saved","id":ID,"size":BYTES,"sha256":HEX}
    <- {"type":"photo-error","id":ID|null,"error":CODE,"message":TEXT}

:class:`PhotoAssembler` takes each message as it came off the channel (``str``
or ``bytes``) and returns events: :class:`PhotoComplete` (all bytes are here
and their size and hash match; the I/O shell still checks the image decodes
and then answers ``photo-saved``), :class:`PhotoFailed` (a photo started by a
``photo-begin`` ended in an error) and :class:`MessageRejected` (a message that
belongs to no photo was refused). The shell turns the last two into
``photo-error`` replies with :func:`error_reply`.

Rules the spec leaves open, decided here:

* Every ``photo-begin`` message, valid or not, gets exactly one outcome:
  ``PhotoComplete`` or ``PhotoFailed``. Other replies carry ``MessageRejected``.
* A ``photo-begin`` that arrives while a photo is being received aborts the
  old photo (``interrupted``, addressed to the old id) and then starts the new
  one: a client that gave up on a photo need not send anything else first.
* Once a photo has failed, the rest of its chunks and its ``photo-end`` are
  dropped silently, so one bad photo costs one reply, not one per chunk. The
  same holds for a run of chunks outside any photo: the first one is answered
  ``unexpected-chunk`` (id null), the run is then dropped up to the next
  ``photo-end`` or ``photo-begin``.
* A photo whose ``photo-begin`` had no readable id is dropped up to the next
  ``photo-end`` whatever its id, readable or not.
* A ``photo-end`` with an id other than the current photo's is answered
  ``id-mismatch`` under *its* id; the current photo carries on.
* Bytes are never buffered past the declared size: the chunk that would
  overflow fails the photo at once (``size-mismatch``).
* The declared size is a claim, not a reservation: the buffer grows as bytes
  arrive, and every byte held counts against the call's photos in flight
  (``max_in_flight``) and the process's :class:`ByteBudget` (shared by every
  call and upload), so a peer that declares 20 MB and sends nothing costs
  nothing, and many peers cannot together hold more than the budget. A chunk
  that does not fit fails its photo with ``busy``.
"""

from __future__ import annotations

import enum
import hashlib
import json
import threading
from dataclasses import dataclass, field
from typing import Callable, Union

from media.errors import InvalidState
from photos.errors import (
    BadMessage,
    Busy,
    ChunkTooLarge,
    HashMismatch,
    IdMismatch,
    Interrupted,
    PhotoError,
    SizeMismatch,
    TooLarge,
    TooManyChunks,
    TooManyPhotos,
    UnexpectedChunk,
    UnexpectedEnd,
    UnknownMime,
)

__all__ = [
    "MIME_TYPES",
    "PhotoId",
    "PhotoLimits",
    "ByteBudget",
    "SERVER_BUDGET",
    "PhotoQuota",
    "PhotoSlot",
    "PhotoBegin",
    "PhotoEnd",
    "PhotoChunk",
    "InvalidMessage",
    "parse_message",
    "validate_id",
    "validate_sha256",
    "State",
    "PhotoComplete",
    "PhotoFailed",
    "MessageRejected",
    "PhotoAssembler",
    "saved_reply",
    "error_reply",
]

# mime -> file extension. The spec's closed list; nothing else is stored.
MIME_TYPES: dict[str, str] = {
    "image/jpeg": ".jpg",
    "image/png": ".png",
    "image/webp": ".webp",
}

PhotoId = Union[str, int]

# JavaScript's Number.MAX_SAFE_INTEGER: ids a browser can round-trip exactly.
_MAX_SAFE_INTEGER = 2**53 - 1
_HEX = frozenset("0123456789abcdef")


@dataclass(frozen=True, kw_only=True)
class PhotoLimits:
    """Limits on what a peer may send. ``None`` switches a limit off."""

    # Bytes per photo. Spec: "default 20 MB"; read generously as 20 MiB so a
    # client that means either 20e6 or 20 * 2**20 fits.
    max_bytes: int | None = 20 * 1024 * 1024
    # Photos saved per call, over the data channel and HTTP together.
    max_photos: int | None = 100
    # One binary message. aiortc advertises a=max-message-size:262144, so a
    # conforming peer never sends more (RFC 8841 section 6).
    max_chunk_bytes: int | None = 256 * 1024
    # Chunk count: a photo may come in at most ceil(size / min_chunk_bytes)
    # + 4 messages, so a peer cannot make us pay per-message costs a million
    # times for one photo. Smaller chunks are fine as long as they average this.
    min_chunk_bytes: int | None = 1024
    # One JSON control message; real ones are a few hundred characters.
    max_text_chars: int = 4096
    # A string id, in characters.
    max_id_chars: int = 128
    # The client's name as kept in the manifest (longer ones are cut).
    max_name_chars: int = 255
    # Decoded pixels (width * height): a 20 MB PNG can claim 50000x50000.
    max_pixels: int | None = 120_000_000
    # Bytes a decode check may allocate (width x height x channels x bytes per
    # sample, as the header declares, at the reduced size we decode at): a
    # 900 KB PNG can declare 11000x11000 16-bit RGBA, about 1 GB decoded.
    max_decode_bytes: int | None = 64 * 1024 * 1024
    # Photos fully received on one channel and not yet saved; past this a new
    # photo-begin is answered ``busy``.
    max_unsaved: int = 4
    # Photos in flight in one call (being received or waiting to be saved),
    # over every channel and HTTP together; past this ``busy``. With the
    # growing buffers this bounds a call's memory to max_in_flight * max_bytes.
    max_in_flight: int = 6
    # ``photos`` data channels open at once in one call; others are closed.
    max_channels: int = 1
    # Free bytes the data directory keeps: a photo that would go below is
    # refused with ``disk-full`` before it is written. None: no floor.
    min_free_bytes: int | None = None

    def __post_init__(self) -> None:
        for name in ("max_bytes", "max_photos", "max_chunk_bytes", "min_chunk_bytes", "max_pixels",
                     "max_decode_bytes"):
            value = getattr(self, name)
            if value is not None and (type(value) is not int or value <= 0):
                raise ValueError(f"{name} must be a positive int or None, got {value!r}")
        for name in ("max_text_chars", "max_id_chars", "max_name_chars", "max_unsaved", "max_in_flight",
                     "max_channels"):
            value = getattr(self, name)
            if type(value) is not int or value <= 0:
                raise ValueError(f"{name} must be a positive int, got {value!r}")


class ByteBudget:
    """Bytes of photos held in memory by the whole process, every call and
    upload together. Thread-safe: slots are settled from worker threads too."""

    def __init__(self, capacity: int) -> None:
        self._lock = threading.Lock()
        self.capacity = capacity
        self.used = 0
        #: The most ever held at once (for tests and /metrics).
        self.peak = 0

    def take(self, n: int) -> bool:
        with self._lock:
            if self.used + n > self.capacity:
                return False
            self.used += n
            self.peak = max(self.peak, self.used)
            return True

    def give(self, n: int) -> None:
        with self._lock:
            self.used -= n

    def configure(self, capacity: int) -> None:
        """Set the capacity (``create_app`` does, from ``--max-photo-memory``)."""
        if type(capacity) is not int or capacity <= 0:
            raise ValueError(f"capacity must be a positive int, got {capacity!r}")
        with self._lock:
            self.capacity = capacity

    def __repr__(self) -> str:
        return f"ByteBudget(used={self.used}, capacity={self.capacity})"


#: The process's photo bytes in memory. One per process on purpose: memory is
#: a per-process resource, whatever number of apps or stores share it.
SERVER_BUDGET = ByteBudget(256 * 1024 * 1024)


class PhotoQuota:
    """The per-call photo count, shared by every channel and HTTP upload.

    A photo takes a :class:`PhotoSlot` when it starts; the slot is committed
    when the file is saved and released when the photo fails, so failed
    attempts do not use up the call's quota, and concurrent uploads cannot
    overshoot it. At most ``max_in_flight`` slots are reserved at once
    (``busy`` past it), and the bytes a slot holds count against ``budget``.
    """

    def __init__(
        self, max_photos: int | None, *, max_in_flight: int | None = None, budget: ByteBudget | None = None
    ) -> None:
        self.max_photos = max_photos
        self.max_in_flight = max_in_flight
        self.budget = budget if budget is not None else SERVER_BUDGET
        self.saved = 0
        self.reserved = 0

    def reserve(self) -> PhotoSlot:
        """A slot for one photo, or :class:`TooManyPhotos` / :class:`Busy`."""
        if self.max_photos is not None and self.saved + self.reserved >= self.max_photos:
            raise TooManyPhotos(f"this call already has its limit of {self.max_photos} photos")
        if self.max_in_flight is not None and self.reserved >= self.max_in_flight:
            raise Busy(f"{self.reserved} photos of this call are in flight; retry later")
        self.reserved += 1
        return PhotoSlot(self)

    def __repr__(self) -> str:
        return f"PhotoQuota(max_photos={self.max_photos}, saved={self.saved}, reserved={self.reserved})"


class PhotoSlot:
    """One reserved place in a :class:`PhotoQuota`; settle it exactly once.

    The bytes the photo holds in memory are taken from the quota's budget
    with :meth:`hold` as they arrive and given back when the slot settles.
    """

    __slots__ = ("_quota", "state", "held")

    def __init__(self, quota: PhotoQuota) -> None:
        self._quota = quota
        self.state = "reserved"
        self.held = 0

    @property
    def settled(self) -> bool:
        return self.state != "reserved"

    def hold(self, n: int) -> None:
        """Count ``n`` more bytes held for this photo; :class:`Busy` when the
        process's budget has no room (nothing is taken then)."""
        if self.state != "reserved":
            raise InvalidState("hold", self.state)
        if not self._quota.budget.take(n):
            raise Busy("the server holds too many photo bytes right now; retry later")
        self.held += n

    def _give_back(self) -> None:
        if self.held:
            self._quota.budget.give(self.held)
            self.held = 0

    def commit(self) -> None:
        """The photo is saved: it counts against the quota for good."""
        if self.state != "reserved":
            raise InvalidState("commit", self.state)
        self.state = "committed"
        self._quota.reserved -= 1
        self._quota.saved += 1
        self._give_back()

    def release(self) -> None:
        """The photo failed: give the place back. Idempotent."""
        if self.state == "reserved":
            self.state = "released"
            self._quota.reserved -= 1
            self._give_back()

    def __repr__(self) -> str:
        return f"PhotoSlot({self.state})"


# ---------------------------------------------------------------------------
# Messages: parsed once, at the edge, into frozen dataclasses.


def validate_id(value: object, limits: PhotoLimits) -> PhotoId:
    """A client id: a non-empty printable string or a JS-safe integer."""
    if type(value) is int:  # not bool, not float
        if -_MAX_SAFE_INTEGER <= value <= _MAX_SAFE_INTEGER:
            return value
        raise BadMessage("id: integer ids must be within +/-(2**53 - 1)")
    if isinstance(value, str):
        if not 0 < len(value) <= limits.max_id_chars:
            raise BadMessage(f"id: must be 1 to {limits.max_id_chars} characters")
        if not _is_clean_text(value):
            raise BadMessage("id: control characters and lone surrogates are not allowed")
        return value
    raise BadMessage("id: must be a string or an integer")


def validate_sha256(value: object) -> str:
    if isinstance(value, str) and len(value) == 64 and _HEX.issuperset(value):
        return value
    raise BadMessage("sha256: must be 64 lowercase hex digits")


def _is_clean_text(value: str) -> bool:
    # Control characters (C0, DEL, C1) and lone surrogates (JSON allows
    # "\ud800"; UTF-8 encoders then fail) have no place in an id.
    return not any(
        ord(c) < 0x20 or 0x7F <= ord(c) < 0xA0 or 0xD800 <= ord(c) < 0xE000 for c in value
    )


@dataclass(frozen=True)
class PhotoBegin:
    id: PhotoId
    name: str
    mime: str
    size: int
    sha256: str
    type = "photo-begin"

    @classmethod
    def from_json(cls, obj: dict, limits: PhotoLimits) -> PhotoBegin:
        photo_id = validate_id(obj.get("id"), limits)
        name = obj.get("name")
        if not isinstance(name, str):
            raise BadMessage("name: must be a string")
        mime = obj.get("mime")
        if not isinstance(mime, str):
            raise BadMessage("mime: must be a string")
        if mime not in MIME_TYPES:
            raise UnknownMime(f"mime: must be one of {', '.join(MIME_TYPES)}")
        size = obj.get("size")
        if type(size) is not int or size <= 0:  # bool is an int subclass: refused
            raise BadMessage("size: must be a positive integer")
        sha256 = validate_sha256(obj.get("sha256"))
        return cls(photo_id, name, mime, size, sha256)


@dataclass(frozen=True)
class PhotoEnd:
    id: PhotoId
    type = "photo-end"


@dataclass(frozen=True)
class PhotoChunk:
    data: bytes = field(repr=False)


@dataclass(frozen=True)
class InvalidMessage:
    """A message we refuse, with what could be salvaged from it.

    ``kind`` is the message's ``type`` if it was one of ours, so that a broken
    ``photo-begin`` still counts as a photo (and gets its one outcome).
    ``id`` is the message's id if that much was valid.
    """

    kind: str | None
    id: PhotoId | None
    error: PhotoError


Message = Union[PhotoBegin, PhotoEnd, PhotoChunk, InvalidMessage]


def _reject_constant(name: str) -> None:
    raise ValueError(f"{name} is not JSON")


def parse_message(raw: str | bytes | bytearray | memoryview, limits: PhotoLimits) -> Message:
    """Turn one data-channel message into a typed message; never raises."""
    if isinstance(raw, (bytes, bytearray, memoryview)):
        return PhotoChunk(bytes(raw) if not isinstance(raw, bytes) else raw)
    if not isinstance(raw, str):
        return InvalidMessage(None, None, BadMessage("message must be text or binary"))
    if len(raw) > limits.max_text_chars:
        return InvalidMessage(
            None, None, BadMessage(f"text messages are limited to {limits.max_text_chars} characters")
        )
    try:
        obj = json.loads(raw, parse_constant=_reject_constant)
    except (ValueError, RecursionError):
        # ValueError covers JSONDecodeError, NaN/Infinity, and int strings past
        # sys.get_int_max_str_digits().
        return InvalidMessage(None, None, BadMessage("text message is not valid JSON"))
    if not isinstance(obj, dict):
        return InvalidMessage(None, None, BadMessage("text message must be a JSON object"))
    kind = obj.get("type")
    if kind not in (PhotoBegin.type, PhotoEnd.type):
        return InvalidMessage(
            None, _salvage_id(obj, limits), BadMessage("type: must be photo-begin or photo-end")
        )
    try:
        if kind == PhotoBegin.type:
            return PhotoBegin.from_json(obj, limits)
        return PhotoEnd(validate_id(obj.get("id"), limits))
    except PhotoError as exc:
        return InvalidMessage(kind, _salvage_id(obj, limits), exc)


def _salvage_id(obj: dict, limits: PhotoLimits) -> PhotoId | None:
    try:
        return validate_id(obj.get("id"), limits)
    except PhotoError:
        return None


# ---------------------------------------------------------------------------
# Events out.


@dataclass(frozen=True, eq=False)
class PhotoComplete:
    """Every byte of a photo arrived; size and SHA-256 match the declaration.

    ``data`` is handed over: the assembler keeps no reference to it. ``slot``
    must be settled by whoever saves the photo (``PhotoStore.save`` does).
    """

    id: PhotoId | None
    name: str
    mime: str
    data: bytes | bytearray = field(repr=False)
    sha256: str
    slot: PhotoSlot = field(repr=False)

    @property
    def size(self) -> int:
        return len(self.data)


@dataclass(frozen=True)
class PhotoFailed:
    """A photo started by a photo-begin ended in an error."""

    id: PhotoId | None
    error: PhotoError


@dataclass(frozen=True)
class MessageRejected:
    """A message that belongs to no photo was refused."""

    id: PhotoId | None
    error: PhotoError


Event = Union[PhotoComplete, PhotoFailed, MessageRejected]


def saved_reply(photo_id: PhotoId | None, size: int, sha256: str) -> dict:
    return {"type": "photo-saved", "id": photo_id, "size": size, "sha256": sha256}


def error_reply(photo_id: PhotoId | None, error: PhotoError) -> dict:
    return {"type": "photo-error", "id": photo_id, "error": error.code, "message": error.message}


# ---------------------------------------------------------------------------
# The state machine.


class State(enum.Enum):
    IDLE = "idle"  # between photos
    RECEIVING = "receiving"  # a photo is being assembled
    DISCARDING = "discarding"  # dropping the rest of a photo that already failed
    CLOSED = "closed"  # the channel is gone; no more input


@dataclass
class _Transfer:
    begin: PhotoBegin
    slot: PhotoSlot
    buffer: bytearray
    hasher: "hashlib._Hash"
    max_chunks: int | None
    received: int = 0
    chunks: int = 0


_Handler = Callable[["PhotoAssembler", Message], list[Event]]


class PhotoAssembler:
    """Assembles photos from one channel's messages. See the module docstring.

    ``receive(message)`` returns the events that message caused, in order;
    ``close()`` ends the channel (a photo in flight fails ``interrupted``).
    """

    def __init__(self, limits: PhotoLimits | None = None, *, quota: PhotoQuota | None = None) -> None:
        self.limits = limits if limits is not None else PhotoLimits()
        self.quota = quota if quota is not None else PhotoQuota(
            self.limits.max_photos, max_in_flight=self.limits.max_in_flight
        )
        self.state = State.IDLE
        self._transfer: _Transfer | None = None
        # In DISCARDING: the id whose photo-end ends the discard (None: any).
        self._discard_id: PhotoId | None = None
        # Slots of photos handed out as PhotoComplete and not yet settled.
        self._unsaved: list[PhotoSlot] = []

    @property
    def current_id(self) -> PhotoId | None:
        if self.state is State.RECEIVING:
            assert self._transfer is not None
            return self._transfer.begin.id
        if self.state is State.DISCARDING:
            return self._discard_id
        return None

    def receive(self, raw: str | bytes) -> list[Event]:
        if self.state is State.CLOSED:
            raise InvalidState("receive", self.state)
        message = parse_message(raw, self.limits)
        if isinstance(message, InvalidMessage) and message.kind is not None:
            kind = "invalid-begin" if message.kind == PhotoBegin.type else "invalid-end"
        else:
            kind = type(message).__name__
        return _TABLE[self.state, kind](self, message)

    def close(self) -> list[Event]:
        """No more messages will come; fail the photo in flight, if any."""
        if self.state is State.CLOSED:
            return []
        events: list[Event] = []
        if self.state is State.RECEIVING:
            events.append(self._fail(Interrupted("the channel closed before photo-end")))
        self._set_state(State.CLOSED)
        return events

    # -- transitions --------------------------------------------------------

    def _set_state(self, state: State, discard_id: PhotoId | None = None) -> None:
        self.state = state
        self._discard_id = discard_id

    def _fail(self, error: PhotoError) -> PhotoFailed:
        """Fail the photo being received; the caller sets the next state."""
        transfer = self._transfer
        assert transfer is not None
        self._transfer = None
        transfer.slot.release()
        self._set_state(State.DISCARDING, transfer.begin.id)
        return PhotoFailed(transfer.begin.id, error)

    def _start(self, begin: PhotoBegin) -> list[Event]:
        limits = self.limits
        error: PhotoError | None = None
        if limits.max_bytes is not None and begin.size > limits.max_bytes:
            error = TooLarge(f"size: {begin.size} bytes is over the limit of {limits.max_bytes}")
        else:
            self._unsaved = [s for s in self._unsaved if not s.settled]
            if len(self._unsaved) >= limits.max_unsaved:
                error = Busy(f"{len(self._unsaved)} photos are still being saved; retry later")
        if error is None:
            try:
                slot = self.quota.reserve()
            except (TooManyPhotos, Busy) as exc:
                error = exc
        if error is not None:
            self._set_state(State.DISCARDING, begin.id)
            return [PhotoFailed(begin.id, error)]
        # The declared size is not trusted with an allocation: the buffer
        # grows as bytes arrive (bytearray appends are amortised O(1)).
        buffer = bytearray()
        max_chunks = None
        if limits.min_chunk_bytes is not None:
            max_chunks = -(-begin.size // limits.min_chunk_bytes) + 4
        self._transfer = _Transfer(begin, slot, buffer, hashlib.sha256(), max_chunks)
        self._set_state(State.RECEIVING)
        return []

    def _append(self, chunk: PhotoChunk) -> list[Event]:
        transfer = self._transfer
        assert transfer is not None
        n = len(chunk.data)
        limit = self.limits.max_chunk_bytes
        if limit is not None and n > limit:
            return [self._fail(ChunkTooLarge(f"a chunk of {n} bytes is over the limit of {limit}"))]
        transfer.chunks += 1
        if transfer.max_chunks is not None and transfer.chunks > transfer.max_chunks:
            return [
                self._fail(
                    TooManyChunks(
                        f"more than {transfer.max_chunks} chunks for {transfer.begin.size} bytes"
                    )
                )
            ]
        end = transfer.received + n
        if end > transfer.begin.size:
            return [
                self._fail(
                    SizeMismatch(f"more than the declared {transfer.begin.size} bytes arrived")
                )
            ]
        try:
            transfer.slot.hold(n)
        except Busy as exc:
            return [self._fail(exc)]
        transfer.buffer += chunk.data
        transfer.hasher.update(chunk.data)
        transfer.received = end
        return []

    def _finish(self) -> list[Event]:
        transfer = self._transfer
        assert transfer is not None
        begin = transfer.begin
        if transfer.received != begin.size:
            event: Event = self._fail(
                SizeMismatch(f"{transfer.received} bytes arrived, {begin.size} were declared")
            )
        elif transfer.hasher.hexdigest() != begin.sha256:
            event = self._fail(HashMismatch("the bytes do not match the declared sha256"))
        else:
            self._transfer = None
            self._unsaved.append(transfer.slot)
            event = PhotoComplete(
                begin.id, begin.name, begin.mime, transfer.buffer, begin.sha256, transfer.slot
            )
        # photo-end consumed: nothing is left to discard.
        self._set_state(State.IDLE)
        return [event]

    # -- the table's handlers ----------------------------------------------

    def _idle_begin(self, m: PhotoBegin) -> list[Event]:
        return self._start(m)

    def _any_invalid_begin(self, m: InvalidMessage) -> list[Event]:
        self._set_state(State.DISCARDING, m.id)
        return [PhotoFailed(m.id, m.error)]

    def _any_invalid(self, m: InvalidMessage) -> list[Event]:
        return [MessageRejected(m.id, m.error)]

    def _idle_chunk(self, m: PhotoChunk) -> list[Event]:
        # Answer the first stray chunk; drop the rest of the run.
        self._set_state(State.DISCARDING, None)
        return [MessageRejected(None, UnexpectedChunk("binary message outside photo-begin/photo-end"))]

    def _idle_end(self, m: PhotoEnd) -> list[Event]:
        return [MessageRejected(m.id, UnexpectedEnd("photo-end without a photo in progress"))]

    def _receiving_begin(self, m: PhotoBegin) -> list[Event]:
        old = self._fail(Interrupted("photo-begin for another photo arrived before photo-end"))
        return [old, *self._start(m)]

    def _receiving_invalid_begin(self, m: InvalidMessage) -> list[Event]:
        old = self._fail(Interrupted("photo-begin for another photo arrived before photo-end"))
        return [old, *self._any_invalid_begin(m)]

    def _receiving_chunk(self, m: PhotoChunk) -> list[Event]:
        return self._append(m)

    def _receiving_end(self, m: PhotoEnd) -> list[Event]:
        assert self._transfer is not None
        if m.id != self._transfer.begin.id:
            return [MessageRejected(m.id, IdMismatch("photo-end does not match the photo in progress"))]
        return self._finish()

    def _discarding_chunk(self, m: PhotoChunk) -> list[Event]:
        return []

    def _discarding_invalid_end(self, m: InvalidMessage) -> list[Event]:
        # The photo being dropped had an id we could not read; its photo-end
        # most likely carries the same unreadable id. One reply was enough.
        if self._discard_id is None:
            self._set_state(State.IDLE)
            return []
        return [MessageRejected(m.id, m.error)]

    def _discarding_end(self, m: PhotoEnd) -> list[Event]:
        d = self._discard_id
        if d is None or m.id == d:
            self._set_state(State.IDLE)
            return []
        return [MessageRejected(m.id, IdMismatch("photo-end does not match the photo in progress"))]


# state -> message kind -> handler. Total on purpose: every message in every
# open state has a defined answer, so a peer can never make us raise.
_TABLE: dict[tuple[State, str], _Handler] = {
    (State.IDLE, "PhotoBegin"): PhotoAssembler._idle_begin,
    (State.IDLE, "invalid-begin"): PhotoAssembler._any_invalid_begin,
    (State.IDLE, "InvalidMessage"): PhotoAssembler._any_invalid,
    (State.IDLE, "invalid-end"): PhotoAssembler._any_invalid,
    (State.IDLE, "PhotoChunk"): PhotoAssembler._idle_chunk,
    (State.IDLE, "PhotoEnd"): PhotoAssembler._idle_end,
    (State.RECEIVING, "PhotoBegin"): PhotoAssembler._receiving_begin,
    (State.RECEIVING, "invalid-begin"): PhotoAssembler._receiving_invalid_begin,
    (State.RECEIVING, "InvalidMessage"): PhotoAssembler._any_invalid,
    (State.RECEIVING, "invalid-end"): PhotoAssembler._any_invalid,
    (State.RECEIVING, "PhotoChunk"): PhotoAssembler._receiving_chunk,
    (State.RECEIVING, "PhotoEnd"): PhotoAssembler._receiving_end,
    (State.DISCARDING, "PhotoBegin"): PhotoAssembler._idle_begin,
    (State.DISCARDING, "invalid-begin"): PhotoAssembler._any_invalid_begin,
    (State.DISCARDING, "InvalidMessage"): PhotoAssembler._any_invalid,
    (State.DISCARDING, "invalid-end"): PhotoAssembler._discarding_invalid_end,
    (State.DISCARDING, "PhotoChunk"): PhotoAssembler._discarding_chunk,
    (State.DISCARDING, "PhotoEnd"): PhotoAssembler._discarding_end,
}
