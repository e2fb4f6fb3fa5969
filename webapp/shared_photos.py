"""Server copies of photos shared in browser-to-browser calls: one store and
manifest per (uploader, peer) pair, in a ``data/calls/<id>/`` directory whose
manifest has ``"kind": "peer-to-peer"``."""

from __future__ import annotations

import asyncio
from typing import Any

from media.manifest import CallManifest
from media.storage import create_call_directory
from photos import PhotoLimits, PhotoStore
from webapp.config import Config


class SharedPhotos:
    """One store and manifest per (uploader, peer) pair, created on first use."""

    def __init__(self) -> None:
        self._stores: dict[tuple[str, str], tuple[PhotoStore, CallManifest]] = {}
        self._lock = asyncio.Lock()

    async def store_for(self, config: Config, user: str, peer: str) -> PhotoStore:
        async with self._lock:
            found = self._stores.get((user, peer))
            if found is not None:
                return found[0]
            directory = await asyncio.to_thread(create_call_directory, config.calls_dir)
            manifest = CallManifest(directory, caller=user, bot=peer, kind="peer-to-peer")

            def saved(entry: dict[str, Any]) -> None:
                manifest.photos.append(entry)
                manifest.update()

            store = PhotoStore(
                directory,
                limits=PhotoLimits(max_bytes=config.photos.max_bytes, max_photos=config.photos.max_per_call),
                on_saved=saved,
            )
            manifest.status = "complete"
            await manifest.write_async()
            self._stores[(user, peer)] = (store, manifest)
            return store
