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

logger = logging.getLogger("server")


async def serve(config: Config, app: web.Application) -> None:
    runner = web.AppRunner(app, shutdown_timeout=5.0, handle_signals=False)
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

    asyncio.run(run())
    return 0


if __name__ == "__main__":
    sys.exit(main())
