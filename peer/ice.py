"""ICE servers for the bot's peer connections and for clients, in one place.

aiortc's default public STUN server is never used: it is unreachable on
closed networks and delays every call. With ``--turn-url``/``--turn-secret``
(coturn's ``use-auth-secret``) short-lived TURN credentials are minted for
the bot itself and, through :func:`client_ice_servers`, for each client.
``--bot-turn-url`` gives the bot other TURN URLs than the clients (the
relay's internal address, or TCP where the bot's UDP is blocked); the bot
allocates on every one of its TURN URLs (``peer.compat.install_multi_turn``;
aiortc alone would use only the first). Host-address restriction
(``--ice-address``), the port range (``--rtc-ports``) and the selected pair
are private aioice hooks and live in ``peer.compat``.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import time
from typing import Any

from aiortc import RTCConfiguration, RTCIceServer

from peer.config import IceConfig, TurnSecret
from peer.sdp import CandidatePolicy


def turn_credentials(secret: str, *, ttl: float = 3600, user: str | None = None, now: float | None = None) -> tuple[str, str]:
    """Short-lived TURN credentials as coturn's ``use-auth-secret`` checks them
    (the "TURN REST API" draft): username = expiry timestamp, optionally
    ``:user``; password = base64(HMAC-SHA1(secret, username))."""
    expiry = int((time.time() if now is None else now) + ttl)
    username = f"{expiry}:{user}" if user else str(expiry)
    password = base64.b64encode(hmac.new(secret.encode(), username.encode(), hashlib.sha1).digest()).decode()
    return username, password


def rtc_configuration(ice: IceConfig, turn: TurnSecret | None = None) -> RTCConfiguration:
    """The bot's RTCConfiguration: the configured ICE servers only."""
    servers = [RTCIceServer(urls=url) for url in ice.stun_urls]
    servers += [
        RTCIceServer(urls=url, username=ice.turn_username, credential=ice.turn_credential)
        for url in ice.turn_urls
    ]
    if turn is not None and turn.for_bot:
        assert turn.secret is not None
        user, password = turn_credentials(turn.secret, ttl=turn.ttl, user="bot")
        servers += [RTCIceServer(urls=url, username=user, credential=password) for url in turn.for_bot]
    return RTCConfiguration(iceServers=servers)


def candidate_policy(ice: IceConfig) -> CandidatePolicy:
    """Which remote candidates the bot sends checks to (``peer.sdp.candidate_refusal``)."""
    return CandidatePolicy(allow_private=ice.allow_private_candidates, allow_loopback=ice.gathers_on_loopback)


def client_ice_servers(ice: IceConfig, turn: TurnSecret, username: str | None) -> list[dict[str, Any]]:
    """The ICE servers a client should use (RTCIceServer dicts): the
    configured STUN and TURN servers, and fresh TURN credentials when a TURN
    secret is set."""
    servers: list[dict[str, Any]] = []
    if ice.stun_urls:
        servers.append({"urls": list(ice.stun_urls)})
    if ice.turn_urls:
        entry: dict[str, Any] = {"urls": list(ice.turn_urls)}
        if ice.turn_username is not None:
            entry["username"] = ice.turn_username
        if ice.turn_credential is not None:
            entry["credential"] = ice.turn_credential
        servers.append(entry)
    if turn.enabled:
        assert turn.secret is not None
        user, password = turn_credentials(turn.secret, ttl=turn.ttl, user=username)
        servers.append({"urls": list(turn.urls), "username": user, "credential": password})
    return servers
