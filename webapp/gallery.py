"""The gallery API: past calls with the bot, read from ``data/calls/``.

    GET /api/calls                          {"calls": [summary, ...], "total": N,
                                            "callers": [...]}, newest first; optional
                                            ?limit=&offset= (a page), ?caller=,
                                            ?from=&to= (ISO 8601 instants, inclusive)
    GET /api/calls/{call_id}                one summary
    GET /api/calls/{call_id}/files/{name}   a file of the call; aiohttp's
                                            FileResponse answers Range requests
                                            (RFC 9110 section 14), so a
                                            recording seeks in a <video>
    DELETE /api/calls/{call_id}             the call's files and manifest, gone
                                            (its caller or an admin; logged)
    GET /api/rtc-config                     {"iceServers": [...]} for the page

Privacy: with token auth a call is readable (and deletable) by its caller
and by admins; without it only by loopback clients and ``--trusted-network``
ones (``webapp.access.authorize_data``). With token auth every file URL in a
summary is signed for that one file (``?exp=..&sig=..``, valid
``--media-url-ttl`` seconds), so a ``<video src>`` needs no token in it.
``--retention-days N`` deletes calls that ended (or, if they never did,
started) more than N days ago, at start-up and every hour.
A call in progress on this server says ``"live": true`` and where to watch it
(``"whep": "/whep/<call_id>"``, see ``webapp.whep``); others ``false``/``null``.

Paging: a page costs its own calls, not the whole list. Names give the
order and the dates (call ids start with a UTC timestamp); a ``CallIndex``
keeps what the list needs of each ended call (caller, bot call or not), so
``meta.json`` is read once per call and process, and only the calls on the
page are summarized (their files listed, their URLs signed).

A summary is built from ``meta.json`` plus the files actually present, so it
does not depend on how the recorder names its files: video files are the
recording, images that are not photos are sampled frames. Paths are only
ever built from a valid call id (``storage.is_valid_call_id``) and a name
found by listing the directory, never from the request as given.
"""

from __future__ import annotations

import asyncio
import calendar
import json
import logging
import shutil
import threading
import time
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, AsyncIterator, Callable, Mapping
from urllib.parse import quote

from aiohttp import web

from media.storage import CALL_ID_TIME_FORMAT, MANIFEST_NAME, is_valid_call_id
from peer.ice import client_ice_servers
from peer.quality import summary as quality_summary
from peer.tasks import cancel_and_wait
from webapp.access import authorize, authorize_data, media_signature, verify_media_signature
from webapp.auth import TokenClaims
from webapp.keys import BOT, CONFIG, MEDIA_KEY, SHARED_PHOTOS
from webapp.whep import live_fields

logger = logging.getLogger(__name__)

VIDEO_TYPES = {".webm": "video/webm", ".mp4": "video/mp4", ".mkv": "video/x-matroska",
               ".ogv": "video/ogg", ".mov": "video/quicktime"}
IMAGE_TYPES = {".jpg": "image/jpeg", ".jpeg": "image/jpeg", ".png": "image/png", ".webp": "image/webp"}
AUDIO_TYPES = {".ogg": "audio/ogg", ".opus": "audio/ogg", ".wav": "audio/wav", ".m4a": "audio/mp4"}
#: Browsers play these; a recording in another container is listed but not preferred.
_PLAYABLE_ORDER = (".mp4", ".webm", ".ogv", ".mov", ".mkv")
#: How deep into a call directory files are looked for (frames may sit in a subfolder).
_MAX_DEPTH = 2


def _list_files(root: Path) -> list[str]:
    """Relative POSIX names of the regular files under ``root`` (no dotfiles)."""
    out: list[str] = []

    def walk(directory: Path, prefix: str, depth: int) -> None:
        try:
            entries = sorted(directory.iterdir())
        except OSError:
            return
        for entry in entries:
            if entry.name.startswith(".") or entry.is_symlink():
                continue
            if entry.is_file():
                out.append(prefix + entry.name)
            elif entry.is_dir() and depth < _MAX_DEPTH:
                walk(entry, prefix + entry.name + "/", depth + 1)

    walk(root, "", 1)
    return out


