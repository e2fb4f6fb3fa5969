"""Command-line flags and their environment variables -> :class:`Config`.

Every flag has an environment variable: ``--bot-name`` is ``CALLBOT_BOT_NAME``
(repeatable flags take a comma-separated list). A flag given on the command
line wins over the environment. The flags are a contract: extend, never rename.
"""

from __future__ import annotations

import argparse
import os
from pathlib import Path
from typing import Any, Sequence

from media.options import RECORD_MODES, RecordingOptions
from webapp.config import EVENT_LOOPS, TALKBACK_MODES, BotConfig, Config, IceConfig, PhotoConfig, SecurityConfig

ENV_PREFIX = "CALLBOT_"


def env_name(flag: str) -> str:
    return ENV_PREFIX + flag.lstrip("-").replace("-", "_").upper()


def _env_default(args: tuple[Any, ...], kwargs: dict[str, Any]) -> dict[str, Any]:
    """``kwargs`` with the default taken from ``CALLBOT_FLAG`` when it is set."""
    flag = next((a for a in args if a.startswith("--")), None)
    if flag is not None and flag not in ("--help",):
        env = env_name(flag)
        kwargs["help"] = f"{kwargs.get('help', '')} [env {env}]".strip()
        value = os.environ.get(env)
        if value is not None:
            if kwargs.get("action") == "append":
                kwargs["default"] = [v for v in value.split(",") if v]
            elif kwargs.get("action") in ("store_true", "store_false"):
                kwargs["default"] = value.lower() in ("1", "true", "yes", "on")
            else:
                # A string default goes through the flag's type, as typed.
                kwargs["default"] = value
    return kwargs


class _EnvDefaults(argparse.ArgumentParser):
    """An ArgumentParser whose every ``--flag`` also reads ``CALLBOT_FLAG``,
    in argument groups too (their add_argument is not the parser's)."""

    def add_argument(self, *args: Any, **kwargs: Any) -> argparse.Action:  # type: ignore[override]
        return super().add_argument(*args, **_env_default(args, kwargs))

    def add_argument_group(self, *args: Any, **kwargs: Any) -> Any:
        group = super().add_argument_group(*args, **kwargs)
        plain = group.add_argument

        def add_argument(*a: Any, **kw: Any) -> argparse.Action:
            return plain(*a, **_env_default(a, kw))

        group.add_argument = add_argument  # type: ignore[method-assign]
        return group


