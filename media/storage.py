"""Files on disk are either complete or absent.

Everything the server writes (photos, sampled frames, manifests) goes to a
temporary name in the same directory, is flushed and fsynced, and is then
renamed over its final name: rename(2) is atomic within one file system, so a
reader or a crash sees the old file or the new one, never half of one.

Names on disk are always chosen here, never taken from a client: a call
directory is ``<UTC timestamp>-<random hex>``; a client's username or photo
name only ever goes *into* a manifest.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import secrets
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

MANIFEST_NAME = "meta.json"
#: A file name a bot may choose (``Call.write_file``): plain, no dotfiles.
_PLAIN_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,99}")
#: Names the server writes itself; a bot's file may not take them.
RESERVED_PREFIXES = ("photo-", "frame-", "recording.", "sent-", "meta.")


def _fsync_dir(directory: Path) -> None:
    try:
        fd = os.open(directory, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def atomic_write_bytes(path: Path, data: bytes, *, fsync: bool = True) -> None:
    """Write ``data`` to ``path`` so that ``path`` is complete or absent."""
    path = Path(path)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".tmp-", suffix=path.suffix)
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            if fsync:
                f.flush()
                os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        try:
            os.unlink(tmp)
        except FileNotFoundError:
            pass
        raise
    if fsync:
        _fsync_dir(path.parent)


def atomic_write_json(path: Path, obj: Any, *, fsync: bool = True) -> None:
    data = json.dumps(obj, indent=2, sort_keys=False, ensure_ascii=False).encode()
    atomic_write_bytes(path, data + b"\n", fsync=fsync)


def sha256_file(path: Path, chunk: int = 1 << 20) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        while block := f.read(chunk):
            h.update(block)
    return h.hexdigest()


#: The UTC time a call id starts with (its first 16 characters); ids sort by it.
CALL_ID_TIME_FORMAT = "%Y%m%dT%H%M%SZ"


def new_call_id(now: float | None = None) -> str:
    """A sortable, unguessable id: ``20261121T223501Z-3f9a1c2b``."""
    stamp = time.strftime(CALL_ID_TIME_FORMAT, time.gmtime(now if now is not None else time.time()))
    return f"{stamp}-{secrets.token_hex(4)}"


def is_valid_call_id(value: str) -> bool:
    """True for names :func:`new_call_id` makes; used before touching a path."""
    if len(value) != 25 or value[8] != "T" or value[15:17] != "Z-":
        return False
    return value[:8].isdigit() and value[9:15].isdigit() and all(
        c in "0123456789abcdef" for c in value[17:]
    )


def is_bot_file_name(name: str) -> bool:
    """Whether a bot may write ``name``: plain, and not a name the server uses."""
    return bool(_PLAIN_NAME.fullmatch(name)) and not name.startswith(RESERVED_PREFIXES)


@dataclass(frozen=True)
class CallDirectory:
    """The directory that holds everything from one call."""

    call_id: str
    path: Path

    @property
    def manifest_path(self) -> Path:
        return self.path / MANIFEST_NAME

    def file(self, name: str) -> Path:
        """A path for a server-chosen file name inside this call's directory."""
        if "/" in name or "\\" in name or name in ("", ".", "..") or "\x00" in name:
            raise ValueError(f"not a plain file name: {name!r}")
        return self.path / name


def create_call_directory(calls_root: Path, call_id: str | None = None) -> CallDirectory:
    """Make a new call directory, named ``call_id`` (from :func:`new_call_id`)
    or a fresh id. A name already taken gets a fresh id instead."""
    calls_root.mkdir(parents=True, exist_ok=True)
    while True:
        if call_id is None or not is_valid_call_id(call_id):
            call_id = new_call_id()
        path = calls_root / call_id
        try:
            path.mkdir()
        except FileExistsError:
            call_id = None
            continue
        return CallDirectory(call_id, path)