def _suffix(name: str) -> str:
    dot = name.rfind(".")
    return name[dot:].lower() if dot > name.rfind("/") else ""


UrlSigner = Callable[[str, str], str]


def summarize(call_dir: Path, sign: UrlSigner | None = None) -> dict[str, Any] | None:
    """The gallery summary of one call directory, or None if it is not a bot call.
    ``sign(call_id, name)`` gives the query string of a signed file URL."""
    try:
        meta = json.loads((call_dir / MANIFEST_NAME).read_text())
    except (OSError, ValueError):
        return None
    # Photo copies from person-to-person calls live beside bot calls.
    if not isinstance(meta, dict) or not meta.get("bot") or meta.get("kind", "bot") != "bot":
        return None
    call_id = call_dir.name
    files = [n for n in _list_files(call_dir) if n != MANIFEST_NAME]

    def url(name: str) -> str:
        base = f"/api/calls/{call_id}/files/{quote(name)}"
        return f"{base}?{sign(call_id, name)}" if sign is not None else base

    photo_entries = [p for p in meta.get("photos") or [] if isinstance(p, dict) and p.get("file")]
    photo_files = {p["file"] for p in photo_entries}
    recording_meta = meta.get("recording") if isinstance(meta.get("recording"), dict) else {}
    kinds = {f.get("name"): f.get("kind") for f in recording_meta.get("files", []) if isinstance(f, dict)}

    photos = [
        {"name": p.get("name") or p["file"], "file": p["file"], "url": url(p["file"]),
         "size": p.get("size"), "width": p.get("width"), "height": p.get("height")}
        for p in photo_entries if p["file"] in files
    ]
    frames = [
        {"name": n, "file": n, "url": url(n)}
        for n in files
        if _suffix(n) in IMAGE_TYPES and n not in photo_files and not n.split("/")[-1].startswith("photo-")
        and kinds.get(n) not in ("photo", "thumbnail")
    ]
    videos = sorted(
        (n for n in files if _suffix(n) in VIDEO_TYPES or kinds.get(n) in ("recording", "video")),
        key=lambda n: _PLAYABLE_ORDER.index(_suffix(n)) if _suffix(n) in _PLAYABLE_ORDER else 99,
    )
    recording = None
    if videos:
        name = videos[0]
        recording = {"file": name, "url": url(name),
                     "mime": VIDEO_TYPES.get(_suffix(name), "application/octet-stream"),
                     "size": (call_dir / name).stat().st_size}
    thumbs = [n for n in files if kinds.get(n) == "thumbnail"]
    thumbnail = url(thumbs[0]) if thumbs else (frames[0]["url"] if frames else (photos[0]["url"] if photos else None))
    return {
        "call_id": call_id,
        "caller": meta.get("caller"),
        "bot": meta.get("bot"),
        "status": meta.get("status"),
        "started_at": meta.get("started_at"),
        "ended_at": meta.get("ended_at"),
        "duration": meta.get("duration"),
        "connected_duration": meta.get("connected_duration"),
        "end_reason": meta.get("end_reason"),
        "thumbnail": thumbnail,
        "recording": recording,
        "photos": photos,
        "frames": frames,
        # The path the call took and how it went (peer.quality), or None.
        "quality": quality_summary(meta.get("quality")),
    }


@dataclass(frozen=True, slots=True)
class IndexEntry:
    caller: Any
    listed: bool  # a bot call: the gallery lists it (not a photo copy of a person-to-person call)


