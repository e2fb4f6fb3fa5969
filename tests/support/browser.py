"""Driving Debian's Chromium with Playwright: launch flags, screen sizes, and
page helpers (screenshots, signing in, waiting for video, measuring layout
and contrast)."""

from __future__ import annotations

import hashlib
import os
import socket
from pathlib import Path
from typing import Any

from peer.api import Bot, Call

CHROMIUM = os.environ.get("CALLBOT_CHROMIUM", "/usr/bin/chromium")
ARTIFACTS = Path(__file__).resolve().parents[2] / "test-artifacts" / "browser"
#: Milliseconds for anything that involves ICE, media or the bot.
SLOW = 30_000

#: The two screens every page test runs on: a laptop and a phone.
SIZES: dict[str, dict[str, int]] = {
    "desktop": {"width": 1280, "height": 800},
    "phone": {"width": 390, "height": 844},
}
#: An address that is not loopback, added to lo in the test's namespace, so
#: a page opened from it over plain http is not a secure context (the
#: camera-needs-https notice); TEST-NET-1 (RFC 5737), reachable nowhere else.
LAN_ADDRESS = "192.0.2.10"

BASE_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    # Three fake cameras (the second is a depth camera), so the camera choice
    # has something to choose.
    "--use-fake-device-for-media-stream=device-count=3",
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
    # From the top: a full-page shot of a scrolled page draws the sticky
    # header in the middle.
    await page.evaluate("() => window.scrollTo(0, 0)")
    await page.screenshot(path=str(path), full_page=True)
    return path


async def log_in(page, username: str) -> None:
    from playwright.async_api import expect

    await page.fill("#username", username)
    await page.click("#login-button")
    await expect(page.locator("#me-name")).to_have_text(username)


async def call_bot(page) -> None:
    """Calls the bot and waits until the call is connected."""
    from playwright.async_api import expect

    await page.click('#people li[data-username="bot"] button')
    await expect(page.locator("#call-state")).to_have_attribute("data-state", "connected", timeout=SLOW)


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


async def horizontal_overflow(page) -> dict[str, Any] | None:
    """None if nothing sticks out sideways; else the page width and the
    widest offending elements (for the assertion message)."""
    return await page.evaluate(
        """() => {
          const width = document.documentElement.clientWidth;
          const total = Math.max(document.documentElement.scrollWidth, document.body.scrollWidth);
          if (total <= width) return null;
          const wide = [...document.querySelectorAll('body *')]
            .filter((e) => { const r = e.getBoundingClientRect(); return r.width && r.right > width + 0.5; })
            .slice(0, 8)
            .map((e) => `${e.tagName.toLowerCase()}#${e.id}.${[...e.classList].join('.')} right=${Math.round(e.getBoundingClientRect().right)}`);
          return { width, total, wide };
        }"""
    )


#: Colour maths in the page (WCAG 2.x relative luminance and contrast),
#: from computed styles: colours are alpha-composited down the ancestor chain
#: to the first opaque background; a gradient counts as each of its colour
#: stops, and the worst case is kept. An expression giving an object.
_COLOUR_JS = """(() => {
  const parse = (c) => {
    const m = c.match(/rgba?\\(([^)]+)\\)/);
    if (!m) return null;
    const p = m[1].split(/[ ,\\/]+/).filter(Boolean).map(Number);
    return [p[0], p[1], p[2], p.length > 3 ? p[3] : 1];
  };
  const over = (top, bottom) => [0, 1, 2].map((i) => top[i] * top[3] + bottom[i] * (1 - top[3])).concat([1]);
  const lum = (c) => {
    const f = (v) => { v /= 255; return v <= 0.03928 ? v / 12.92 : ((v + 0.055) / 1.055) ** 2.4; };
    return 0.2126 * f(c[0]) + 0.7152 * f(c[1]) + 0.0722 * f(c[2]);
  };
  const ratio = (a, b) => { const [x, y] = [lum(a), lum(b)].sort((p, q) => q - p); return (x + 0.05) / (y + 0.05); };
  // Every colour that can be behind `el`'s content: its own background
  // layers and its ancestors', down to the first opaque one.
  const backdrops = (el) => {
    const layers = [];
    for (let node = el; node; node = node.parentElement) {
      const style = getComputedStyle(node);
      const stops = style.backgroundImage && style.backgroundImage !== 'none'
        ? (style.backgroundImage.match(/rgba?\\([^)]+\\)/g) || []).map(parse) : [];
      const color = parse(style.backgroundColor);
      layers.push({ color, stops });
      if (color && color[3] >= 1) break;
    }
    let results = [[255, 255, 255, 1]];  // the canvas, if nothing is opaque
    for (let i = layers.length - 1; i >= 0; i--) {
      const { color, stops } = layers[i];
      if (color && color[3] >= 1) results = [color];
      else if (color && color[3] > 0) results = results.map((b) => over(color, b));
      if (stops.length) results = results.flatMap((b) => stops.map((s) => over(s, b)));
    }
    return results;
  };
  // Worst contrast of colour string `c` against what is behind `el`.
  const against = (c, el) => {
    const fg = parse(c);
    return Math.round(Math.min(...backdrops(el).map((b) => ratio(over(fg, b), b))) * 100) / 100;
  };
  const shown = (el) => {
    const r = el.getBoundingClientRect();
    return r.width > 0 && r.height > 0 && el.checkVisibility({ visibilityProperty: true });
  };
  const opacity = (el) => {
    let o = 1;
    for (let n = el; n; n = n.parentElement) o *= Number(getComputedStyle(n).opacity);
    return o;
  };
  const label = (el) => (el.id ? '#' + el.id + ' ' : '') + el.textContent.trim().slice(0, 40);
  return { parse, ratio, against, shown, opacity, label };
})()"""

