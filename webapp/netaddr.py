"""Client addresses: networks from flags, loopback, and the address a
trusted reverse proxy says a request came from."""

from __future__ import annotations

import ipaddress
from typing import Iterable

Network = ipaddress.IPv4Network | ipaddress.IPv6Network
Address = ipaddress.IPv4Address | ipaddress.IPv6Address

__all__ = ["parse_networks", "parse_address", "in_networks", "is_loopback", "forwarded_client"]


def parse_networks(values: Iterable[str]) -> tuple[Network, ...]:
    """``10.0.0.0/8``, ``127.0.0.1``, ``::1``: ValueError on anything else."""
    out = []
    for value in values:
        try:
            out.append(ipaddress.ip_network(value.strip(), strict=False))
        except ValueError:
            raise ValueError(f"{value!r} is not an IP address or network") from None
    return tuple(out)


def parse_address(value: str | None) -> Address | None:
    if not value:
        return None
    value = value.strip()
    if value.startswith("[") and "]" in value:  # [v6]:port
        value = value[1:value.index("]")]
    elif value.count(":") == 1:  # v4:port
        value = value.split(":", 1)[0]
    try:
        address = ipaddress.ip_address(value.split("%", 1)[0])
    except ValueError:
        return None
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        return address.ipv4_mapped
    return address


def in_networks(address: Address | None, networks: tuple[Network, ...]) -> bool:
    return address is not None and any(address in net for net in networks if net.version == address.version)


def is_loopback(address: Address | None) -> bool:
    return address is not None and address.is_loopback


def forwarded_client(peer: Address | None, forwarded_for: str, trusted: tuple[Network, ...]) -> Address | None:
    """The client a chain of trusted proxies speaks for.

    X-Forwarded-For is ``client, proxy1, proxy2``; each proxy appends the
    address it got the request from, so only the entries our trusted proxies
    added can be believed: walk from the right, skipping trusted proxies, and
    take the first address that is not one (RFC 7239 section 5.2 reasons the
    same way about Forwarded: for=). None when the header is malformed.
    """
    if not in_networks(peer, trusted):
        return peer
    hops = [h.strip() for h in forwarded_for.split(",") if h.strip()]
    client = peer
    for hop in reversed(hops):
        address = parse_address(hop)
        if address is None:
            return None
        client = address
        if not in_networks(address, trusted):
            break
    return client