class CallIndex:
    """What listing needs of each call, read from its ``meta.json`` once:
    kept for calls that have ended (their manifest no longer changes what is
    kept here), read again for calls in progress. At most ``limit`` entries
    (the oldest inserted go first); a deleted call is forgotten. Used from
    worker threads (listing runs off the event loop), hence the lock."""

    def __init__(self, limit: int = 100_000) -> None:
        self.limit = limit
        self._entries: dict[str, IndexEntry] = {}
        self._lock = threading.Lock()

    def entry(self, directory: Path) -> IndexEntry | None:
        hit = self._entries.get(directory.name)
        if hit is not None:
            return hit
        try:
            meta = json.loads((directory / MANIFEST_NAME).read_text())
        except (OSError, ValueError):
            return None  # not written yet, or being replaced
        if not isinstance(meta, dict):
            return None
        found = IndexEntry(meta.get("caller"), bool(meta.get("bot")) and meta.get("kind", "bot") == "bot")
        if meta.get("status") not in (None, "in-progress"):
            with self._lock:
                while len(self._entries) >= self.limit:
                    self._entries.pop(next(iter(self._entries)))
                self._entries[directory.name] = found
        return found

    def forget(self, call_id: str) -> None:
        with self._lock:
            self._entries.pop(call_id, None)


CALL_INDEX = web.AppKey("call_index", CallIndex)

#: Largest page, and most names in "callers".
MAX_LIMIT = 200
MAX_CALLERS = 1000


@dataclass(frozen=True, slots=True)
class CallQuery:
    """``GET /api/calls`` parameters; all optional (no limit: every call)."""

    limit: int | None = None
    offset: int = 0
    caller: str | None = None
    since: str | None = None  # call-id stamps (CALL_ID_TIME_FORMAT), inclusive
    until: str | None = None

    @classmethod
    def parse(cls, query: Mapping[str, str]) -> "CallQuery":
        """Raises ValueError with what is wrong."""
        def integer(name: str, low: int, high: int) -> int | None:
            text = query.get(name)
            if text is None:
                return None
            if not text.isascii() or not text.isdigit() or len(text) > 9 or not low <= int(text) <= high:
                raise ValueError(f"{name} must be a whole number from {low} to {high}")
            return int(text)

        def stamp(name: str) -> str | None:
            text = query.get(name)
            if text is None or text == "":
                return None
            try:
                when = datetime.fromisoformat(text) if len(text) <= 40 else None
            except ValueError:
                when = None
            if when is None or when.tzinfo is None:
                raise ValueError(f"{name} must be an ISO 8601 time with its offset, e.g. 2026-01-20T00:00:00Z")
            return when.astimezone(timezone.utc).strftime(CALL_ID_TIME_FORMAT)

        caller = query.get("caller") or None
        if caller is not None and len(caller) > 128:
            raise ValueError("caller is too long")
        return cls(
            limit=integer("limit", 1, MAX_LIMIT),
            offset=integer("offset", 0, 10**9) or 0,
            caller=caller,
            since=stamp("from"),
            until=stamp("to"),
        )


@dataclass(slots=True)
class CallList:
    calls: list[dict[str, Any]]
    total: int  # matching the query, before paging
    callers: list[str]  # everyone with a readable call (for a filter), sorted


def list_calls(calls_root: Path, index: CallIndex, sign: UrlSigner | None = None,
               may_read: Callable[[Any], bool] | None = None, query: CallQuery = CallQuery()) -> CallList:
    if not calls_root.is_dir():
        return CallList([], 0, [])
    callers: set[str] = set()
    matching: list[Path] = []
    # Call ids start with a UTC timestamp, so name order is time order.
    for entry in sorted(calls_root.iterdir(), reverse=True):
        name = entry.name
        if not is_valid_call_id(name):
            continue
        found = index.entry(entry)
        if found is None or not found.listed or (may_read is not None and not may_read(found.caller)):
            continue
        if isinstance(found.caller, str) and len(callers) < MAX_CALLERS:
            callers.add(found.caller)
        stamp = name[:16]  # the call id's CALL_ID_TIME_FORMAT part
        if query.caller is not None and found.caller != query.caller:
            continue
        if (query.since is not None and stamp < query.since) or (query.until is not None and stamp > query.until):
            continue
        matching.append(entry)
    end = len(matching) if query.limit is None else query.offset + query.limit
    calls = [s for s in (summarize(path, sign) for path in matching[query.offset:end]) if s is not None]
    return CallList(calls, len(matching), sorted(callers))


