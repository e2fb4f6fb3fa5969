"""Typed, frozen configuration. ``server.py`` builds it once from flags and
environment; tests build it directly."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from .media.options import RecordingOptions

TALKBACK_MODES = ("none", "echo", "overlay")


@dataclass(frozen=True)
class IceConfig:
    """ICE servers and local addresses for the bot's peer connections."""

    stun_urls: tuple[str, ...] = ()
    turn_urls: tuple[str, ...] = ()
    turn_username: str | None = None
    turn_credential: str | None = None
    #: Local addresses to gather host candidates from. Empty: aioice's default
    #: (every interface but loopback). Loopback-only setups name 127.0.0.1.
    addresses: tuple[str, ...] = ()


@dataclass(frozen=True)
class BotConfig:
    talkback: str = "none"
    #: Bitrate hints put in the answer's video fmtp lines (kb/s); Chromium
    #: starts at x-google-start-bitrate instead of ~300 kb/s.
    start_bitrate_kbps: int = 1500
    min_bitrate_kbps: int = 300
    max_bitrate_kbps: int = 4000
    max_calls: int = 32
    #: Seconds from answer to ICE connected before the call is given up.
    connect_timeout: float = 20.0

    def __post_init__(self) -> None:
        if self.talkback not in TALKBACK_MODES:
            raise ValueError(f"talkback must be one of {TALKBACK_MODES}, not {self.talkback!r}")
        if not 0 < self.min_bitrate_kbps <= self.start_bitrate_kbps <= self.max_bitrate_kbps:
            raise ValueError("bitrates must satisfy 0 < min <= start <= max")
        if self.max_calls < 1:
            raise ValueError("max_calls must be at least 1")


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
        from .signaling.protocol import is_valid_username

        if not is_valid_username(self.bot_name):
            raise ValueError(f"bot name {self.bot_name!r} is not a valid username")
        if self.max_message_size < 1024:
            raise ValueError("max message size must be at least 1024 bytes")
        if self.heartbeat <= 0 or self.presence_interval < 0 or self.backlog < 1:
            raise ValueError("heartbeat must be > 0, presence interval >= 0, backlog >= 1")

    @property
    def calls_dir(self) -> Path:
        return self.data_dir / "calls"
