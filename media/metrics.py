"""Process-wide counters and histograms (prometheus-client), and the one-line
hooks the rest of the server calls to feed them.

They live here, at the bottom of the import graph, so that ``peer`` and
``photos`` can count without importing the HTTP side; ``webapp.metrics``
serves them at ``GET /metrics`` with what is true of the app right now.
Every hook never raises: a metric must not break what it measures.

=========================================  ===================================
``call_ended(reason, recording)``          peer.call: a bot call ended
``call_connected(seconds)``                peer.call: offer to connected
``ws_message_in()``, ``ws_message_out``    webapp.ws: frames in, frames out
``photo_saved(source)``,                   photos.channel, webapp.photos_api
``photo_refused(code)``
=========================================  ===================================
"""

from __future__ import annotations

import json
import logging
from typing import Any, Callable

from prometheus_client import CollectorRegistry, Counter, Histogram

logger = logging.getLogger(__name__)

REGISTRY = CollectorRegistry(auto_describe=True)

CALLS = Counter("callbot_calls", "Bot calls ended, by end reason", ["reason"], registry=REGISTRY)
CALL_SETUP = Histogram(
    "callbot_call_setup_seconds", "Seconds from a bot call's offer to connected",
    buckets=(0.025, 0.05, 0.1, 0.25, 0.5, 1, 2, 5, 10, 20), registry=REGISTRY,
)
MESSAGES = Counter("callbot_signaling_messages", "Signaling frames", ["direction"], registry=REGISTRY)
ERRORS = Counter("callbot_signaling_errors", "Error replies sent to clients, by code", ["code"], registry=REGISTRY)
RECORDING_BYTES = Counter("callbot_recording_bytes", "Bytes of recordings written by ended calls", registry=REGISTRY)
DROPPED_FRAMES = Counter("callbot_recording_dropped_frames", "Frames the recorder dropped", registry=REGISTRY)
PHOTOS_SAVED = Counter("callbot_photos_saved", "Photos saved, by source", ["source"], registry=REGISTRY)
PHOTOS_REFUSED = Counter("callbot_photos_refused", "Photos refused, by error code", ["error"], registry=REGISTRY)



def _safe(fn: Callable[..., None]) -> Callable[..., None]:
    def run(*args: Any) -> None:
        try:
            fn(*args)
        except Exception:  # a metric must never break what it measures
            logger.exception("metrics hook %s failed", fn.__name__)
    run.__name__ = fn.__name__
    run.__doc__ = fn.__doc__
    return run


@_safe
def call_ended(reason: str, recording: dict[str, Any] | None) -> None:
    CALLS.labels(reason=reason or "unknown").inc()
    if recording:
        size = sum(int(f.get("size") or 0) for f in recording.get("files", []) if f.get("kind") == "recording")
        RECORDING_BYTES.inc(size)
        DROPPED_FRAMES.inc(int(recording.get("dropped") or 0))


@_safe
def call_connected(seconds: float) -> None:
    CALL_SETUP.observe(max(0.0, seconds))


@_safe
def photo_saved(source: str) -> None:
    PHOTOS_SAVED.labels(source=source).inc()


@_safe
def photo_refused(code: str) -> None:
    PHOTOS_REFUSED.labels(error=code).inc()


_MESSAGES_IN = MESSAGES.labels(direction="in")
_MESSAGES_OUT = MESSAGES.labels(direction="out")
_ERROR_PREFIXES = (b'{"type":"error"', b'{"type": "error"')


def ws_message_in() -> None:
    """A signaling frame arrived (on the hot path: one pre-bound counter)."""
    _MESSAGES_IN.inc()


def ws_message_out(data: bytes) -> None:
    """A signaling frame went out; error replies are counted by code."""
    _MESSAGES_OUT.inc()
    if data.startswith(_ERROR_PREFIXES):
        _count_error(data)


@_safe
def _count_error(data: bytes) -> None:
    code = json.loads(data).get("code")
    ERRORS.labels(code=str(code)[:40]).inc()
