"""Typed errors for photo transfers; each one is answered on the wire.

Every error a peer can cause has a stable ``code`` (the ``error`` field of a
``photo-error`` reply; clients branch on it, so never rename one) and an
``http_status`` hint for ``POST /api/photos``::

    PhotoError                      code               HTTP
    ├── PeerError  (the peer broke a rule; 4xx)
    │   ├── BadMessage              bad-message        400
    │   ├── UnknownMime             unknown-mime       415
    │   ├── TooLarge                too-large          413
    │   ├── ChunkTooLarge           chunk-too-large    413
    │   ├── TooManyChunks           too-many-chunks    400
    │   ├── SizeMismatch            size-mismatch      400
    │   ├── HashMismatch            hash-mismatch      422
    │   ├── NotAnImage              not-an-image       422
    │   ├── MimeMismatch            mime-mismatch      422
    │   ├── UnexpectedChunk         unexpected-chunk   400
    │   ├── UnexpectedEnd           unexpected-end     400
    │   ├── IdMismatch              id-mismatch        400
    │   ├── Interrupted             interrupted        400
    │   ├── TooManyPhotos           too-many-photos    429
    │   ├── Busy                    busy               503
    │   ├── TimedOut                timeout            408   an upload body too slow
    │   └── Refused                 (the bot's code)   422   a bot's check_photo said no
    └── ServerError  (we failed; 5xx)
        ├── StorageFailed           storage-failed     500
        └── DiskFull                disk-full          507   below --min-free-bytes

``media.errors.InvalidState`` (our own code calling the assembler in a state
where that makes no sense, a bug) is not answered on the wire.
"""

from __future__ import annotations

from typing import ClassVar

from media.errors import CallbotError

__all__ = [
    "PhotoError",
    "PeerError",
    "ServerError",
    "BadMessage",
    "UnknownMime",
    "TooLarge",
    "ChunkTooLarge",
    "TooManyChunks",
    "SizeMismatch",
    "HashMismatch",
    "NotAnImage",
    "MimeMismatch",
    "UnexpectedChunk",
    "UnexpectedEnd",
    "IdMismatch",
    "Interrupted",
    "TooManyPhotos",
    "Busy",
    "TimedOut",
    "StorageFailed",
    "DiskFull",
    "Refused",
    "ERROR_CODES",
]


class PhotoError(CallbotError):
    """Root of every error that is answered with a ``photo-error`` reply."""

    code: ClassVar[str] = "photo-error"
    http_status: ClassVar[int] = 400

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class PeerError(PhotoError):
    """The peer sent something we refuse; the channel stays usable."""


class ServerError(PhotoError):
    """We could not do our part (disk full, ...); not the peer's fault."""

    http_status = 500


class BadMessage(PeerError):
    code = "bad-message"


class UnknownMime(PeerError):
    code = "unknown-mime"
    http_status = 415


class TooLarge(PeerError):
    code = "too-large"
    http_status = 413


class ChunkTooLarge(PeerError):
    code = "chunk-too-large"
    http_status = 413


class TooManyChunks(PeerError):
    code = "too-many-chunks"


class SizeMismatch(PeerError):
    code = "size-mismatch"


class HashMismatch(PeerError):
    code = "hash-mismatch"
    http_status = 422


class NotAnImage(PeerError):
    code = "not-an-image"
    http_status = 422


class MimeMismatch(PeerError):
    code = "mime-mismatch"
    http_status = 422


class UnexpectedChunk(PeerError):
    code = "unexpected-chunk"


class UnexpectedEnd(PeerError):
    code = "unexpected-end"


class IdMismatch(PeerError):
    code = "id-mismatch"


class Interrupted(PeerError):
    code = "interrupted"


class TooManyPhotos(PeerError):
    code = "too-many-photos"
    http_status = 429


class Busy(PeerError):
    code = "busy"
    http_status = 503


class TimedOut(PeerError):
    """An upload's body did not arrive in time (RFC 9110 section 15.5.9)."""

    code = "timeout"
    http_status = 408


class Refused(PeerError):
    """A bot refused the photo (``RefusePhoto`` in its ``check_photo``); the
    code is the bot's own (``photo-refused`` unless it chose another)."""

    code = "photo-refused"
    http_status = 422

    def __init__(self, message: str, code: str | None = None) -> None:
        super().__init__(message)
        if code is not None:
            self.code = code  # type: ignore[misc]


class StorageFailed(ServerError):
    code = "storage-failed"


class DiskFull(ServerError):
    """The data directory is below its free-space floor (``--min-free-bytes``);
    RFC 4918 section 11.5: 507 Insufficient Storage."""

    code = "disk-full"
    http_status = 507


def _leaves(cls: type[PhotoError]) -> list[type[PhotoError]]:
    subs = cls.__subclasses__()
    if not subs:
        return [cls]
    return [leaf for sub in subs for leaf in _leaves(sub)]


# code -> class, for tests and for clients' documentation.
ERROR_CODES: dict[str, type[PhotoError]] = {c.code: c for c in _leaves(PhotoError)}
