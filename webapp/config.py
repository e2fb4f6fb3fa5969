"""Typed, frozen configuration. ``server.py`` builds it once from flags and
environment; tests build it directly."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from media.options import RecordingOptions
from peer.config import TALKBACK_MODES, BotConfig, IceConfig, PeerConfig, TurnSecret
from photos.protocol import PhotoLimits

EVENT_LOOPS = ("auto", "asyncio", "uvloop")

__all__ = ["EVENT_LOOPS", "TALKBACK_MODES", "BotConfig", "Config", "IceConfig", "PhotoConfig", "SecurityConfig"]


@dataclass(frozen=True)
class PhotoConfig:
    max_bytes: int = 20 * 1000 * 1000
    max_per_call: int = 500
    #: Photo bytes held in memory by the whole process (every call and upload).
    max_memory: int = 256 * 1024 * 1024
    #: Bytes one image's decode check may allocate (see photos.image).
    max_decode_bytes: int = 64 * 1024 * 1024
    #: Concurrent HTTP uploads (POST /api/photos) per user, and in total.
    max_uploads_per_user: int = 2
    max_uploads: int = 16
    #: Seconds an upload body may take in all.
    upload_timeout: float = 120.0

    def __post_init__(self) -> None:
        if min(self.max_bytes, self.max_per_call, self.max_memory, self.max_decode_bytes,
               self.max_uploads_per_user, self.max_uploads) < 1 or self.upload_timeout <= 0:
            raise ValueError("photo limits must be positive")
        if self.max_memory < self.max_bytes:
            raise ValueError("--max-photo-memory must hold at least one photo of --max-photo-bytes")


@dataclass(frozen=True)
class SecurityConfig:
    """Everything a public deployment sets. ``None`` switches a check off."""

    #: HS256 secret; when set, every WebSocket upgrade and API request needs a token.
    auth_secret: str | None = None
    #: A JWKS (URL or file) of an identity provider's public keys: tokens
    #: signed with them are accepted too (RS256, ES256, EdDSA).
    auth_jwks: str | None = None
    #: ``iss`` and ``aud`` a token must carry, when set.
    auth_issuer: str | None = None
    auth_audience: str | None = None
    #: Algorithms accepted, from configuration only (never from a token).
    #: Empty: HS256 with auth_secret, RS256/ES256/EdDSA with auth_jwks.
    auth_algorithms: tuple[str, ...] = ()
    #: Host names the server answers to, besides IP addresses, localhost
    #: names and the listen address (DNS rebinding). "*": any.
    allowed_hosts: tuple[str, ...] = ()
    #: Proxies (addresses or CIDR networks) whose X-Forwarded-For,
    #: X-Forwarded-Proto and X-Forwarded-Host are believed.
    trusted_proxies: tuple[str, ...] = ()
    #: Without token auth, clients from these networks may read and delete
    #: calls (the gallery API); otherwise loopback only.
    trusted_networks: tuple[str, ...] = ()
    #: Seconds a connection may stay without a complete request: silent,
    #: trickling header lines, or idle between keep-alive requests.
    idle_timeout: float = 15.0
    #: Concurrent HTTP connections (WebSockets included) in total.
    max_connections: int = 1000
    #: Seconds a signed media URL (a recording in a <video>) stays valid.
    media_url_ttl: float = 3600.0
    #: Hand TURN credentials to anyone (--turn-secret without --auth-secret).
    allow_open_turn: bool = False
    #: Calls older than this many days are deleted (None: kept).
    retention_days: float | None = None
    #: Origins allowed to open the WebSocket. Empty: the server's own origin
    #: (and requests without an Origin header, i.e. non-browser clients).
    allowed_origins: tuple[str, ...] = ()
    cert: str | None = None
    key: str | None = None
    #: Serve https with a certificate the server makes (webapp/tls.py).
    self_signed: bool = False
    #: TURN with coturn's use-auth-secret: short-lived credentials per client.
    turn_urls: tuple[str, ...] = ()
    turn_secret: str | None = None
    turn_ttl: float = 3600.0
    #: The bot's own TURN URLs (same secret); empty: the bot uses turn_urls.
    bot_turn_urls: tuple[str, ...] = ()
    #: Signaling messages per second per connection, and the burst allowed.
    rate_limit: float = 20.0
    rate_burst: float = 40.0
    #: Concurrent HTTP connections (WebSockets included) per client address.
    max_connections_per_address: int = 32
    #: Longest bot call, seconds.
    max_call_seconds: float = 4 * 3600.0
    #: The data dir's file system keeps this much free: new bot calls, photos
    #: and uploads are refused below it, and recordings stop.
    min_free_bytes: int = 500 * 1000 * 1000

    def __post_init__(self) -> None:
        if (self.cert is None) != (self.key is None):
            raise ValueError("--cert and --key go together")
        if self.self_signed and self.cert is not None:
            raise ValueError("--self-signed or --cert/--key, not both")
        if self.turn_urls and not self.turn_secret:
            raise ValueError("--turn-url needs --turn-secret")
        if self.turn_secret and not self.auth_enabled and not self.allow_open_turn:
            # Anyone could fetch credentials from /api/rtc-config: an open relay.
            raise ValueError("--turn-secret without --auth-secret or --auth-jwks hands TURN credentials to "
                             "anyone (an open relay); add token auth, or --allow-open-turn to mean it")
        if self.bot_turn_urls and not self.turn_secret:
            raise ValueError("--bot-turn-url needs --turn-secret")
        if self.rate_limit <= 0 or self.rate_burst < 1 or self.max_connections_per_address < 1:
            raise ValueError("rate limit, burst and connections per address must be positive")
        if self.idle_timeout <= 0 or self.max_connections < 1 or self.media_url_ttl <= 0:
            raise ValueError("idle timeout, connections and media URL lifetime must be positive")
        if self.retention_days is not None and self.retention_days <= 0:
            raise ValueError("--retention-days must be positive")
        from webapp.netaddr import parse_networks  # noqa: PLC0415  (webapp.netaddr imports nothing of ours)

        parse_networks(self.trusted_proxies + self.trusted_networks)  # ValueError on a bad one

    @property
    def auth_enabled(self) -> bool:
        return self.auth_secret is not None or self.auth_jwks is not None


@dataclass(frozen=True)
class Config:
    host: str = "127.0.0.1"
    port: int = 8080
    data_dir: Path = Path("data")
    bot_name: str = "bot"
    #: ``--bot module:Class``: the user's bot; None: the built-in one ``--talkback`` names.
    bot_spec: str | None = None
    log_level: str = "info"
    #: Seconds between server pings; a client silent for longer is dropped.
    heartbeat: float = 20.0
    max_message_size: int = 64 * 1024
    #: Presence deltas are coalesced and sent once per interval.
    presence_interval: float = 0.25
    #: Messages queued for one slow client before it is dropped.
    backlog: int = 256
    #: Bytes queued for one slow client (ours plus the transport's) before it
    #: is dropped; also bounds what a held (resumable) slot keeps.
    backlog_bytes: int = 1024 * 1024
    #: Seconds a lost connection's username stays claimed for a resume (0: off).
    resume_grace: float = 15.0
    #: Negotiate permessage-deflate (RFC 7692) when a client offers it.
    ws_compression: bool = False
    #: ``auto`` (uvloop when installed), ``asyncio`` or ``uvloop``.
    event_loop: str = "auto"
    ice: IceConfig = field(default_factory=IceConfig)
    bot: BotConfig = field(default_factory=BotConfig)
    photos: PhotoConfig = field(default_factory=PhotoConfig)
    security: SecurityConfig = field(default_factory=SecurityConfig)
    recording: RecordingOptions = field(default_factory=RecordingOptions)
    #: Presence and routing in Redis, shared by several nodes; None: in memory.
    redis_url: str | None = None
    #: Seconds a node's lease lasts; a dead node's users are gone within 4/3 of it.
    redis_lease: float = 10.0
    #: This node's id in Redis (default: host name and process id).
    node_id: str | None = None

    def __post_init__(self) -> None:
        from signaling.protocol import is_valid_username

        if not is_valid_username(self.bot_name):
            raise ValueError(f"bot name {self.bot_name!r} is not a valid username")
        if self.max_message_size < 1024:
            raise ValueError("max message size must be at least 1024 bytes")
        if self.heartbeat <= 0 or self.presence_interval < 0 or self.backlog < 1:
            raise ValueError("heartbeat must be > 0, presence interval >= 0, backlog >= 1")
        if self.backlog_bytes < 2 * self.max_message_size:
            raise ValueError("backlog bytes must be at least twice the max message size")
        if self.resume_grace < 0:
            raise ValueError("resume grace must be >= 0")
        if self.event_loop not in EVENT_LOOPS:
            raise ValueError(f"event loop must be one of {', '.join(EVENT_LOOPS)}")

    @property
    def calls_dir(self) -> Path:
        return self.data_dir / "calls"

    @property
    def turn(self) -> TurnSecret:
        sec = self.security
        return TurnSecret(urls=sec.turn_urls, secret=sec.turn_secret, ttl=sec.turn_ttl, bot_urls=sec.bot_turn_urls)

    def photo_limits(self) -> PhotoLimits:
        """Limits of one call's photos (data channel and HTTP alike)."""
        return PhotoLimits(
            max_bytes=self.photos.max_bytes,
            max_photos=self.photos.max_per_call,
            max_decode_bytes=self.photos.max_decode_bytes,
            min_free_bytes=self.security.min_free_bytes or None,
        )

    def peer(self) -> PeerConfig:
        """The bot runtime's share of the configuration."""
        return PeerConfig(
            bot_name=self.bot_name,
            data_dir=self.data_dir,
            ice=self.ice,
            turn=self.turn,
            bot=self.bot,
            photos=self.photo_limits(),
            recording=self.recording,
            max_call_seconds=self.security.max_call_seconds,
            min_free_bytes=self.security.min_free_bytes,
        )
