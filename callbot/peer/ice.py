"""ICE set-up for the bot's peer connections, in one place.

``--ice-address``: aioice gathers host candidates from every interface but
skips 127.0.0.1 (``aioice.ice.get_host_addresses``), so a loopback-only or
single-host setup never connects. When addresses are configured, gathering is
restricted to exactly those. aioice has no per-connection option for this, so
the module-level function is replaced for the process: the setting belongs
to the process, like the flag it comes from, and stays until
:func:`restore_host_addresses` (tests use that; the server never needs to).
"""

from __future__ import annotations

import ipaddress
import logging

import aioice.ice
from aiortc import RTCConfiguration, RTCIceServer

from ..config import IceConfig, SecurityConfig
from ..web.auth import turn_credentials

logger = logging.getLogger(__name__)

_original_get_host_addresses = aioice.ice.get_host_addresses


def restrict_host_addresses(addresses: tuple[str, ...]) -> None:
    """Gather host candidates only from ``addresses`` (empty: leave as is)."""
    if not addresses:
        return
    parsed = [ipaddress.ip_address(a) for a in addresses]  # ValueError on junk

    def get_host_addresses(use_ipv4: bool, use_ipv6: bool) -> list[str]:
        return [
            str(a) for a in parsed
            if (a.version == 4 and use_ipv4) or (a.version == 6 and use_ipv6)
        ]

    aioice.ice.get_host_addresses = get_host_addresses
    logger.info("ICE host candidates restricted to %s", ", ".join(map(str, parsed)))


def restore_host_addresses() -> None:
    aioice.ice.get_host_addresses = _original_get_host_addresses


def rtc_configuration(ice: IceConfig, security: SecurityConfig | None = None) -> RTCConfiguration:
    """The configured ICE servers only: aiortc's default public STUN server is
    never used (unreachable on closed networks, and it delays every call).
    With ``--turn-url``/``--turn-secret`` the bot mints its own short-lived
    TURN credentials, as clients get theirs at login."""
    servers = [RTCIceServer(urls=url) for url in ice.stun_urls]
    servers += [
        RTCIceServer(urls=url, username=ice.turn_username, credential=ice.turn_credential)
        for url in ice.turn_urls
    ]
    if security is not None and security.turn_urls and security.turn_secret:
        user, password = turn_credentials(security.turn_secret, ttl=security.turn_ttl, user="bot")
        servers += [RTCIceServer(urls=url, username=user, credential=password) for url in security.turn_urls]
    return RTCConfiguration(iceServers=servers)
