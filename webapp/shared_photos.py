"""Server copies of photos shared in browser-to-browser calls: one store and
manifest per (uploader, peer) pair, in a ``data/calls/<id>/`` directory whose
manifest has ``"kind": "peer-to-peer"``.

The directory is created for the first photo that passed every check (issue
14 #5: a thousand refused uploads used to leave a thousand directories); the
pair's quota exists from its first attempt, so concurrent uploads share it.

:class:`UploadTokens` are the proof of a login for uploads without token
auth: the login reply carries ``uploadToken``, an HMAC of the username and an
expiry, and ``POST /api/photos`` must present it (``X-Upload-Token`` header)
for ``?user=U``, so nobody can attribute a photo to another online user.
:class:`UploadSlots` bound concurrent uploads per user and in total.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import hmac
import time
from collections import Counter
from typing import Any

from media.manifest import CallManifest
from media.storage import create_call_directory
from photos import PhotoQuota, PhotoStore
from photos.errors import Busy
from webapp.config import Config

__all__ = ["SharedPhotos", "UploadSlots", "UploadTokens"]

#: Seconds an upload token stays valid (a login lasts about as long as a tab).
UPLOAD_TOKEN_TTL = 24 * 3600


class UploadTokens:
    """``<expiry>.<base64url HMAC-SHA256(key, "upload\\n" user "\\n" expiry)>``."""

    def __init__(self, key: bytes, ttl: float = UPLOAD_TOKEN_TTL) -> None:
        self._key = key
        self.ttl = ttl

    def _sig(self, username: str, expires: int) -> str:
        mac = hmac.new(self._key, f"upload\n{username}\n{expires}".encode(), hashlib.sha256).digest()
        return base64.urlsafe_b64encode(mac).rstrip(b"=").decode()

    def mint(self, username: str, now: float | None = None) -> str:
        expires = int((time.time() if now is None else now) + self.ttl)
        return f"{expires}.{self._sig(username, expires)}"

    def verify(self, username: str, token: str | None) -> bool:
        if not token or len(token) > 200 or "." not in token:
            return False
        expires, sig = token.split(".", 1)
        if not expires.isdigit() or len(expires) > 12 or int(expires) < time.time():
            return False
        return hmac.compare_digest(sig, self._sig(username, int(expires)))


class UploadSlots:
    """Concurrent uploads per user and in total; ``busy`` past either."""

    def __init__(self, per_user: int, total: int) -> None:
        self.per_user = per_user
        self.total = total
        self.by_user: Counter[str] = Counter()

    def acquire(self, user: str) -> None:
        if sum(self.by_user.values()) >= self.total:
            raise Busy(f"the server takes {self.total} uploads at a time; retry later")
        if self.by_user[user] >= self.per_user:
            raise Busy(f"at most {self.per_user} uploads at a time per user; retry later")
        self.by_user[user] += 1

    def release(self, user: str) -> None:
        self.by_user[user] -= 1
        if self.by_user[user] <= 0:
            del self.by_user[user]


class SharedPhotos:
    """One quota per (uploader, peer) pair from its first attempt; one store
    and manifest from its first accepted photo."""

    def __init__(self) -> None:
        self._quotas: dict[tuple[str, str], PhotoQuota] = {}
        self._stores: dict[tuple[str, str], tuple[PhotoStore, CallManifest]] = {}
        self._lock = asyncio.Lock()
        self.slots: UploadSlots | None = None

    def slots_for(self, config: Config) -> UploadSlots:
        if self.slots is None:
            self.slots = UploadSlots(config.photos.max_uploads_per_user, config.photos.max_uploads)
        return self.slots

    def quota_for(self, config: Config, user: str, peer: str) -> PhotoQuota:
        found = self._stores.get((user, peer))
        if found is not None:
            return found[0].quota
        quota = self._quotas.get((user, peer))
        if quota is None:
            limits = config.photo_limits()
            quota = PhotoQuota(limits.max_photos, max_in_flight=limits.max_in_flight)
            self._quotas[(user, peer)] = quota
        return quota

    def drop_idle_quota(self, user: str, peer: str) -> None:
        """Forget a pair's quota that no upload uses and no photo was saved
        under, so that refused uploads naming ever new peers leave nothing."""
        quota = self._quotas.get((user, peer))
        if quota is not None and quota.reserved == 0 and quota.saved == 0:
            del self._quotas[(user, peer)]

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
                limits=config.photo_limits(),
                on_saved=saved,
                quota=self.quota_for(config, user, peer),
            )
            manifest.status = "complete"
            await manifest.write_async()
            self._stores[(user, peer)] = (store, manifest)
            self._quotas.pop((user, peer), None)
            return store

    def forget_directory(self, call_id: str) -> None:
        """The call directory was deleted: a later upload makes a new one."""
        for pair, (store, _) in list(self._stores.items()):
            if store.directory.call_id == call_id:
                del self._stores[pair]
