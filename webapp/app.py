"""The app factory: ``create_app(config, bot)`` returns the aiohttp application.

Every resource has its own cleanup context (signaling, then the bot
runtime), so start-up and shutdown are symmetric and shutdown runs only what
started. Open WebSockets are tracked in a WeakSet and closed with 1001 on
shutdown, after every call has ended. Embedders call this and run the app
themselves, or mount it as a sub-application.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import logging
import os
import weakref
from pathlib import Path
from typing import AsyncIterator

from aiohttp import web

from peer.api import Bot
from peer.bots import load_bot
from peer.ice import client_ice_servers
from peer.runtime import BotRuntime
from peer.whep import LiveViewers
from signaling.hub import CLOSE_GOING_AWAY, SignalingHub
from signaling.registry import InMemoryRegistry, Registry
from photos.protocol import SERVER_BUDGET
from webapp import metrics
from webapp.access import AddressLimiter, make_security_middleware
from webapp.auth import TokenVerifier
from webapp.config import Config
from webapp.conntest_api import add_connection_test_routes
from webapp.diskwatch import disk_watch_ctx
from webapp.gallery import add_gallery_routes, retention_ctx
from webapp.keys import (
    ADDRESS_LIMITER, BOT, CONFIG, HUB, MEDIA_KEY, REGISTRY, SHARED_PHOTOS, UPLOAD_TOKENS, VERIFIER, VIEWERS,
    WEBSOCKETS,
)
from webapp.photos_api import upload_photo
from webapp.shared_photos import SharedPhotos, UploadTokens
from webapp.whep import add_whep_routes
from webapp.whip import add_whip_routes
from webapp.ws import is_websocket_upgrade, websocket_handler

logger = logging.getLogger(__name__)

STATIC_DIR = Path(__file__).resolve().parent.parent / "static"


async def healthz(request: web.Request) -> web.Response:
    hub = request.app[HUB]
    return web.json_response({
        "status": "ok",
        "online_here": hub.online_here,
        "bot_calls": len(request.app[BOT].calls),
        "whip_sessions": len(request.app[BOT].whip),
        "whep_viewers": len(request.app[VIEWERS].viewers),
        "tasks": len(asyncio.all_tasks()),
    })


async def index(request: web.Request) -> web.StreamResponse:
    # The tutorial's clients open their WebSocket on the root path: an
    # upgrade there is signaling; a plain GET is the page.
    if is_websocket_upgrade(request):
        return await websocket_handler(request)
    return web.FileResponse(STATIC_DIR / "index.html")


def create_app(config: Config, bot: Bot | None = None) -> web.Application:
    """The application for ``config``, running ``bot`` (default: the bot
    ``config.bot_spec`` names, else the built-in one for ``--talkback``)."""
    if bot is None:
        bot = load_bot(config.bot_spec, config.bot.talkback)
    sec = config.security
    verifier = None
    if sec.auth_enabled:
        verifier = TokenVerifier(secret=sec.auth_secret, jwks=sec.auth_jwks, issuer=sec.auth_issuer,
                                 audience=sec.auth_audience, algorithms=sec.auth_algorithms)
    app = web.Application(
        client_max_size=config.photos.max_bytes + 1024,
        middlewares=[make_security_middleware(config, verifier)],
    )
    app[CONFIG] = config
    app[WEBSOCKETS] = weakref.WeakSet()
    app[ADDRESS_LIMITER] = AddressLimiter(sec.max_connections_per_address)
    # Media URLs signed with a key derived from the shared secret verify on
    # every node; without one, a random key per process.
    app[MEDIA_KEY] = (hmac.new(sec.auth_secret.encode(), b"callbot media urls", hashlib.sha256).digest()
                      if sec.auth_secret else os.urandom(32))
    # A key of their own (derived), so an upload token is never a media signature.
    app[UPLOAD_TOKENS] = UploadTokens(hmac.new(app[MEDIA_KEY], b"upload tokens", hashlib.sha256).digest())
    SERVER_BUDGET.configure(config.photos.max_memory)
    if verifier is not None:
        app[VERIFIER] = verifier
    if sec.auth_secret is not None and len(sec.auth_secret.encode()) < 32:
        # RFC 7518 section 3.2: an HS256 key at least as long as the hash.
        logger.warning("--auth-secret is %d bytes; HS256 wants at least 32 (RFC 7518 section 3.2)",
                       len(sec.auth_secret.encode()))
    if sec.trusted_networks and not sec.auth_enabled:
        logger.warning("without token auth, clients from %s may read and delete every call",
                       ", ".join(sec.trusted_networks))
    if sec.allow_open_turn and sec.turn_secret and not sec.auth_enabled:
        logger.warning("--allow-open-turn: anyone may fetch TURN credentials from /api/rtc-config")

    async def verifier_ctx(app: web.Application) -> AsyncIterator[None]:
        if verifier is not None:
            await verifier.start()
        yield

    async def signaling_ctx(app: web.Application) -> AsyncIterator[None]:
        registry: Registry
        if config.redis_url:
            from signaling.redis_registry import RedisRegistry  # noqa: PLC0415  (redis only when asked for)

            registry = RedisRegistry(config.redis_url, node_id=config.node_id, lease_seconds=config.redis_lease)
        else:
            registry = InMemoryRegistry()
        await registry.start()
        hub = SignalingHub(
            registry,
            reserved=frozenset({config.bot_name}),
            presence_interval=config.presence_interval,
            backlog=config.backlog,
            backlog_bytes=config.backlog_bytes,
            resume_grace=config.resume_grace,
            heartbeat=config.heartbeat,
            rate_limit=config.security.rate_limit,
            rate_burst=config.security.rate_burst,
            login_extra=lambda username: {
                "iceServers": client_ice_servers(config.ice, config.turn, username),
                # POST /api/photos without token auth proves the login with it.
                "uploadToken": app[UPLOAD_TOKENS].mint(username),
            },
        )
        await hub.start()
        app[REGISTRY] = registry
        app[HUB] = hub
        yield
        await hub.close()
        await registry.close()

    async def bot_ctx(app: web.Application) -> AsyncIterator[None]:
        runtime = BotRuntime(config.peer(), app[REGISTRY], bot)
        await runtime.start()
        app[REGISTRY].add_service(config.bot_name, runtime)
        app[BOT] = runtime
        yield
        await runtime.close()

    async def viewers_ctx(app: web.Application) -> AsyncIterator[None]:
        # WHEP viewers watch the runtime's calls: they start after it and
        # end before it.
        viewers = LiveViewers(app[BOT])
        app[VIEWERS] = viewers
        yield
        await viewers.close()

    async def close_websockets(app: web.Application) -> None:
        # Runs before cleanup: calls end first (bot_ctx), then sockets close
        # with 1001 so aiohttp does not wait on open handlers.
        if HUB in app:
            app[HUB].stop_holding()  # sockets closed by the shutdown are not resumable
        if VIEWERS in app:
            await app[VIEWERS].close()
        if BOT in app:
            await app[BOT].close()
        for ws in list(app[WEBSOCKETS]):
            await ws.close(code=CLOSE_GOING_AWAY, message=b"server shutting down")

    app.cleanup_ctx.append(verifier_ctx)
    app.cleanup_ctx.append(signaling_ctx)
    app.cleanup_ctx.append(bot_ctx)
    app.cleanup_ctx.append(retention_ctx)
    app.cleanup_ctx.append(disk_watch_ctx)
    app.cleanup_ctx.append(viewers_ctx)
    app.on_shutdown.append(close_websockets)
    app.router.add_get("/", index)
    app.router.add_get("/healthz", healthz)
    app.router.add_get("/ws", websocket_handler)
    app[SHARED_PHOTOS] = SharedPhotos()
    app.router.add_post("/api/photos", upload_photo)
    add_gallery_routes(app)
    metrics.add_metrics_route(app)
    add_connection_test_routes(app)
    add_whip_routes(app)
    add_whep_routes(app)
    app.router.add_static("/static/", STATIC_DIR, append_version=False)
    return app