#: Buttons and links that look like buttons.
BUTTONS = "button, a.button, a.link-button"


async def button_contrasts(page, selector: str = BUTTONS) -> list[dict[str, Any]]:
    """Every visible button with text: its worst text contrast ratio against
    what is behind it, and its opacity (elements dimmed with opacity are not
    accepted: their real colours depend on what shows through)."""
    return await page.evaluate(
        """([selector, colour]) => {
          const c = eval(colour);
          return [...document.querySelectorAll(selector)]
            .filter((el) => c.shown(el) && el.textContent.trim())
            .map((el) => ({
              name: c.label(el),
              ratio: c.against(getComputedStyle(el).color, el),
              opacity: c.opacity(el),
            }));
        }""",
        [selector, _COLOUR_JS],
    )


async def focus_ring_contrasts(page, selector: str = BUTTONS) -> list[dict[str, Any]]:
    """For each visible, enabled button: focus it as the keyboard would and
    measure its focus ring (outline) against what surrounds the button (the
    ring is drawn outside it) and against the button's own colour."""
    await page.keyboard.press("Shift")  # keyboard modality: focus() then matches :focus-visible
    return await page.evaluate(
        """([selector, colour]) => {
          const c = eval(colour);
          const out = [];
          for (const el of document.querySelectorAll(selector)) {
            if (!c.shown(el) || el.disabled) continue;
            el.focus();
            if (document.activeElement !== el) continue;
            const style = getComputedStyle(el);
            const ring = style.outlineStyle === 'none' ? null : style.outlineColor;
            out.push({
              name: c.label(el),
              focusVisible: el.matches(':focus-visible'),
              width: parseFloat(style.outlineWidth) || 0,
              around: ring ? c.against(ring, el.parentElement) : 0,
              inside: ring ? c.against(ring, el) : 0,
            });
            el.blur();
          }
          return out;
        }""",
        [selector, _COLOUR_JS],
    )


async def settle(page) -> None:
    """Waits for running CSS transitions and animations to finish (colours
    read mid-transition are neither the old nor the new ones); endless
    animations (the REC dot's pulse) are left alone."""
    await page.evaluate(
        """() => Promise.all(document.getAnimations()
             .filter((a) => a.effect && a.effect.getTiming().iterations !== Infinity)
             .map((a) => a.finished.catch(() => {})))"""
    )


async def assert_buttons_readable(page, where: str) -> int:
    """Every visible button's text has contrast >= 4.5:1 (WCAG 1.4.3 AA);
    returns how many were checked."""
    await settle(page)
    results = await button_contrasts(page)
    assert results, f"{where}: no buttons found"
    poor = [r for r in results if r["ratio"] < 4.5 or r["opacity"] < 1]
    assert not poor, f"{where}: buttons below 4.5:1 (or dimmed with opacity): {poor}"
    return len(results)


async def assert_focus_visible(page, where: str) -> int:
    """Every visible, enabled button shows a focus ring of at least 2 px with
    3:1 contrast against its surroundings (WCAG 1.4.11, 2.4.13)."""
    await settle(page)
    results = await focus_ring_contrasts(page)
    assert results, f"{where}: nothing focusable found"
    poor = [r for r in results if not r["focusVisible"] or r["width"] < 2 or r["around"] < 3]
    assert not poor, f"{where}: weak focus rings: {poor}"
    return len(results)


async def assert_no_overflow(page, where: str) -> None:
    overflow = await horizontal_overflow(page)
    assert overflow is None, f"{where}: the page is wider than the screen: {overflow}"


class ChattyBot(Bot):
    """A bot for page tests, written on the public bot API: it greets the
    caller on the chat channel, answers every message, and on "photo
    please" sends the caller a picture over the photos channel."""

    GREETING = "Hello {caller}, I am listening."

    def __init__(self) -> None:
        #: sha256 of each photo sent, with the caller's photo-saved reply.
        self.sent_photos: list[tuple[str, dict[str, Any]]] = []
        self.messages: list[str | bytes] = []

    async def on_connected(self, call: Call) -> None:
        call.send(self.GREETING.format(caller=call.caller))

    async def on_message(self, call: Call, message: str | bytes, channel: str) -> None:
        self.messages.append(message)
        if message == "photo please":
            data = picture_jpeg()
            reply = await call.send_photo(data, mime="image/jpeg", name="from-the-bot.jpg")
            self.sent_photos.append((hashlib.sha256(data).hexdigest(), reply))
            call.send("There you are.")
        else:
            call.send(f"You said: {message}")


def picture_jpeg(width: int = 640, height: int = 360) -> bytes:
    """A JPEG with a colour gradient and a white disc, for photo tests."""
    import cv2
    import numpy as np

    x = np.linspace(0, 255, width, dtype=np.uint8)
    y = np.linspace(0, 255, height, dtype=np.uint8)
    image = np.zeros((height, width, 3), dtype=np.uint8)
    image[:, :, 0] = x[None, :]
    image[:, :, 1] = y[:, None]
    image[:, :, 2] = 160
    cv2.circle(image, (width // 2, height // 2), height // 4, (255, 255, 255), -1)
    ok, encoded = cv2.imencode(".jpg", image, [cv2.IMWRITE_JPEG_QUALITY, 90])
    assert ok
    return encoded.tobytes()