def _signer(request: web.Request) -> UrlSigner | None:
    config = request.app[CONFIG]
    if not config.security.auth_enabled:
        return None
    key = request.app[MEDIA_KEY]
    expires = int(time.time() + config.security.media_url_ttl)

    def sign(call_id: str, name: str) -> str:
        return f"exp={expires}&sig={media_signature(key, call_id, name, expires)}"

    return sign


def _may_read(claims: TokenClaims | None, caller: Any) -> bool:
    """With auth on, a call is readable by its caller and by admins only."""
    return claims is None or claims.admin or caller == claims.username


async def _call_dir(request: web.Request, *, signed_ok: bool = False) -> Path:
    call_id = request.match_info["call_id"]
    config = request.app[CONFIG]
    signed = (
        signed_ok and config.security.auth_enabled
        and verify_media_signature(request, request.app[MEDIA_KEY], call_id, request.match_info.get("name", ""))
    )
    claims = None if signed else authorize_data(request, config)
    if not is_valid_call_id(call_id):
        raise web.HTTPNotFound(text="no such call")
    path = config.calls_dir / call_id
    if not path.is_dir():
        raise web.HTTPNotFound(text="no such call")
    found = None if signed else await asyncio.to_thread(request.app[CALL_INDEX].entry, path)
    if not signed and not _may_read(claims, found.caller if found is not None else None):
        # 404, not 403: whether another user's call exists is not told either.
        raise web.HTTPNotFound(text="no such call")
    return path


async def calls_index(request: web.Request) -> web.Response:
    claims = authorize_data(request, request.app[CONFIG])
    try:
        query = CallQuery.parse(request.query)
    except ValueError as exc:
        raise web.HTTPBadRequest(text=json.dumps({"error": "bad-query", "message": str(exc)}),
                                 content_type="application/json") from None
    found = await asyncio.to_thread(list_calls, request.app[CONFIG].calls_dir, request.app[CALL_INDEX],
                                    _signer(request), lambda caller: _may_read(claims, caller), query)
    calls = [{**c, **live_fields(request.app, c["call_id"])} for c in found.calls]
    body = {"calls": calls, "total": found.total, "callers": found.callers}
    return web.json_response(body, headers={"Cache-Control": "no-store"})


async def call_detail(request: web.Request) -> web.Response:
    summary = await asyncio.to_thread(summarize, await _call_dir(request), _signer(request))
    if summary is None:
        raise web.HTTPNotFound(text="no such call")
    summary.update(live_fields(request.app, summary["call_id"]))
    return web.json_response(summary, headers={"Cache-Control": "no-store"})


async def call_file(request: web.Request) -> web.FileResponse:
    directory = await _call_dir(request, signed_ok=True)
    name = request.match_info["name"]
    # Only names that listing the directory yields are served: no "..", no
    # dotfiles (temporary files of atomic writes), no symlinks out.
    files = await asyncio.to_thread(_list_files, directory)
    if name not in files or name == MANIFEST_NAME:  # the manifest is served as a summary
        raise web.HTTPNotFound(text="no such file")
    suffix = _suffix(name)
    content_type = VIDEO_TYPES.get(suffix) or IMAGE_TYPES.get(suffix) or AUDIO_TYPES.get(suffix)
    headers = {"Cache-Control": "private, max-age=60", "X-Content-Type-Options": "nosniff"}
    if content_type is None:
        headers["Content-Disposition"] = "attachment"
    response = web.FileResponse(directory / name, headers=headers)
    if content_type is not None:
        response.content_type = content_type
    return response


async def rtc_config(request: web.Request) -> web.Response:
    """The STUN/TURN servers the browser should use, from the server's flags
    (with fresh short-lived TURN credentials under ``--turn-secret``)."""
    config = request.app[CONFIG]
    claims = authorize(request, config)
    servers = client_ice_servers(config.ice, config.turn, claims.username if claims else None)
    return web.json_response({"iceServers": servers}, headers={"Cache-Control": "no-store"})