def parse_port_range(text: str) -> tuple[int, int]:
    """``MIN-MAX`` -> (MIN, MAX), 1 <= MIN <= MAX <= 65535."""
    low, sep, high = text.strip().partition("-")
    try:
        ports = (int(low), int(high))
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r}: want MIN-MAX, e.g. 40000-40199") from None
    if not sep or not 1 <= ports[0] <= ports[1] <= 65535:
        raise argparse.ArgumentTypeError(f"{text!r}: want MIN-MAX with 1 <= MIN <= MAX <= 65535")
    return ports


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
    p.add_argument("--bot", default=None, metavar="MODULE:CLASS",
                   help="run your own bot: a peer.Bot subclass, e.g. mybot:MyBot (default: the recording "
                        "bot, or the one --talkback names)")
    p.add_argument("--log-level", default=d.log_level, choices=["debug", "info", "warning", "error"])

    g = p.add_argument_group("signaling")
    g.add_argument("--heartbeat", type=float, default=d.heartbeat, help="seconds between WebSocket pings")
    g.add_argument("--max-message-size", type=int, default=d.max_message_size, help="largest frame in bytes (1009 past it)")
    g.add_argument("--presence-interval", type=float, default=d.presence_interval, help="seconds over which presence changes are coalesced")
    g.add_argument("--backlog", type=int, default=d.backlog, help="messages queued for a slow client before it is dropped")
    g.add_argument("--backlog-bytes", type=int, default=d.backlog_bytes,
                   help="bytes queued for a slow client (with the socket's buffer) before it is dropped; "
                        "also what a held slot keeps for a resume")
    g.add_argument("--resume-grace", type=float, default=d.resume_grace,
                   help="seconds a lost connection's username stays claimed for a resume with its token (0: off)")
    g.add_argument("--ws-compression", action="store_true", default=d.ws_compression,
                   help="negotiate permessage-deflate with clients that offer it (costs CPU on small frames)")
    g.add_argument("--event-loop", choices=EVENT_LOOPS, default=d.event_loop,
                   help="auto: uvloop when installed (pip install callbot[fast]), else asyncio")

    i = p.add_argument_group("ICE")
    i.add_argument("--stun", action="append", default=[], metavar="URL", help="STUN server (repeatable)")
    i.add_argument("--turn", action="append", default=[], metavar="URL", help="TURN server (repeatable)")
    i.add_argument("--turn-username", default=None, help="TURN username")
    i.add_argument("--turn-credential", default=None, help="TURN password")
    i.add_argument("--ice-address", action="append", default=[], metavar="ADDR",
                   help="local address to gather host candidates from (repeatable); "
                        "aioice skips 127.0.0.1 unless named here")
    i.add_argument("--rtc-ports", default=None, metavar="MIN-MAX", type=parse_port_range,
                   help="UDP ports for every ICE socket of the bot (inclusive); a call that finds none "
                        "free is refused with ports-exhausted (default: any port)")
    i.add_argument("--announce-address", action="append", default=[], metavar="ADDR",
                   help="public address of a 1:1 NAT in front of the bot, advertised with the same ports "
                        "as its host candidates (repeatable)")
    i.add_argument("--allow-private-candidates", action="store_true", default=False,
                   help="also send ICE checks to callers' private (RFC 1918/6598/4193) addresses and "
                        "mDNS names; for a bot on the callers' LAN")

    b = p.add_argument_group("bot")
    b.add_argument("--talkback", choices=TALKBACK_MODES, default=d.bot.talkback, help="what the bot sends back")
    b.add_argument("--start-bitrate", type=int, default=d.bot.start_bitrate_kbps, help="kb/s the caller starts sending video at")
    b.add_argument("--min-bitrate", type=int, default=d.bot.min_bitrate_kbps, help="kb/s floor hinted to the caller")
    b.add_argument("--max-bitrate", type=int, default=d.bot.max_bitrate_kbps, help="kb/s ceiling hinted to the caller")
    b.add_argument("--max-calls", type=int, default=d.bot.max_calls, help="concurrent bot calls in total")
    b.add_argument("--connect-timeout", type=float, default=d.bot.connect_timeout, help="seconds for a call to connect")
    b.add_argument("--max-viewers", type=int, default=d.bot.max_viewers,
                   help="WHEP viewers of live calls in total (0: no WHEP)")
    b.add_argument("--max-viewers-per-call", type=int, default=d.bot.max_viewers_per_call,
                   help="WHEP viewers of one live call")
    b.add_argument("--max-photo-bytes", type=int, default=d.photos.max_bytes, help="largest photo accepted")
    b.add_argument("--max-photos-per-call", type=int, default=d.photos.max_per_call, help="photos accepted per call")
    b.add_argument("--max-photo-memory", type=int, default=d.photos.max_memory,
                   help="photo bytes held in memory by the whole server (busy past it)")
    b.add_argument("--max-decode-bytes", type=int, default=d.photos.max_decode_bytes,
                   help="bytes one image's decode check may take (width x height x channels x bytes per sample)")
    b.add_argument("--max-uploads-per-user", type=int, default=d.photos.max_uploads_per_user,
                   help="concurrent POST /api/photos per user")
    b.add_argument("--max-uploads", type=int, default=d.photos.max_uploads, help="concurrent POST /api/photos in total")
    b.add_argument("--upload-timeout", type=float, default=d.photos.upload_timeout,
                   help="seconds an upload's body may take")

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
    s.add_argument("--auth-jwks", default=None, metavar="URL_OR_FILE",
                   help="an identity provider's JWKS: accept tokens signed with its keys (RS256, ES256, EdDSA)")
    s.add_argument("--auth-issuer", default=None, help="the iss a token must carry")
    s.add_argument("--auth-audience", default=None, help="the aud a token must carry")
    s.add_argument("--auth-algorithm", action="append", default=[], metavar="ALG",
                   help="accepted signing algorithm (repeatable; default HS256 with --auth-secret, "
                        "RS256, ES256, EdDSA with --auth-jwks)")
    s.add_argument("--allowed-host", action="append", default=[], metavar="NAME",
                   help="host name the server answers to (repeatable; default: IP addresses, localhost "
                        "names and the listen address; '*' any). Others get 421 (DNS rebinding)")
    s.add_argument("--trusted-proxy", action="append", default=[], metavar="CIDR",
                   help="reverse proxy whose X-Forwarded-For/-Proto/-Host are believed (repeatable)")
    s.add_argument("--trusted-network", action="append", default=[], metavar="CIDR",
                   help="without token auth, clients from this network may read and delete calls "
                        "(repeatable; default: loopback only)")
    s.add_argument("--idle-timeout", type=float, default=sd.idle_timeout,
                   help="seconds a connection may stay without a complete request (silent, slow headers, idle keep-alive)")
    s.add_argument("--max-connections", type=int, default=sd.max_connections,
                   help="concurrent HTTP connections in total (WebSockets included)")
    s.add_argument("--media-url-ttl", type=float, default=sd.media_url_ttl,
                   help="seconds a signed media URL stays valid (token auth)")
    s.add_argument("--allow-open-turn", action="store_true", default=False,
                   help="allow --turn-secret without token auth (hands TURN credentials to anyone)")
    s.add_argument("--retention-days", type=float, default=None, help="delete calls older than this many days")
    s.add_argument("--allowed-origin", action="append", default=[], metavar="ORIGIN",
                   help="origin allowed to open the WebSocket (repeatable; default: the server's own)")
    s.add_argument("--cert", default=None, help="TLS certificate (PEM): serve https and wss")
    s.add_argument("--key", default=None, help="TLS private key (PEM)")
    s.add_argument("--self-signed", action="store_true", default=False,
                   help="serve https with a certificate made on first use and kept in DATA_DIR/tls "
                        "(for trying the page from another device on a LAN; browsers warn about it)")
    s.add_argument("--turn-url", action="append", default=[], metavar="URL",
                   help="TURN server using coturn's use-auth-secret (repeatable)")
    s.add_argument("--bot-turn-url", action="append", default=[], metavar="URL",
                   help="the bot's own TURN URLs, same secret (repeatable; the bot allocates on every one; "
                        "default: the --turn-url ones)")
    s.add_argument("--turn-secret", default=None, help="the TURN server's static-auth-secret")
    s.add_argument("--turn-ttl", type=float, default=sd.turn_ttl, help="seconds TURN credentials stay valid")
    s.add_argument("--rate-limit", type=float, default=sd.rate_limit, help="signaling messages per second per connection")
    s.add_argument("--rate-burst", type=float, default=sd.rate_burst, help="burst of messages allowed above the rate")
    s.add_argument("--max-connections-per-address", type=int, default=sd.max_connections_per_address,
                   help="concurrent HTTP connections (WebSockets included) per client address")
    s.add_argument("--max-call-seconds", type=float, default=sd.max_call_seconds, help="longest bot call")
    s.add_argument("--min-free-bytes", type=int, default=sd.min_free_bytes,
                   help="keep this much free in the data dir: refuse calls, photos and uploads, stop recordings below it")
    return p


