#!/usr/bin/env python3
"""The composition root: typed config from flags and environment, the app
factory, and running it.

    python server.py                      # http://127.0.0.1:8080
    python server.py --port 0 --ice-address 127.0.0.1

Every flag has an environment variable: ``--bot-name`` is ``CALLBOT_BOT_NAME``.
A flag given on the command line wins over the environment.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import os
import signal
import sys
import weakref

from pathlib import Path
from typing import Any, AsyncIterator, Sequence

from aiohttp import web

from callbot.media.options import RECORD_MODES, RecordingOptions
from callbot.config import TALKBACK_MODES, BotConfig, Config, IceConfig, PhotoConfig, SecurityConfig
from callbot.web.access import AddressLimiter
from callbot.web.access import client_ice_servers
from callbot.web.auth import mint_token
from callbot.web.gallery import add_gallery_routes
from callbot.signaling.hub import CLOSE_GOING_AWAY, SignalingHub
from callbot.signaling.registry import InMemoryRegistry, Registry
from callbot.web.keys import ADDRESS_LIMITER, BOT, CONFIG, HUB, REGISTRY, SHARED_PHOTOS, WEBSOCKETS
from callbot.web.photos_api import SharedPhotos, upload_photo
from callbot.web.ws import websocket_handler

logger = logging.getLogger("callbot.server")

STATIC_DIR = Path(__file__).resolve().parent / "static"
ENV_PREFIX = "CALLBOT_"


# -- Configuration ---------------------------------------------------------------


def _env_name(flag: str) -> str:
    return ENV_PREFIX + flag.lstrip("-").replace("-", "_").upper()


class _EnvDefaults(argparse.ArgumentParser):
    """An ArgumentParser whose every ``--flag`` also reads ``CALLBOT_FLAG``."""

    def add_argument(self, *args: Any, **kwargs: Any) -> argparse.Action:  # type: ignore[override]
        flag = next((a for a in args if a.startswith("--")), None)
        if flag is not None and flag not in ("--help",):
            env = _env_name(flag)
            kwargs["help"] = f"{kwargs.get('help', '')} [env {env}]".strip()
            value = os.environ.get(env)
            if value is not None:
                if kwargs.get("action") == "append":
                    kwargs["default"] = [v for v in value.split(",") if v]
                elif kwargs.get("action") in ("store_true", "store_false"):
                    kwargs["default"] = value.lower() in ("1", "true", "yes", "on")
                else:
                    kwargs["default"] = value
        return super().add_argument(*args, **kwargs)


def build_parser() -> argparse.ArgumentParser:
    d = Config()
    p = _EnvDefaults(
        prog="server.py",
        description="A WebRTC endpoint: WebSocket signaling and a server-side bot that records calls.",
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    p.add_argument("--host", default=d.host, help="address to listen on")
    p.add_argument("--port", type=int, default=d.port, help="port to listen on; 0 picks a free one")
    p.add_argument("--data-dir", type=Path, default=d.data_dir, help="where calls, recordings and photos go")
    p.add_argument("--bot-name", default=d.bot_name, help="the bot's username (always online)")
    p.add_argument("--log-level", default=d.log_level, choices=["debug", "info", "warning", "error"])

    g = p.add_argument_group("signaling")
    g.add_argument("--heartbeat", type=float, default=d.heartbeat, help="seconds between WebSocket pings")
    g.add_argument("--max-message-size", type=int, default=d.max_message_size, help="largest frame in bytes (1009 past it)")
    g.add_argument("--presence-interval", type=float, default=d.presence_interval, help="seconds over which presence changes are coalesced")
    g.add_argument("--backlog", type=int, default=d.backlog, help="messages queued for a slow client before it is dropped")

    i = p.add_argument_group("ICE")
    i.add_argument("--stun", action="append", default=[], metavar="URL", help="STUN server (repeatable)")
    i.add_argument("--turn", action="append", default=[], metavar="URL", help="TURN server (repeatable)")
    i.add_argument("--turn-username", default=None, help="TURN username")
    i.add_argument("--turn-credential", default=None, help="TURN password")
    i.add_argument("--ice-address", action="append", default=[], metavar="ADDR",
                   help="local address to gather host candidates from (repeatable); "
                        "aioice skips 127.0.0.1 unless named here")

    b = p.add_argument_group("bot")
    b.add_argument("--talkback", choices=TALKBACK_MODES, default=d.bot.talkback, help="what the bot sends back")
    b.add_argument("--start-bitrate", type=int, default=d.bot.start_bitrate_kbps, help="kb/s the caller starts sending video at")
    b.add_argument("--min-bitrate", type=int, default=d.bot.min_bitrate_kbps, help="kb/s floor hinted to the caller")
    b.add_argument("--max-bitrate", type=int, default=d.bot.max_bitrate_kbps, help="kb/s ceiling hinted to the caller")
    b.add_argument("--max-calls", type=int, default=d.bot.max_calls, help="concurrent bot calls in total")
    b.add_argument("--connect-timeout", type=float, default=d.bot.connect_timeout, help="seconds for a call to connect")
    b.add_argument("--max-photo-bytes", type=int, default=d.photos.max_bytes, help="largest photo accepted")
    b.add_argument("--max-photos-per-call", type=int, default=d.photos.max_per_call, help="photos accepted per call")

    c = p.add_argument_group("scale-out")
    c.add_argument("--redis-url", default=None, help="share presence and routing with other nodes through Redis")
    c.add_argument("--redis-lease", type=float, default=d.redis_lease, help="seconds a node's lease lasts")
    c.add_argument("--node-id", default=None, help="this node's id in Redis (default: host and pid)")

    r = p.add_argument_group("recording")
    rd = d.recording
    r.add_argument("--no-record", action="store_true", default=not rd.enabled,
                   help="do not record calls to the bot (sampled frames are still saved)")
    r.add_argument("--record-mode", choices=RECORD_MODES, default=rd.mode,
                   help="passthrough: received VP8/H.264+Opus into WebM/Matroska as they are; "
                        "transcode: H.264+AAC fragmented MP4")
    r.add_argument("--keyframe-interval", type=float, default=rd.keyframe_interval,
                   help="seconds between keyframes asked of the caller (0: only at start and after loss)")
    r.add_argument("--frame-interval", type=float, default=rd.frame_interval,
                   help="seconds between sampled JPEG frames (0: none)")

    s = p.add_argument_group("security and limits")
    sd = d.security
    s.add_argument("--auth-secret", default=None, help="HS256 secret: require a token on every WebSocket and API request")
    s.add_argument("--allowed-origin", action="append", default=[], metavar="ORIGIN",
                   help="origin allowed to open the WebSocket (repeatable; default: the server's own)")
    s.add_argument("--cert", default=None, help="TLS certificate (PEM): serve https and wss")
    s.add_argument("--key", default=None, help="TLS private key (PEM)")
    s.add_argument("--turn-url", action="append", default=[], metavar="URL",
                   help="TURN server using coturn's use-auth-secret (repeatable)")
    s.add_argument("--turn-secret", default=None, help="the TURN server's static-auth-secret")
    s.add_argument("--turn-ttl", type=float, default=sd.turn_ttl, help="seconds TURN credentials stay valid")
    s.add_argument("--rate-limit", type=float, default=sd.rate_limit, help="signaling messages per second per connection")
    s.add_argument("--rate-burst", type=float, default=sd.rate_burst, help="burst of messages allowed above the rate")
    s.add_argument("--max-connections-per-address", type=int, default=sd.max_connections_per_address,
                   help="concurrent WebSockets per client address")
    s.add_argument("--max-call-seconds", type=float, default=sd.max_call_seconds, help="longest bot call")
    s.add_argument("--min-free-bytes", type=int, default=sd.min_free_bytes,
                   help="refuse new bot calls when the data dir has less free space")
    return p


def config_from_args(argv: Sequence[str] | None = None) -> Config:
    a = build_parser().parse_args(argv)
    return Config(
        host=a.host,
        port=int(a.port),
        data_dir=Path(a.data_dir),
        bot_name=a.bot_name,
        log_level=a.log_level,
        heartbeat=float(a.heartbeat),
        max_message_size=int(a.max_message_size),
        presence_interval=float(a.presence_interval),
        backlog=int(a.backlog),
        ice=IceConfig(
            stun_urls=tuple(a.stun),
            turn_urls=tuple(a.turn),
            turn_username=a.turn_username,
            turn_credential=a.turn_credential,
            addresses=tuple(a.ice_address),
        ),
        bot=BotConfig(
            talkback=a.talkback,
            start_bitrate_kbps=int(a.start_bitrate),
            min_bitrate_kbps=int(a.min_bitrate),
            max_bitrate_kbps=int(a.max_bitrate),
            max_calls=int(a.max_calls),
            connect_timeout=float(a.connect_timeout),
        ),
        photos=PhotoConfig(max_bytes=int(a.max_photo_bytes), max_per_call=int(a.max_photos_per_call)),
        redis_url=a.redis_url or None,
        redis_lease=float(a.redis_lease),
        node_id=a.node_id or None,
        recording=RecordingOptions(
            enabled=not a.no_record,
            mode=a.record_mode,
            keyframe_interval=float(a.keyframe_interval),
            frame_interval=float(a.frame_interval),
        ),
        security=SecurityConfig(
            auth_secret=a.auth_secret or None,
            allowed_origins=tuple(o.rstrip("/") for o in a.allowed_origin),
            cert=a.cert or None,
            key=a.key or None,
            turn_urls=tuple(a.turn_url),
            turn_secret=a.turn_secret or None,
            turn_ttl=float(a.turn_ttl),
            rate_limit=float(a.rate_limit),
            rate_burst=float(a.rate_burst),
            max_connections_per_address=int(a.max_connections_per_address),
            max_call_seconds=float(a.max_call_seconds),
            min_free_bytes=int(a.min_free_bytes),
        ),
    )


# -- The application ---------------------------------------------------------------


async def healthz(request: web.Request) -> web.Response:
    hub = request.app[HUB]
    return web.json_response({
        "status": "ok",
        "online_here": hub.online_here,
        "bot_calls": len(request.app[BOT].calls),
        "tasks": len(asyncio.all_tasks()),
    })


async def index(request: web.Request) -> web.FileResponse:
    return web.FileResponse(STATIC_DIR / "index.html")


def create_app(config: Config) -> web.Application:
    """The app factory: every resource has its own cleanup context, so start-up
    and shutdown are symmetric and shutdown runs only what started."""
    app = web.Application(client_max_size=config.photos.max_bytes + 1024)
    app[CONFIG] = config
    app[WEBSOCKETS] = weakref.WeakSet()
    app[ADDRESS_LIMITER] = AddressLimiter(config.security.max_connections_per_address)

    async def signaling_ctx(app: web.Application) -> AsyncIterator[None]:
        registry: Registry
        if config.redis_url:
            from callbot.signaling.redis_registry import RedisRegistry  # redis only when asked for

            registry = RedisRegistry(config.redis_url, node_id=config.node_id, lease_seconds=config.redis_lease)
        else:
            registry = InMemoryRegistry()
        await registry.start()
        hub = SignalingHub(
            registry,
            reserved=frozenset({config.bot_name}),
            presence_interval=config.presence_interval,
            backlog=config.backlog,
            rate_limit=config.security.rate_limit,
            rate_burst=config.security.rate_burst,
            login_extra=lambda username: {"iceServers": client_ice_servers(config, username)},
        )
        await hub.start()
        app[REGISTRY] = registry
        app[HUB] = hub
        yield
        await hub.close()
        await registry.close()

    async def bot_ctx(app: web.Application) -> AsyncIterator[None]:
        from callbot.peer.bot import Bot

        bot = Bot(config, app[REGISTRY])
        app[REGISTRY].add_service(config.bot_name, bot)
        app[BOT] = bot
        yield
        await bot.close()

    async def close_websockets(app: web.Application) -> None:
        # Runs before cleanup: calls end first (bot_ctx), then sockets close
        # with 1001 so aiohttp does not wait on open handlers.
        if BOT in app:
            await app[BOT].close()
        for ws in list(app[WEBSOCKETS]):
            await ws.close(code=CLOSE_GOING_AWAY, message=b"server shutting down")

    app.cleanup_ctx.append(signaling_ctx)
    app.cleanup_ctx.append(bot_ctx)
    app.on_shutdown.append(close_websockets)
    app.router.add_get("/", index)
    app.router.add_get("/healthz", healthz)
    app.router.add_get("/ws", websocket_handler)
    app[SHARED_PHOTOS] = SharedPhotos()
    app.router.add_post("/api/photos", upload_photo)
    add_gallery_routes(app)
    app.router.add_static("/static/", STATIC_DIR, append_version=False)
    return app


# -- Running -----------------------------------------------------------------------


async def serve(config: Config) -> None:
    app = create_app(config)
    runner = web.AppRunner(app, shutdown_timeout=5.0, handle_signals=False)
    await runner.setup()
    ssl_context = None
    if config.security.cert:
        import ssl

        ssl_context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        ssl_context.load_cert_chain(config.security.cert, config.security.key)
    site = web.TCPSite(runner, config.host, config.port, ssl_context=ssl_context)
    await site.start()
    host, port = runner.addresses[0][:2]
    shown = f"[{host}]" if ":" in host else host
    scheme = "https" if ssl_context else "http"
    print(f"callbot serving on {scheme}://{shown}:{port}", flush=True)

    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    try:
        await stop.wait()
        logger.info("shutting down")
    finally:
        await runner.cleanup()


def mint_token_main(argv: Sequence[str]) -> int:
    p = argparse.ArgumentParser(prog="server.py mint-token", description="Print a token for --auth-secret.")
    p.add_argument("username")
    p.add_argument("--auth-secret", default=os.environ.get(_env_name("--auth-secret")), help="the server's secret")
    p.add_argument("--ttl", type=float, default=3600.0, help="seconds until it expires")
    p.add_argument("--admin", action="store_true", help="may read every call")
    a = p.parse_args(argv)
    if not a.auth_secret:
        p.error("--auth-secret (or CALLBOT_AUTH_SECRET) is required")
    print(mint_token(a.auth_secret, a.username, ttl=a.ttl, admin=a.admin))
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv[:1] == ["mint-token"]:
        return mint_token_main(argv[1:])
    config = config_from_args(argv)
    logging.basicConfig(
        level=config.log_level.upper(),
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    config.data_dir.mkdir(parents=True, exist_ok=True)
    asyncio.run(serve(config))
    return 0


if __name__ == "__main__":
    sys.exit(main())
