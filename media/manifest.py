"""``meta.json``: everything about one call, rewritten atomically as it goes.

The manifest is written when the call starts, when it connects, whenever a
photo is saved, and when it ends. ``status`` is ``in-progress`` until the end,
then ``complete``; a server that finds ``in-progress`` at start-up left it
behind in a crash and marks it ``interrupted``.
"""

from __future__ import annotations

import asyncio
import json
import logging
import threading
import time
from dataclasses import dataclass, field
from typing import Any

from media.storage import MANIFEST_NAME, CallDirectory, atomic_write_json

logger = logging.getLogger(__name__)


def _jsonable(value: Any) -> Any:
    """``value`` as JSON will keep it; what JSON cannot hold becomes its repr,
    so a bot's odd value never stops the manifest from being written."""
    try:
        return json.loads(json.dumps(value, default=repr))
    except (TypeError, ValueError, RecursionError) as exc:
        return {"unserializable": f"{type(exc).__name__}: {exc}"}


def _iso(ts: float | None) -> str | None:
    if ts is None:
        return None
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(ts)) + f".{int(ts % 1 * 1000):03d}Z"


@dataclass
class CallManifest:
    directory: CallDirectory
    caller: str
    bot: str
    started_at: float = field(default_factory=time.time)
    connected_at: float | None = None
    ended_at: float | None = None
    end_reason: str | None = None
    status: str = "in-progress"
    talkback: str = "none"
    #: "bot" for calls to the bot; "peer-to-peer" for photos shared between users.
    kind: str = "bot"
    #: How the call came: "signaling" (the WebSocket) or "whip".
    source: str = "signaling"
    #: WHIP only: who published (the token's user, address, software, DTLS).
    publisher: dict[str, Any] | None = None
    #: The bot class that served the call, as ``module:Class``.
    bot_class: str | None = None
    #: The bot's own data (``Call.meta``), kept as the bot left it.
    bot_data: dict[str, Any] = field(default_factory=dict)
    #: Frames and events given to the bot and dropped (``Call.stats``).
    bot_stats: dict[str, Any] = field(default_factory=dict)
    #: Files the bot wrote (``Call.write_file``): name, kind, size, sha256.
    bot_files: list[dict[str, Any]] = field(default_factory=list)
    #: Photos the bot sent the caller, with the caller's acknowledgement.
    photos_sent: list[dict[str, Any]] = field(default_factory=list)
    tracks: list[dict[str, Any]] = field(default_factory=list)
    photos: list[dict[str, Any]] = field(default_factory=list)
    recording: dict[str, Any] = field(default_factory=dict)
    #: The selected candidate pair, RTT, loss and bitrate at connect and at
    #: the end (``peer.quality``).
    quality: dict[str, Any] = field(default_factory=dict)
    errors: list[str] = field(default_factory=list)
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)
    _seq: int = 0
    _written: int = 0

    def to_json(self) -> dict[str, Any]:
        end = self.ended_at if self.ended_at is not None else time.time()
        return {
            "version": 1,
            "call_id": self.directory.call_id,
            "kind": self.kind,
            "caller": self.caller,
            "callee": self.bot,
            "bot": self.bot if self.kind == "bot" else None,
            "status": self.status,
            "started_at": _iso(self.started_at),
            "connected_at": _iso(self.connected_at),
            "ended_at": _iso(self.ended_at),
            "duration": round(end - self.started_at, 3),
            "connected_duration": round(end - self.connected_at, 3) if self.connected_at else None,
            "end_reason": self.end_reason,
            "talkback": self.talkback,
            "source": self.source,
            "publisher": self.publisher,
            "bot_class": self.bot_class,
            "tracks": self.tracks,
            "recording": self.recording,
            "photos": self.photos,
            "photos_sent": self.photos_sent,
            "bot_data": _jsonable(self.bot_data),
            "bot_stats": self.bot_stats,
            "quality": self.quality,
            "files": self.files(),
            "errors": self.errors,
        }

    def files(self) -> list[dict[str, Any]]:
        """Every file of the call with its size and hash."""
        out = [
            {"name": p["file"], "kind": "photo", "size": p["size"], "sha256": p["sha256"]}
            for p in self.photos
            if "file" in p
        ]
        out += list(self.recording.get("files", []))
        out += [
            {"name": p["file"], "kind": "photo-sent", "size": p["size"], "sha256": p["sha256"]}
            for p in self.photos_sent
            if "file" in p
        ]
        out += list(self.bot_files)
        return out

    def _snapshot(self) -> tuple[int, dict[str, Any]]:
        self._seq += 1
        return self._seq, self.to_json()

    def _write(self, seq: int, data: dict[str, Any], fsync: bool = True) -> None:
        # Writes may run in worker threads in any order: an older snapshot
        # never replaces a newer one.
        with self._lock:
            if seq <= self._written:
                return
            try:
                atomic_write_json(self.directory.manifest_path, data, fsync=fsync)
            except OSError as exc:  # a full disk must not kill the call
                logger.error("call %s: cannot write manifest: %s", self.directory.call_id, exc)
                return
            self._written = seq

    def write(self) -> None:
        """Write now, blocking, with fsync: for start-up and tests."""
        self._write(*self._snapshot())

    def update(self) -> None:
        """Rewrite it now, during the call: atomic (complete or absent, never
        half) but without fsync, so the event loop does not wait for the disk;
        the files it lists are fsynced by their writers, and the final write is
        fsynced (:meth:`write_async`). A reader that got ``photo-saved`` finds
        the photo in the manifest."""
        self._write(*self._snapshot(), fsync=False)

    async def write_async(self) -> None:
        """Snapshot now and wait in a worker thread until it is durably on disk."""
        seq, data = self._snapshot()
        await asyncio.get_running_loop().run_in_executor(None, self._write, seq, data)


def mark_interrupted(calls_root) -> list[str]:
    """At start-up: manifests a crash left ``in-progress`` become ``interrupted``."""
    found: list[str] = []
    if not calls_root.is_dir():
        return found
    for path in sorted(calls_root.glob(f"*/{MANIFEST_NAME}")):
        try:
            data = json.loads(path.read_text())
        except (OSError, ValueError):
            continue
        if isinstance(data, dict) and data.get("status") == "in-progress":
            data["status"] = "interrupted"
            data["end_reason"] = data.get("end_reason") or "server-crashed"
            atomic_write_json(path, data)
            found.append(path.parent.name)
    return found