def config_from_args(argv: Sequence[str] | None = None) -> Config:
    parser = build_parser()
    a = parser.parse_args(argv)
    try:
        return _config(a)
    except ValueError as exc:
        parser.error(str(exc))
        raise  # not reached: error() exits


def _config(a: argparse.Namespace) -> Config:
    return Config(
        host=a.host,
        port=int(a.port),
        data_dir=Path(a.data_dir),
        bot_name=a.bot_name,
        bot_spec=a.bot or None,
        log_level=a.log_level,
        heartbeat=float(a.heartbeat),
        max_message_size=int(a.max_message_size),
        presence_interval=float(a.presence_interval),
        backlog=int(a.backlog),
        backlog_bytes=int(a.backlog_bytes),
        resume_grace=float(a.resume_grace),
        ws_compression=bool(a.ws_compression),
        event_loop=a.event_loop,
        ice=IceConfig(
            stun_urls=tuple(a.stun),
            turn_urls=tuple(a.turn),
            turn_username=a.turn_username,
            turn_credential=a.turn_credential,
            addresses=tuple(a.ice_address),
            rtc_ports=a.rtc_ports,
            announce_addresses=tuple(a.announce_address),
            allow_private_candidates=bool(a.allow_private_candidates),
        ),
        bot=BotConfig(
            talkback=a.talkback,
            start_bitrate_kbps=int(a.start_bitrate),
            min_bitrate_kbps=int(a.min_bitrate),
            max_bitrate_kbps=int(a.max_bitrate),
            max_calls=int(a.max_calls),
            connect_timeout=float(a.connect_timeout),
            max_viewers=int(a.max_viewers),
            max_viewers_per_call=int(a.max_viewers_per_call),
        ),
        photos=PhotoConfig(
            max_bytes=int(a.max_photo_bytes),
            max_per_call=int(a.max_photos_per_call),
            max_memory=int(a.max_photo_memory),
            max_decode_bytes=int(a.max_decode_bytes),
            max_uploads_per_user=int(a.max_uploads_per_user),
            max_uploads=int(a.max_uploads),
            upload_timeout=float(a.upload_timeout),
        ),
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
            auth_jwks=a.auth_jwks or None,
            auth_issuer=a.auth_issuer or None,
            auth_audience=a.auth_audience or None,
            auth_algorithms=tuple(a.auth_algorithm),
            allowed_hosts=tuple(h.strip().lower() for h in a.allowed_host),
            trusted_proxies=tuple(a.trusted_proxy),
            trusted_networks=tuple(a.trusted_network),
            idle_timeout=float(a.idle_timeout),
            max_connections=int(a.max_connections),
            media_url_ttl=float(a.media_url_ttl),
            allow_open_turn=bool(a.allow_open_turn),
            retention_days=float(a.retention_days) if a.retention_days is not None else None,
            allowed_origins=tuple(o.rstrip("/") for o in a.allowed_origin),
            cert=a.cert or None,
            key=a.key or None,
            self_signed=bool(a.self_signed),
            turn_urls=tuple(a.turn_url),
            turn_secret=a.turn_secret or None,
            bot_turn_urls=tuple(a.bot_turn_url),
            turn_ttl=float(a.turn_ttl),
            rate_limit=float(a.rate_limit),
            rate_burst=float(a.rate_burst),
            max_connections_per_address=int(a.max_connections_per_address),
            max_call_seconds=float(a.max_call_seconds),
            min_free_bytes=int(a.min_free_bytes),
        ),
    )
