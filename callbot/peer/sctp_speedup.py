"""Make aiortc's data-channel reassembly linear instead of quadratic.

aiortc 1.16's ``InboundStream.pop_messages`` rescans every fragment held for
a stream on every DATA chunk that arrives. A 256 KiB data-channel message is
about 230 SCTP fragments, so receiving one costs ~26,000 scan steps, and a
2 MB photo ~240,000: measured, a third of the bot's CPU for a photo.

A message can only be popped once a fragment flagged LAST_FRAG is held (every
yield in ``pop_messages`` is on such a fragment). So this module counts held
LAST_FRAG fragments per stream and skips the scan while there are none; when
there is one, aiortc's own ``pop_messages`` runs unchanged. The output is
identical by construction (and tested against the original on random chunk
sequences); only the wasted scans go.

This touches aiortc internals, so it checks the pinned version and the names
it needs at :func:`install` time and refuses with a clear error otherwise.
``install`` is idempotent and process-wide, like the hook it installs.
"""

from __future__ import annotations

import logging
import os
from typing import Any, Iterator

import aiortc
from aiortc import rtcsctptransport

logger = logging.getLogger(__name__)

TESTED_AIORTC = "1.16.0"
_COUNT = "_callbot_last_frags"


class UnsupportedAiortcError(RuntimeError):
    """The installed aiortc is not the one this speed-up was written against."""


_original_add_chunk = rtcsctptransport.InboundStream.add_chunk
_original_pop_messages = rtcsctptransport.InboundStream.pop_messages
_original_prune_chunks = rtcsctptransport.InboundStream.prune_chunks
LAST_FRAG = rtcsctptransport.SCTP_DATA_LAST_FRAG


def _recount(stream: Any) -> int:
    count = sum(1 for chunk in stream.reassembly if chunk.flags & LAST_FRAG)
    setattr(stream, _COUNT, count)
    return count


def add_chunk(self: Any, chunk: Any) -> None:
    _original_add_chunk(self, chunk)
    count = getattr(self, _COUNT, None)
    if count is None:
        _recount(self)
    elif chunk.flags & LAST_FRAG:
        setattr(self, _COUNT, count + 1)


def pop_messages(self: Any) -> Iterator[tuple[int, int, bytes]]:
    count = getattr(self, _COUNT, None)
    if count is None:
        count = _recount(self)
    if count == 0:
        return  # no message can be complete: nothing to scan
    try:
        yield from _original_pop_messages(self)
    finally:
        _recount(self)


def prune_chunks(self: Any, tsn: int) -> int:
    try:
        return _original_prune_chunks(self, tsn)
    finally:
        _recount(self)


def install() -> None:
    version = getattr(aiortc, "__version__", "?")
    if version != TESTED_AIORTC and not os.environ.get("CALLBOT_ALLOW_UNTESTED_AIORTC"):
        raise UnsupportedAiortcError(
            f"callbot.peer.sctp_speedup was written against aiortc {TESTED_AIORTC}, found {version}; "
            "check InboundStream.pop_messages and update it (or set CALLBOT_ALLOW_UNTESTED_AIORTC=1)"
        )
    cls = rtcsctptransport.InboundStream
    if cls.pop_messages is pop_messages:
        return
    for name in ("add_chunk", "pop_messages", "prune_chunks"):
        if not callable(getattr(cls, name, None)):
            raise UnsupportedAiortcError(f"aiortc InboundStream has no {name}()")
    cls.add_chunk = add_chunk  # type: ignore[method-assign]
    cls.pop_messages = pop_messages  # type: ignore[method-assign]
    cls.prune_chunks = prune_chunks  # type: ignore[method-assign]
    logger.debug("aiortc SCTP reassembly speed-up installed")


def uninstall() -> None:
    cls = rtcsctptransport.InboundStream
    cls.add_chunk = _original_add_chunk  # type: ignore[method-assign]
    cls.pop_messages = _original_pop_messages  # type: ignore[method-assign]
    cls.prune_chunks = _original_prune_chunks  # type: ignore[method-assign]
