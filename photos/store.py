"""Saving photos into a call's directory: the I/O half of photo transfers.

One :class:`PhotoStore` per call directory; the data channel and
``POST /api/photos`` share it, and with it the call's photo quota and the
numbering of files (``photo-0001.jpg``, ``photo-0002.png``, ...).

Saving a photo checks that it decodes (off the event loop), writes it to a
temporary name and renames it (``storage.atomic_write_bytes``), and only then
returns its manifest entry::

    {
      "file": "photo-0001.jpg",           # server-chosen, inside the call dir
      "id": "a1" | 7 | null,              # the client's id, as it sent it
      "name": "IMG_2041.jpg",             # the client's name, cleaned; never a path
      "mime": "image/jpeg",
      "size": 2097152,
      "sha256": "<64 lowercase hex>",
      "width": 1920, "height": 1080,
      "source": "datachannel" | "http",
      "received_at": "2026-11-21T22:35:01.123Z"
    }

The store does not write the call's manifest (``meta.json``) itself; give it
``on_saved`` to record each entry there.
"""

from __future__ import annotations

import asyncio
import logging
import re
import shutil
import time
import unicodedata
from concurrent.futures import Executor
from typing import Any, Awaitable, Callable

from media.storage import CallDirectory, atomic_write_bytes
from photos.errors import DiskFull, StorageFailed
from photos.image import ImageInfo, verify_image
from photos.protocol import MIME_TYPES, PhotoComplete, PhotoLimits, PhotoQuota

__all__ = ["PhotoStore", "clean_name"]

logger = logging.getLogger(__name__)

# Control, format (bidi overrides, zero-width), surrogate, line/paragraph separators.
_DROPPED_CATEGORIES = frozenset(["Cc", "Cf", "Cs", "Zl", "Zp"])
_PHOTO_FILE = re.compile(r"photo-(\d+)\.[a-z]+\Z")


def clean_name(name: str, max_chars: int) -> str:
    """A client-supplied name made safe to keep in JSON and show to people.

    NFC-normalised; control characters, lone surrogates (which cannot be
    encoded as UTF-8) and bidi overrides (which make ``gpj.exe`` read as
    ``exe.jpg``) are dropped; cut to ``max_chars``. It is never used as a path.
    """
    name = unicodedata.normalize("NFC", name)
    name = "".join(c for c in name if unicodedata.category(c) not in _DROPPED_CATEGORIES)
    return name.strip()[:max_chars]


def _free_bytes(path: Any) -> int:
    return shutil.disk_usage(path).free


def _utc_iso(t: float) -> str:
    ms = int((t % 1) * 1000)
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(t)) + f".{ms:03d}Z"


class PhotoStore:
    """Verifies and atomically saves the photos of one call.

    ``on_saved(entry)`` is called on the event loop for every photo saved,
    after its file is complete on disk and before its ``photo-saved`` reply
    is sent. ``executor`` runs decoding and writing (``None``: the loop's
    default executor). ``fsync=False`` is for tests and benchmarks only.
    """

    def __init__(
        self,
        directory: CallDirectory,
        *,
        limits: PhotoLimits | None = None,
        on_saved: Callable[[dict[str, Any]], None] | None = None,
        executor: Executor | None = None,
        fsync: bool = True,
        clock: Callable[[], float] = time.time,
        quota: PhotoQuota | None = None,
    ) -> None:
        self.directory = directory
        self.limits = limits if limits is not None else PhotoLimits()
        self.quota = quota if quota is not None else PhotoQuota(
            self.limits.max_photos, max_in_flight=self.limits.max_in_flight
        )
        #: ``photos`` channels open on this call (``limits.max_channels`` at most).
        self.open_channels = 0
        self._on_saved = on_saved
        self._executor = executor
        self._fsync = fsync
        self._clock = clock
        self._entries: list[dict[str, Any]] = []
        # Continue numbering after files already there, so a second store on
        # the same directory (a restarted bot) never renames over one.
        taken = [
            int(m.group(1))
            for p in directory.path.iterdir()
            if (m := _PHOTO_FILE.match(p.name))
        ]
        self._next_index = max(taken, default=0) + 1

    @property
    def entries(self) -> list[dict[str, Any]]:
        """Manifest entries of the photos saved so far, oldest first."""
        return list(self._entries)

    async def save(
        self,
        photo: PhotoComplete,
        *,
        source: str = "datachannel",
        check: Callable[[PhotoComplete, ImageInfo], Awaitable[None]] | None = None,
        info: ImageInfo | None = None,
    ) -> dict[str, Any]:
        """Check ``photo`` decodes, write it, return its manifest entry.

        ``check`` (a bot's ``check_photo``) runs after the decode check and
        before anything is written; it may raise a :class:`PhotoError`
        (``Refused``) to refuse the photo.

        Settles ``photo.slot``: committed on success, released on any error.
        Raises :class:`PhotoError` (``not-an-image``, ``mime-mismatch``,
        ``too-large`` for pixels, ``storage-failed``, ``disk-full``, a
        refusal). ``info``: the photo was verified already (by the caller,
        before this store's directory existed). Cancellation
        before the write leaves nothing behind; once the write has started it
        is finished and recorded, then the cancellation goes on.
        """
        loop = asyncio.get_running_loop()
        try:
            if info is None:
                info = await loop.run_in_executor(self._executor, verify_image, photo.data, photo.mime, self.limits)
            if check is not None:
                await check(photo, info)
            floor = self.limits.min_free_bytes
            if floor is not None:
                free = await loop.run_in_executor(self._executor, _free_bytes, self.directory.path)
                if free - photo.size < floor:
                    logger.warning("photos %s: refused a photo: %d bytes free, the floor is %d",
                                   self.directory.call_id, free, floor)
                    raise DiskFull("the server is low on disk space and cannot store photos")
        except BaseException:
            photo.slot.release()
            raise

        file_name = f"photo-{self._next_index:04d}{MIME_TYPES[photo.mime]}"
        self._next_index += 1
        path = self.directory.file(file_name)
        write = loop.run_in_executor(
            self._executor, lambda: atomic_write_bytes(path, photo.data, fsync=self._fsync)
        )
        cancelled = False
        try:
            await asyncio.shield(write)
        except asyncio.CancelledError:
            # The thread cannot be stopped; let it finish so that the file on
            # disk and the manifest agree, then let the cancellation through.
            cancelled = True
            await asyncio.wait([write])
        except Exception:
            pass  # read from the future just below
        error = write.exception()
        if error is not None:
            photo.slot.release()
            if cancelled:
                raise asyncio.CancelledError()
            logger.error("photos %s: writing %s failed: %r", self.directory.call_id, file_name, error)
            raise StorageFailed("the server could not store the photo") from error

        entry = {
            "file": file_name,
            "id": photo.id,
            "name": clean_name(photo.name, self.limits.max_name_chars),
            "mime": photo.mime,
            "size": photo.size,
            "sha256": photo.sha256,
            "width": info.width,
            "height": info.height,
            "source": source,
            "received_at": _utc_iso(self._clock()),
        }
        photo.slot.commit()
        self._entries.append(entry)
        logger.info(
            "photos %s: saved %s (%d bytes, %dx%d) via %s",
            self.directory.call_id, file_name, photo.size, info.width, info.height, source,
        )
        if self._on_saved is not None:
            try:
                self._on_saved(entry)
            except Exception:
                logger.exception("photos %s: on_saved failed for %s", self.directory.call_id, file_name)
        if cancelled:
            raise asyncio.CancelledError()
        return entry
