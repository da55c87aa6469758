"""Where the gateway may connect on someone else's word: only to public internet addresses.

A client's webhook URL and an image URL an upstream hands back are someone else's word. The
gateway connects to them only when every address involved is public: globally routable unicast,
and for an IPv6 address that carries an IPv4 one (mapped ``::ffff:a.b.c.d``, compatible
``::a.b.c.d``, NAT64 ``64:ff9b::/96``, 6to4 ``2002::/16``), the IPv4 address must be public too.
Everything outside IPv6 global unicast (``2000::/3``) is refused, so site-local ``fec0::/10``,
the local NAT64 prefix ``64:ff9b:1::/48``, unique-local and link-local addresses are.

Two checks, both needed: ``check_url`` when a URL is accepted (a submit's notifyHook), resolving
its host; and at connect time, ``PublicResolver`` for host names (so a DNS answer that changes
in between cannot reach inside) and ``refuse_private_literal`` for literal addresses, which
aiohttp connects to without asking a resolver.
"""

from __future__ import annotations

import asyncio
import contextlib
import ipaddress
import socket
from urllib.parse import urlsplit

from aiohttp.abc import AbstractResolver, ResolveResult
from aiohttp.resolver import DefaultResolver

from gateway.errors import PrivateAddressError

IpAddress = ipaddress.IPv4Address | ipaddress.IPv6Address

_GLOBAL_UNICAST = ipaddress.IPv6Network("2000::/3")
_IPV4_COMPATIBLE = ipaddress.IPv6Network("::/96")
_NAT64 = ipaddress.IPv6Network("64:ff9b::/96")


def _embedded_ipv4(address: ipaddress.IPv6Address) -> ipaddress.IPv4Address | None:
    if address.ipv4_mapped is not None:
        return address.ipv4_mapped
    if address in _IPV4_COMPATIBLE or address in _NAT64:
        return ipaddress.IPv4Address(int(address) & 0xFFFF_FFFF)
    return address.sixtofour


def is_public(address: IpAddress) -> bool:
    """Routable on the internet, by the rules of the module docstring."""
    if isinstance(address, ipaddress.IPv6Address):
        embedded = _embedded_ipv4(address)
        if embedded is not None:
            return is_public(embedded)
        return address in _GLOBAL_UNICAST and address.is_global
    return address.is_global and not address.is_multicast


def literal_address(host: str) -> IpAddress | None:
    """``host`` as an IP address when it is one (brackets and a zone allowed), else None."""
    with contextlib.suppress(ValueError):
        return ipaddress.ip_address(host.strip("[]"))
    return None


def refuse_private_literal(url: str) -> None:
    """``PrivateAddressError`` when the URL's host is a literal address that is not public."""
    literal = literal_address(urlsplit(url).hostname or "")
    if literal is not None and not is_public(literal):
        raise PrivateAddressError(f"{literal} is not a public address")


async def check_url(url: str) -> None:
    """Resolve the URL's host now; ``PrivateAddressError`` unless every address is public
    (``OSError`` when it does not resolve)."""
    parts = urlsplit(url)
    host = parts.hostname or ""
    literal = literal_address(host)
    if literal is not None:
        addresses = [literal]
    else:
        infos = await asyncio.get_running_loop().getaddrinfo(
            host, parts.port or 443, type=socket.SOCK_STREAM
        )
        addresses = [ipaddress.ip_address(str(info[4][0])) for info in infos]
    if not addresses or not all(is_public(address) for address in addresses):
        raise PrivateAddressError(f"{host} is not a public address")


class PublicResolver(AbstractResolver):
    """An aiohttp resolver out of which only public addresses come."""

    def __init__(self) -> None:
        self._inner = DefaultResolver()

    async def resolve(
        self, host: str, port: int = 0, family: socket.AddressFamily = socket.AF_INET
    ) -> list[ResolveResult]:
        results = await self._inner.resolve(host, port, family)
        public = [r for r in results if is_public(ipaddress.ip_address(r["host"]))]
        if not public:
            raise PrivateAddressError(f"{host} resolves to no public address")
        return public

    async def close(self) -> None:
        await self._inner.close()
