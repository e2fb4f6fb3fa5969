"""What a server process holds, read from /proc: memory, descriptors, threads."""

from __future__ import annotations

import os
from pathlib import Path


def _status(pid: int) -> dict[str, str]:
    out = {}
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        key, _, value = line.partition(":")
        out[key] = value.strip()
    return out


def rss_bytes(pid: int) -> int:
    """Resident memory now."""
    return int(_status(pid)["VmRSS"].split()[0]) * 1024


def peak_rss_bytes(pid: int) -> int:
    """The most resident memory the process ever had (VmHWM)."""
    return int(_status(pid)["VmHWM"].split()[0]) * 1024


def reset_peak_rss(pid: int) -> None:
    """Start VmHWM again from the current RSS (Linux >= 4.0: write 5 to clear_refs)."""
    Path(f"/proc/{pid}/clear_refs").write_text("5")


def open_fds(pid: int) -> int:
    return len(os.listdir(f"/proc/{pid}/fd"))


def threads(pid: int) -> int:
    return int(_status(pid)["Threads"])
