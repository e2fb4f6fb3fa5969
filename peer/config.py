"""What the peer side needs to know, as frozen dataclasses.

``webapp.config.Config`` (built from flags) composes these and hands the bot
runtime a :class:`PeerConfig`; tests build them directly.
"""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass, field
from pathlib import Path

from media.options import RecordingOptions
from photos.protocol import PhotoLimits

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
    #: ``--rtc-ports MIN-MAX``: every UDP socket the bot opens for ICE gets a
    #: port in this range (inclusive). None: the kernel's choice.
    rtc_ports: tuple[int, int] | None = None
    #: ``--announce-address``: public addresses of a 1:1 NAT in front of the
    #: bot, advertised with the same ports as its host candidates.
    announce_addresses: tuple[str, ...] = ()
    #: ``--allow-private-candidates``: send checks to callers' private
    #: (RFC 1918, RFC 6598, RFC 4193) addresses and mDNS names too.
    allow_private_candidates: bool = False

    def __post_init__(self) -> None:
        if self.rtc_ports is not None:
            low, high = self.rtc_ports
            if not 1 <= low <= high <= 65535:
                raise ValueError(f"--rtc-ports {low}-{high}: want 1 <= MIN <= MAX <= 65535")
        for address in (*self.addresses, *self.announce_addresses):
            ipaddress.ip_address(address)  # ValueError names the bad one

    @property
    def gathers_on_loopback(self) -> bool:
        return any(ipaddress.ip_address(a).is_loopback for a in self.addresses)


@dataclass(frozen=True)
class TurnSecret:
    """TURN with coturn's ``use-auth-secret``: short-lived credentials minted
    per client and for the bot itself."""

    #: The URLs clients get (and the bot uses, unless ``bot_urls`` is set).
    urls: tuple[str, ...] = ()
    secret: str | None = None
    ttl: float = 3600.0
    #: ``--bot-turn-url``: the bot's own TURN URLs, e.g. the relay's internal
    #: address, or a TCP URL where the bot's UDP is blocked. Empty: ``urls``.
    bot_urls: tuple[str, ...] = ()

    @property
    def enabled(self) -> bool:
        return bool(self.urls and self.secret)

    @property
    def for_bot(self) -> tuple[str, ...]:
        """The TURN URLs the bot itself allocates on (all of them, in parallel)."""
        return (self.bot_urls or self.urls) if self.secret else ()


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
    #: WHEP viewers of live calls: in total, and of one call.
    max_viewers: int = 16
    max_viewers_per_call: int = 4

    def __post_init__(self) -> None:
        if self.talkback not in TALKBACK_MODES:
            raise ValueError(f"talkback must be one of {TALKBACK_MODES}, not {self.talkback!r}")
        if not 0 < self.min_bitrate_kbps <= self.start_bitrate_kbps <= self.max_bitrate_kbps:
            raise ValueError("bitrates must satisfy 0 < min <= start <= max")
        if self.max_calls < 1:
            raise ValueError("max_calls must be at least 1")
        if self.max_viewers < 0 or self.max_viewers_per_call < 0:
            raise ValueError("viewer limits must be 0 (no WHEP) or more")


@dataclass(frozen=True)
class PeerConfig:
    """Everything the bot runtime and its calls read."""

    bot_name: str = "bot"
    data_dir: Path = Path("data")
    ice: IceConfig = field(default_factory=IceConfig)
    turn: TurnSecret = field(default_factory=TurnSecret)
    bot: BotConfig = field(default_factory=BotConfig)
    photos: PhotoLimits = field(default_factory=PhotoLimits)
    recording: RecordingOptions = field(default_factory=RecordingOptions)
    #: Longest bot call, seconds.
    max_call_seconds: float = 4 * 3600.0
    #: New calls are refused when the data dir's file system has less free.
    min_free_bytes: int = 500 * 1000 * 1000

    @property
    def calls_dir(self) -> Path:
        return self.data_dir / "calls"
