"""Driving Debian's Chromium with Playwright: launch flags, and page helpers."""

from __future__ import annotations

import os
import socket
from pathlib import Path

CHROMIUM = os.environ.get("CALLBOT_CHROMIUM", "/usr/bin/chromium")
ARTIFACTS = Path(__file__).resolve().parents[2] / "test-artifacts" / "browser"
#: Milliseconds for anything that involves ICE, media or the bot.
SLOW = 30_000

BASE_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--use-fake-device-for-media-stream",
    "--allow-loopback-in-peer-connection",
]
#: Grants camera and microphone without a prompt.
GRANT_MEDIA = "--use-fake-ui-for-media-stream"


async def launch_chromium(pw, *, netns: str | None = None, directory: Path | None = None,
                          insecure_origin: str | None = None, extra_args: tuple[str, ...] = ()):
    """Chromium with fake media, optionally inside network namespace ``netns``.

    Playwright talks to Chromium over inherited pipes, so a wrapper that
    enters the namespace with ``ip netns exec`` and then runs Chromium keeps
    the same driver. ``insecure_origin``: an http origin that is not
    localhost where getUserMedia must still work.
    """
    executable = CHROMIUM
    if netns is not None:
        assert directory is not None, "a directory for the wrapper script"
        directory.mkdir(parents=True, exist_ok=True)
        wrapper = directory / f"chromium-in-{netns}"
        wrapper.write_text(f'#!/bin/sh\nexec ip netns exec {netns} {CHROMIUM} "$@"\n')
        wrapper.chmod(0o755)
        executable = str(wrapper)
    args = [*BASE_ARGS, GRANT_MEDIA, *extra_args]
    if insecure_origin:
        args.append(f"--unsafely-treat-insecure-origin-as-secure={insecure_origin}")
    return await pw.chromium.launch(executable_path=executable, headless=True, args=args)
def require_browser_namespace() -> None:
    """Fail (not skip) unless Chromium exists and the test runs in a network
    namespace with only loopback (scripts/test makes one), where Chromium's
    candidates are 127.0.0.1 only."""
    import pytest

    if not Path(CHROMIUM).exists():
        pytest.fail(f"no Chromium at {CHROMIUM}: scripts/test installs Debian's chromium", pytrace=False)
    # /sys/class/net shows the namespace sysfs was mounted in, not ours.
    if [name for _, name in socket.if_nameindex()] != ["lo"]:
        pytest.fail(
            "browser tests must run in a network namespace with only loopback: "
            "unshare -n sh -c 'ip link set lo up && python -m pytest ...' (unshare -rn when not root)",
            pytrace=False,
        )



async def screenshot(page, name: str) -> Path:
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    path = ARTIFACTS / f"{name}.png"
    await page.screenshot(path=str(path), full_page=True)
    return path


async def log_in(page, username: str) -> None:
    from playwright.async_api import expect

    await page.fill("#username", username)
    await page.click("#login-button")
    await expect(page.locator("#me-name")).to_have_text(username)


async def wait_video_playing(page, selector: str, frames: int = 15) -> None:
    """Waits until the <video> has decoded `frames` more frames than now."""
    await page.wait_for_function(
        """(sel) => { const v = document.querySelector(sel);
             return v && v.readyState >= 2 && v.videoWidth > 0
                    && v.getVideoPlaybackQuality().totalVideoFrames > 0; }""",
        arg=selector, timeout=SLOW,
    )
    start = await page.evaluate(
        "(sel) => document.querySelector(sel).getVideoPlaybackQuality().totalVideoFrames", selector
    )
    await page.wait_for_function(
        """([sel, n]) => { const v = document.querySelector(sel);
             return v.getVideoPlaybackQuality().totalVideoFrames > n && !v.paused; }""",
        arg=[selector, start + frames], timeout=SLOW,
    )
