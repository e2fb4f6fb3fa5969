"""``GET /metrics``: the Prometheus text format (prometheus-client).

The process's counters and histograms are ``media.metrics`` (fed by one-line
hooks where things happen); what is true of the app right now (calls and
connections open, the Redis link, the photo byte budget) is read from the app
when scraped, so the code that owns that state needs no hook.

Served to loopback clients (behind a trusted proxy: the forwarded address)
and to admin tokens only: the figures say who is busy and when.
"""

from __future__ import annotations

from typing import Iterator

from aiohttp import web
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, generate_latest
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector

from media.metrics import REGISTRY

__all__ = ["add_metrics_route"]


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
