#!/usr/bin/env python3
"""The composition root: config from flags and environment, the bot, the app
(``webapp.app.create_app``), and running it.

    python server.py                      # http://127.0.0.1:8080
    python server.py --port 0 --ice-address 127.0.0.1
    python server.py --bot mybot:MyBot    # your own bot (see the README)

Every flag has an environment variable: ``--bot-name`` is ``CALLBOT_BOT_NAME``
(``webapp/flags.py``). A flag given on the command line wins over the environment.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import os
import signal
import sys
from typing import Sequence

from aiohttp import web

from peer.bots import BotLoadError, load_bot
from webapp.app import create_app
from webapp.auth import mint_token
from webapp.config import Config
from webapp.flags import config_from_args, env_name
from webapp.httpguard import make_runner, start_site

logger = logging.getLogger("server")


async def serve(config: Config, app: web.Application) -> None:
    _raise_descriptor_limit()
    # Timeouts, the access log that redacts tokens, and the connection
    # guard: webapp/httpguard.py.
    runner = make_runner(app, config)
    await runner.setup()
    ssl_context = None
    if config.security.cert:
        import ssl

        ssl_context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        ssl_context.load_cert_chain(config.security.cert, config.security.key)
    elif config.security.self_signed:
        from webapp.tls import self_signed_context

        ssl_context, fingerprint = self_signed_context(config.data_dir / "tls", config.host)
        print(f"self-signed certificate, SHA-256 {fingerprint}", file=sys.stderr, flush=True)
    _, port = await start_site(runner, config, config.host, config.port, ssl_context)
    host = config.host
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


def _raise_descriptor_limit() -> None:
    """Raise the soft descriptor limit to the hard one: --max-connections
    (1000 by default) must fit, with room for files, calls and Redis."""
    try:
        import resource

        soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
        if hard == resource.RLIM_INFINITY or soft < hard:
            resource.setrlimit(resource.RLIMIT_NOFILE, (hard if hard != resource.RLIM_INFINITY else 65536, hard))
    except (ImportError, ValueError, OSError) as exc:
        logger.warning("cannot raise the descriptor limit: %s", exc)


def mint_token_main(argv: Sequence[str]) -> int:
    p = argparse.ArgumentParser(prog="server.py mint-token", description="Print a token for --auth-secret.")
    p.add_argument("username")
    p.add_argument("--auth-secret", default=os.environ.get(env_name("--auth-secret")), help="the server's secret")
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
    # A bot module given as a path relative to where the server is started.
    sys.path.insert(0, os.getcwd())
    try:
        bot = load_bot(config.bot_spec, config.bot.talkback)
    except BotLoadError as exc:
        print(f"server.py: error: {exc}", file=sys.stderr)
        return 2
    config.data_dir.mkdir(parents=True, exist_ok=True)

    async def run() -> None:
        await serve(config, create_app(config, bot))

    with asyncio.Runner(loop_factory=event_loop_factory(config.event_loop)) as runner:
        runner.run(run())
    return 0


def event_loop_factory(choice: str):
    """uvloop's event loop when asked for, or (``auto``) when installed (the
    ``fast`` extra); asyncio's otherwise. uvloop halves the event loop's own
    cost per signaling message (README, signaling benchmark)."""
    if choice in ("auto", "uvloop"):
        try:
            import uvloop
        except ImportError:
            if choice == "uvloop":
                raise SystemExit("server.py: --event-loop uvloop: uvloop is not installed (pip install uvloop)")
        else:
            logger.info("event loop: uvloop %s", uvloop.__version__)
            return uvloop.new_event_loop
    return None


if __name__ == "__main__":
    sys.exit(main())
