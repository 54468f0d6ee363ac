"""Which addresses a fetch may connect to: public ones, and those inside networks the config
allows. An IPv6 address that carries an IPv4 one is judged by the IPv4 address it carries."""

from __future__ import annotations

import ipaddress

Network = ipaddress.IPv4Network | ipaddress.IPv6Network
Address = ipaddress.IPv4Address | ipaddress.IPv6Address

_NAT64 = ipaddress.IPv6Network("64:ff9b::/96")
_NAT64_LOCAL = ipaddress.IPv6Network("64:ff9b:1::/48")


def address_allowed(address: Address, allow_networks: tuple[Network, ...]) -> bool:
    """True for a public address, or any address inside one of allow_networks. An IPv6 address
    that carries an IPv4 one (IPv4-mapped, 6to4, Teredo, NAT64) is judged by that IPv4 address:
    2002:7f00:1:: is 127.0.0.1 to a host with a 6to4 relay."""
    if any(address in network for network in allow_networks):
        return True
    if isinstance(address, ipaddress.IPv6Address):
        embedded = _embedded_ipv4(address)
        if embedded is not None:
            return address_allowed(embedded, allow_networks)
        if address.is_site_local or address in _NAT64_LOCAL:
            return False
    special = address.is_private or address.is_loopback or address.is_link_local or address.is_multicast
    return address.is_global and not (special or address.is_reserved or address.is_unspecified)


def _embedded_ipv4(address: ipaddress.IPv6Address) -> ipaddress.IPv4Address | None:
    if address.ipv4_mapped is not None:
        return address.ipv4_mapped
    if address.sixtofour is not None:
        return address.sixtofour
    if address.teredo is not None:
        return address.teredo[1]  # the client's address (the server's is public by construction)
    if address in _NAT64:
        return ipaddress.IPv4Address(int(address) & 0xFFFFFFFF)
    return None