def _is_active(request: web.Request, call_id: str) -> bool:
    bot = request.app.get(BOT)
    return bot is not None and any(s.id == call_id and not s.ended.is_set() for s in bot.calls.values())


async def delete_call(request: web.Request) -> web.Response:
    """Delete a call: its caller or an admin (with token auth), a local or
    trusted-network client (without). A call in progress is refused (409):
    hang up first."""
    directory = await _call_dir(request)
    call_id = directory.name
    if _is_active(request, call_id):
        raise web.HTTPConflict(text='{"error":"call-in-progress"}', content_type="application/json")
    claims = authorize(request, request.app[CONFIG])
    who = claims.username if claims else f"local client {request.remote}"
    await asyncio.to_thread(_remove_call, directory)
    request.app[SHARED_PHOTOS].forget_directory(call_id)
    request.app[CALL_INDEX].forget(call_id)
    logger.info("call %s deleted by %s", call_id, who)
    return web.json_response({"deleted": call_id})


def _remove_call(directory: Path) -> None:
    # The manifest goes first: a half-deleted directory is then no call at all.
    (directory / MANIFEST_NAME).unlink(missing_ok=True)
    shutil.rmtree(directory, ignore_errors=True)


def _call_time(directory: Path) -> float | None:
    """When a call ended (or started), from its manifest; else the directory's mtime."""
    try:
        meta = json.loads((directory / MANIFEST_NAME).read_text())
    except (OSError, ValueError):
        meta = None
    if isinstance(meta, dict):
        for key in ("ended_at", "started_at"):
            value = meta.get(key)
            if isinstance(value, str):
                try:
                    return float(calendar.timegm(time.strptime(value[:19], "%Y-%m-%dT%H:%M:%S")))
                except ValueError:
                    pass
            elif isinstance(value, (int, float)):
                return float(value)
    try:
        return directory.stat().st_mtime
    except OSError:
        return None


def expired_calls(calls_root: Path, max_age_seconds: float, now: float | None = None) -> list[Path]:
    now = time.time() if now is None else now
    if not calls_root.is_dir():
        return []
    out = []
    for entry in sorted(calls_root.iterdir()):
        if entry.is_dir() and is_valid_call_id(entry.name):
            when = _call_time(entry)
            if when is not None and now - when > max_age_seconds:
                out.append(entry)
    return out


#: Seconds between two retention sweeps.
RETENTION_INTERVAL = 3600.0


async def retention_ctx(app: web.Application) -> AsyncIterator[None]:
    """With ``--retention-days``, delete old calls at start-up and every hour."""
    days = app[CONFIG].security.retention_days
    if days is None:
        yield
        return

    async def sweep() -> None:
        while True:
            old = await asyncio.to_thread(expired_calls, app[CONFIG].calls_dir, days * 86400)
            for directory in old:
                if BOT in app and any(s.id == directory.name for s in app[BOT].calls.values()):
                    continue  # in progress (a call longer than the retention period)
                await asyncio.to_thread(_remove_call, directory)
                app[SHARED_PHOTOS].forget_directory(directory.name)
                app[CALL_INDEX].forget(directory.name)
                logger.info("call %s deleted: older than %g days (--retention-days)", directory.name, days)
            await asyncio.sleep(RETENTION_INTERVAL)  # a period, not a wait for an event

    task = asyncio.get_running_loop().create_task(sweep(), name="retention")
    yield
    await cancel_and_wait([task])


def add_gallery_routes(app: web.Application) -> None:
    """Adds the gallery routes; call from ``create_app`` before the app starts."""
    app[CALL_INDEX] = CallIndex()
    app.router.add_get("/api/calls", calls_index)
    app.router.add_get("/api/calls/{call_id}", call_detail)
    app.router.add_delete("/api/calls/{call_id}", delete_call)
    app.router.add_get("/api/calls/{call_id}/files/{name:.+}", call_file)
    app.router.add_get("/api/rtc-config", rtc_config)
