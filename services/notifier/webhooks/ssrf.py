"""Which addresses a webhook may reach: public ones only, unless a setting allows more.

Checked on the resolved addresses of every new connection (so DNS cannot point a name to an
internal address after the URL was accepted), and once when an endpoint is created or changed.
"""

from __future__ import annotations

import asyncio
import ipaddress
import socket
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network
Resolver = Callable[[str, int], Awaitable[list[str]]]

# Not covered by is_global in every Python version, or worth naming: cloud metadata services.
_ALWAYS_BLOCKED: tuple[IPNetwork, ...] = tuple(
    ipaddress.ip_network(n)
    for n in (
        "0.0.0.0/8",
        "100.64.0.0/10",  # carrier-grade NAT; 100.100.100.200 is Alibaba Cloud's metadata service
        "169.254.0.0/16",  # link-local; 169.254.169.254 is the AWS/GCP/Azure metadata service
        "192.0.0.0/24",
        "198.18.0.0/15",
        "fd00:ec2::/32",  # AWS IMDS over IPv6 (fd00:ec2::254)
    )
)


class AddressBlocked(Exception):
    """The destination resolves to an address webhooks may not reach."""


@dataclass(frozen=True)
class Policy:
    allow_private: bool = False
    allowed: tuple[IPNetwork, ...] = ()

    @classmethod
    def from_settings(cls, allow_private: bool, networks: Iterable[str]) -> Policy:
        return cls(allow_private, tuple(ipaddress.ip_network(n, strict=False) for n in networks))

    def permits(self, address: IPAddress) -> bool:
        addr = _unwrap(address)
        if self.allow_private or any(addr in net for net in self.allowed if net.version == addr.version):
            return True
        if any(addr in net for net in _ALWAYS_BLOCKED if net.version == addr.version):
            return False
        return addr.is_global and not addr.is_multicast

    def check(self, host: str, addresses: list[str]) -> None:
        if not addresses:
            raise AddressBlocked(f"{host} did not resolve")
        for text in addresses:
            if not self.permits(ipaddress.ip_address(text.split("%", 1)[0])):
                raise AddressBlocked(f"{host} resolves to {text}, which webhooks may not reach")


def _unwrap(address: IPAddress) -> IPAddress:
    """An IPv6 address that carries an IPv4 one is judged by the IPv4 one."""
    if isinstance(address, ipaddress.IPv6Address):
        if address.ipv4_mapped is not None:
            return address.ipv4_mapped
        if address.sixtofour is not None:
            return address.sixtofour
        if address in _NAT64:
            return ipaddress.IPv4Address(int(address) & 0xFFFFFFFF)
    return address


_NAT64 = ipaddress.ip_network("64:ff9b::/96")


async def resolve(host: str, port: int) -> list[str]:
    """Every address the system resolver gives for host (IP literals included, in any notation)."""
    loop = asyncio.get_running_loop()
    infos = await loop.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    return list(dict.fromkeys(str(info[4][0]) for info in infos))
