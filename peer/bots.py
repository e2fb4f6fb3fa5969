"""The built-in bots, written on the public API exactly as a user's bot is.

``--talkback`` picks one of them when no ``--bot`` is given:

- ``none`` -> :class:`RecorderBot`: records the call and saves sampled
  frames (as every bot does unless it says otherwise); sends nothing back.
- ``echo`` -> :class:`EchoBot`: the caller's own encoded audio and video
  sent straight back, never decoded or re-encoded.
- ``overlay`` -> :class:`OverlayBot`: the caller's video with the elapsed
  time and a recording mark drawn on it with OpenCV (in the bot's worker
  pool, off the event loop), re-encoded by aiortc; audio echoed.
"""

from __future__ import annotations

import importlib
import time

import cv2
from av import VideoFrame

from peer.api import Bot, Call

__all__ = ["RecorderBot", "EchoBot", "OverlayBot", "TALKBACK_BOTS", "load_bot"]


class RecorderBot(Bot):
    """The default: records, samples frames, says nothing."""


class EchoBot(Bot):
    async def on_call(self, call: Call) -> None:
        call.echo("audio", "video")


def annotate(frame: VideoFrame, elapsed: float) -> VideoFrame:
    """Draw the elapsed time and a red recording dot."""
    image = frame.to_ndarray(format="bgr24")
    h, w = image.shape[:2]
    scale = max(0.5, w / 960)
    minutes, seconds = divmod(int(elapsed), 60)
    text = f"REC {minutes:02d}:{seconds:02d}"
    org = (int(40 * scale), int(44 * scale))
    cv2.circle(image, (int(20 * scale), int(34 * scale)), int(9 * scale), (0, 0, 255), -1, cv2.LINE_AA)
    cv2.putText(image, text, org, cv2.FONT_HERSHEY_SIMPLEX, scale, (0, 0, 0), int(4 * scale), cv2.LINE_AA)
    cv2.putText(image, text, org, cv2.FONT_HERSHEY_SIMPLEX, scale, (255, 255, 255), max(1, int(2 * scale)), cv2.LINE_AA)
    return VideoFrame.from_ndarray(image, format="bgr24")


class OverlayBot(Bot):
    async def on_call(self, call: Call) -> None:
        started = time.monotonic()
        # A plain function: the runtime runs it in the bot's worker pool.
        call.send_video(lambda frame: annotate(frame, time.monotonic() - started))
        call.echo("audio")


TALKBACK_BOTS: dict[str, type[Bot]] = {"none": RecorderBot, "echo": EchoBot, "overlay": OverlayBot}


class BotLoadError(ValueError):
    """``--bot`` names nothing we can load."""


def load_bot(spec: str | None, talkback: str = "none") -> Bot:
    """The bot ``--bot module:Class`` names (a ``Bot`` subclass, or a callable
    returning a ``Bot``), or the built-in bot for ``--talkback``."""
    if not spec:
        return TALKBACK_BOTS[talkback]()
    module_name, sep, attr = spec.partition(":")
    if not sep or not module_name or not attr:
        raise BotLoadError(f"--bot {spec!r}: expected module:Class, e.g. mybot:MyBot")
    try:
        module = importlib.import_module(module_name)
    except ImportError as exc:
        raise BotLoadError(f"--bot {spec!r}: cannot import {module_name!r}: {exc}") from exc
    target = module
    for part in attr.split("."):
        target = getattr(target, part, None)
        if target is None:
            raise BotLoadError(f"--bot {spec!r}: {module_name!r} has no {attr!r}")
    bot = target() if callable(target) else target
    if not isinstance(bot, Bot):
        raise BotLoadError(f"--bot {spec!r}: {attr} is not a peer.Bot subclass")
    return bot
