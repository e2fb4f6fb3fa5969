"""The free-space floor (``--min-free-bytes``) for recordings in progress.

New bot calls (``peer.runtime``), photos (``photos.store``) and uploads
(``webapp.photo_upload``) check the floor before they write. A recording
writes for as long as its call lasts, so it is watched instead: every
:data:`CHECK_INTERVAL` seconds the data directory's free space is read, and
below the floor every recording in progress is stopped the way a hang-up
stops it (the file is finished and playable, ``meta.json``'s recording
section says ``"stop_reason": "disk-full"``), the caller is told with an
``error`` ``disk-full`` from the bot, and the call itself goes on.
"""

from __future__ import annotations

import asyncio
import logging
import shutil
from typing import AsyncIterator

from aiohttp import web

from media.recorder import RecorderState
from peer.tasks import cancel_and_wait
from webapp.keys import BOT, CONFIG

logger = logging.getLogger(__name__)

__all__ = ["CHECK_INTERVAL", "disk_watch_ctx", "stop_recordings"]

#: Seconds between two looks at the free space (one statvfs call).
CHECK_INTERVAL = 1.0


async def stop_recordings(app: web.Application, reason: str) -> int:
    """Stop every recording in progress; returns how many were stopped."""
    if BOT not in app:
        return 0
    stopped = 0
    for session in list(app[BOT].calls.values()):
        recorder = session.media.recorder
        if session.ending or recorder is None or recorder.state not in (RecorderState.NEW, RecorderState.RECORDING):
            continue
        await recorder.stop(reason)
        session.write_manifest()
        session.send({"type": "error", "code": reason,
                      "message": "the server is low on disk space: recording stopped, the call goes on"})
        logger.warning("call %s: recording stopped: %s", session.id, reason)
        stopped += 1
    return stopped


async def disk_watch_ctx(app: web.Application) -> AsyncIterator[None]:
    config = app[CONFIG]
    floor = config.security.min_free_bytes
    if not floor or not config.recording.enabled:
        yield
        return

    async def watch() -> None:
        while True:
            await asyncio.sleep(CHECK_INTERVAL)  # a period: nothing announces free space
            try:
                free = await asyncio.to_thread(lambda: shutil.disk_usage(config.data_dir).free)
            except OSError as exc:
                logger.warning("cannot read the free space of %s: %s", config.data_dir, exc)
                continue
            if free < floor:
                await stop_recordings(app, "disk-full")

    task = asyncio.get_running_loop().create_task(watch(), name="disk-watch")
    yield
    await cancel_and_wait([task])
