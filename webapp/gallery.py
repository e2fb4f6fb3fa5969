"""The gallery API: past calls with the bot, read from ``data/calls/``.

    GET /api/calls                          {"calls": [summary, ...]}, newest first
    GET /api/calls/{call_id}                one summary
    GET /api/calls/{call_id}/files/{name}   a file of the call; aiohttp's
                                            FileResponse answers Range requests
                                            (RFC 9110 section 14), so a
                                            recording seeks in a <video>
    GET /api/rtc-config                     {"iceServers": [...]} for the page

A call in progress on this server says ``"live": true`` and where to watch it
(``"whep": "/whep/<call_id>"``, see ``webapp.whep``); others ``false``/``null``.

A summary is built from ``meta.json`` plus the files actually present, so it
does not depend on how the recorder names its files: video files are the
recording, images that are not photos are sampled frames. Paths are only
ever built from a valid call id (``storage.is_valid_call_id``) and a name
found by listing the directory, never from the request as given.
"""

from __future__ import annotations

import asyncio
import json
import logging
from pathlib import Path
from typing import Any
from urllib.parse import quote

from aiohttp import web

from media.storage import MANIFEST_NAME, is_valid_call_id
from peer.ice import client_ice_servers
from webapp.access import authorize
from webapp.auth import TokenClaims
from webapp.keys import CONFIG
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


def summarize(call_dir: Path) -> dict[str, Any] | None:
    """The gallery summary of one call directory, or None if it is not a bot call."""
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
        return f"/api/calls/{call_id}/files/{quote(name)}"

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
    }


def list_calls(calls_root: Path) -> list[dict[str, Any]]:
    if not calls_root.is_dir():
        return []
    out = []
    # Call ids start with a UTC timestamp, so name order is time order.
    for entry in sorted(calls_root.iterdir(), reverse=True):
        if entry.is_dir() and is_valid_call_id(entry.name):
            summary = summarize(entry)
            if summary is not None:
                out.append(summary)
    return out


def _may_read(claims: TokenClaims | None, caller: Any) -> bool:
    """With auth on, a call is readable by its caller and by admins only."""
    return claims is None or claims.admin or caller == claims.username


def _caller_of(path: Path) -> Any:
    try:
        meta = json.loads((path / MANIFEST_NAME).read_text())
    except (OSError, ValueError):
        return None
    return meta.get("caller") if isinstance(meta, dict) else None


async def _call_dir(request: web.Request) -> Path:
    claims = authorize(request, request.app[CONFIG])
    call_id = request.match_info["call_id"]
    if not is_valid_call_id(call_id):
        raise web.HTTPNotFound(text="no such call")
    path = request.app[CONFIG].calls_dir / call_id
    if not path.is_dir():
        raise web.HTTPNotFound(text="no such call")
    if not _may_read(claims, await asyncio.to_thread(_caller_of, path)):
        # 404, not 403: whether another user's call exists is not told either.
        raise web.HTTPNotFound(text="no such call")
    return path


async def calls_index(request: web.Request) -> web.Response:
    claims = authorize(request, request.app[CONFIG])
    calls = await asyncio.to_thread(list_calls, request.app[CONFIG].calls_dir)
    calls = [{**c, **live_fields(request.app, c["call_id"])} for c in calls if _may_read(claims, c.get("caller"))]
    return web.json_response({"calls": calls}, headers={"Cache-Control": "no-store"})


async def call_detail(request: web.Request) -> web.Response:
    summary = await asyncio.to_thread(summarize, await _call_dir(request))
    if summary is None:
        raise web.HTTPNotFound(text="no such call")
    summary.update(live_fields(request.app, summary["call_id"]))
    return web.json_response(summary, headers={"Cache-Control": "no-store"})


async def call_file(request: web.Request) -> web.FileResponse:
    directory = await _call_dir(request)
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


def add_gallery_routes(app: web.Application) -> None:
    """Adds the gallery routes; call from ``create_app`` before the app starts."""
    app.router.add_get("/api/calls", calls_index)
    app.router.add_get("/api/calls/{call_id}", call_detail)
    app.router.add_get("/api/calls/{call_id}/files/{name:.+}", call_file)
    app.router.add_get("/api/rtc-config", rtc_config)
