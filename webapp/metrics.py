"""``GET /metrics``: the Prometheus text format (prometheus-client).

Counters and histograms live in one registry of this module (a process's
events, whichever app saw them); the rest is read from the app when scraped
(calls and connections open now, the Redis link, the photo byte budget), so
the code that owns that state needs no hook. The hooks below are the few
calls other modules make (one line each, never raising):

=========================================  ===================================
``call_ended(reason, recording)``          peer.call: a bot call ended
``call_connected(seconds)``                peer.call: offer to connected
``ws_message_in()``, ``counting_send``     webapp.ws: frames in, frames out
``photo_saved(source)``,                   photos.channel, webapp.photos_api
``photo_refused(code)``
=========================================  ===================================

Served to loopback clients (behind a trusted proxy: the forwarded address)
and to admin tokens only: the figures say who is busy and when.
"""

from __future__ import annotations

import json
import logging
from typing import Any, Awaitable, Callable, Iterator

from aiohttp import web
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, Counter, Histogram, generate_latest
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector

logger = logging.getLogger(__name__)

__all__ = [
    "REGISTRY",
    "add_metrics_route",
    "call_connected",
    "call_ended",
    "counting_send",
    "photo_refused",
    "photo_saved",
    "ws_message_in",
]

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

_ERROR_PREFIX = '{"type":"error"'
_ERROR_PREFIX_SPACED = '{"type": "error"'


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
def ws_message_in() -> None:
    MESSAGES.labels(direction="in").inc()


@_safe
def photo_saved(source: str) -> None:
    PHOTOS_SAVED.labels(source=source).inc()


@_safe
def photo_refused(code: str) -> None:
    PHOTOS_REFUSED.labels(error=code).inc()


@_safe
def _count_out(text: str) -> None:
    MESSAGES.labels(direction="out").inc()
    if text.startswith((_ERROR_PREFIX, _ERROR_PREFIX_SPACED)):
        code = json.loads(text).get("code")
        ERRORS.labels(code=str(code)[:40]).inc()


def counting_send(send: Callable[[str], Awaitable[None]]) -> Callable[[str], Awaitable[None]]:
    """``send`` (a WebSocket's send_str), counting frames and error codes."""
    async def send_counted(text: str) -> None:
        _count_out(text)
        await send(text)
    return send_counted


class _AppCollector(Collector):
    """What is true of one app right now, read when scraped."""

    def __init__(self, app: web.Application) -> None:
        self.app = app

    def collect(self) -> Iterator[GaugeMetricFamily]:
        from photos.protocol import SERVER_BUDGET  # noqa: PLC0415
        from webapp.keys import BOT, REGISTRY as REGISTRY_KEY, WEBSOCKETS  # noqa: PLC0415

        app = self.app
        active = GaugeMetricFamily("callbot_calls_active", "Bot calls in progress")
        bot = app.get(BOT)
        active.add_metric([], sum(1 for s in bot.calls.values() if not s.ending) if bot is not None else 0)
        yield active
        conns = GaugeMetricFamily("callbot_signaling_connections", "Open signaling WebSockets")
        conns.add_metric([], len(app[WEBSOCKETS]))
        yield conns
        redis = GaugeMetricFamily("callbot_redis_link_up", "1 when the Redis link is up (absent without Redis)")
        registry = app.get(REGISTRY_KEY)
        state = getattr(getattr(registry, "state", None), "value", None)
        if state is not None:
            redis.add_metric([], 1.0 if state == "up" else 0.0)
        yield redis
        budget = GaugeMetricFamily("callbot_photo_bytes_in_memory", "Photo bytes held in memory")
        budget.add_metric([], SERVER_BUDGET.used)
        yield budget


async def metrics_handler(request: web.Request) -> web.Response:
    from webapp.access import authorize, is_local_client  # noqa: PLC0415
    from webapp.keys import CONFIG  # noqa: PLC0415

    config = request.app[CONFIG]
    if not is_local_client(request):
        claims = authorize(request, config) if config.security.auth_enabled else None
        if claims is None or not claims.admin:
            raise web.HTTPForbidden(text='{"error":"metrics-are-private"}', content_type="application/json")
    live = CollectorRegistry(auto_describe=False)
    live.register(_AppCollector(request.app))
    body = generate_latest(REGISTRY) + generate_latest(live)
    return web.Response(body=body, headers={"Content-Type": CONTENT_TYPE_LATEST, "Cache-Control": "no-store"})


def add_metrics_route(app: web.Application) -> None:
    app.router.add_get("/metrics", metrics_handler)
