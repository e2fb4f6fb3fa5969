"""Typed, frozen configuration. ``server.py`` builds it once from flags and
environment; tests build it directly."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from media.options import RecordingOptions
from peer.config import TALKBACK_MODES, BotConfig, IceConfig, PeerConfig, TurnSecret
from photos.protocol import PhotoLimits

__all__ = ["TALKBACK_MODES", "BotConfig", "Config", "IceConfig", "PhotoConfig", "SecurityConfig"]


@dataclass(frozen=True)
class PhotoConfig:
    max_bytes: int = 20 * 1000 * 1000
    max_per_call: int = 500


@dataclass(frozen=True)
class SecurityConfig:
    """Everything a public deployment sets. ``None`` switches a check off."""

    #: HS256 secret; when set, every WebSocket upgrade and API request needs a token.
    auth_secret: str | None = None
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
    #: Signaling messages per second per connection, and the burst allowed.
    rate_limit: float = 20.0
    rate_burst: float = 40.0
    max_connections_per_address: int = 32
    #: Longest bot call, seconds.
    max_call_seconds: float = 4 * 3600.0
    #: New bot calls are refused when the data dir's file system has less free.
    min_free_bytes: int = 500 * 1000 * 1000

    def __post_init__(self) -> None:
        if (self.cert is None) != (self.key is None):
            raise ValueError("--cert and --key go together")
        if self.self_signed and self.cert is not None:
            raise ValueError("--self-signed or --cert/--key, not both")
        if self.turn_urls and not self.turn_secret:
            raise ValueError("--turn-url needs --turn-secret")
        if self.rate_limit <= 0 or self.rate_burst < 1 or self.max_connections_per_address < 1:
            raise ValueError("rate limit, burst and connections per address must be positive")


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

    @property
    def calls_dir(self) -> Path:
        return self.data_dir / "calls"

    @property
    def turn(self) -> TurnSecret:
        sec = self.security
        return TurnSecret(urls=sec.turn_urls, secret=sec.turn_secret, ttl=sec.turn_ttl)

    def peer(self) -> PeerConfig:
        """The bot runtime's share of the configuration."""
        return PeerConfig(
            bot_name=self.bot_name,
            data_dir=self.data_dir,
            ice=self.ice,
            turn=self.turn,
            bot=self.bot,
            photos=PhotoLimits(max_bytes=self.photos.max_bytes, max_photos=self.photos.max_per_call),
            recording=self.recording,
            max_call_seconds=self.security.max_call_seconds,
            min_free_bytes=self.security.min_free_bytes,
        )
