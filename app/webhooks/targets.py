"""Where webhooks may go: public addresses only, unless settings allow private ones (SSRF).

"Public" is decided by an explicit table, not by one Python version's ``is_global``: every
entry of the IANA IPv4 and IPv6 Special-Purpose Address Registries, multicast, and for IPv6
everything outside global unicast (2000::/3). The addresses a check found are the ones the
dispatcher connects to, so a DNS answer that changes after the check (rebinding) is never used.
Every refusal of a host says the same thing, so answers reveal nothing about internal DNS.
"""

import asyncio
import ipaddress
import socket
from urllib.parse import urlsplit

from app.errors import FieldError, InvalidInput

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address

REFUSED = "the URL's host must resolve to public internet addresses only"

# (network, source). IANA IPv4/IPv6 Special-Purpose Address Registries, every entry, whether or
# not IANA marks it globally reachable (no webhook receiver lives in anycast or AS112 space);
# entries inside larger ones are kept so the table can be checked against the registries.
SPECIAL_PURPOSE: tuple[tuple[str, str], ...] = (
    ("0.0.0.0/8", 'RFC 791: "this network"'),
    ("10.0.0.0/8", "RFC 1918: private use"),
    ("100.64.0.0/10", "RFC 6598: shared address space (carrier-grade NAT)"),
    ("127.0.0.0/8", "RFC 1122: loopback"),
    ("169.254.0.0/16", "RFC 3927: link local (cloud metadata services)"),
    ("172.16.0.0/12", "RFC 1918: private use"),
    ("192.0.0.0/24", "RFC 6890: IETF protocol assignments"),
    ("192.0.0.0/29", "RFC 7335: IPv4 service continuity prefix"),
    ("192.0.0.8/32", "RFC 7600: IPv4 dummy address"),
    ("192.0.0.9/32", "RFC 7723: Port Control Protocol anycast"),
    ("192.0.0.10/32", "RFC 8155: TURN anycast"),
    ("192.0.0.170/32", "RFC 8880, RFC 7050: NAT64/DNS64 discovery"),
    ("192.0.0.171/32", "RFC 8880, RFC 7050: NAT64/DNS64 discovery"),
    ("192.0.2.0/24", "RFC 5737: documentation (TEST-NET-1)"),
    ("192.31.196.0/24", "RFC 7535: AS112-v4"),
    ("192.52.193.0/24", "RFC 7450: AMT"),
    ("192.88.99.0/24", "RFC 7526: deprecated 6to4 relay anycast"),
    ("192.88.99.2/32", "RFC 6751: 6a44 relay anycast"),
    ("192.168.0.0/16", "RFC 1918: private use"),
    ("192.175.48.0/24", "RFC 7534: direct delegation AS112 service"),
    ("198.18.0.0/15", "RFC 2544: benchmarking"),
    ("198.51.100.0/24", "RFC 5737: documentation (TEST-NET-2)"),
    ("203.0.113.0/24", "RFC 5737: documentation (TEST-NET-3)"),
    ("224.0.0.0/4", "RFC 5771: multicast"),
    ("240.0.0.0/4", "RFC 1112: reserved"),
    ("255.255.255.255/32", "RFC 8190: limited broadcast"),
    ("::/128", "RFC 4291: unspecified address"),
    ("::1/128", "RFC 4291: loopback"),
    ("::/96", "RFC 4291: IPv4-compatible IPv6 (deprecated)"),
    ("::ffff:0:0/96", "RFC 4291: IPv4-mapped IPv6"),
    ("64:ff9b::/96", "RFC 6052: IPv4/IPv6 translation"),
    ("64:ff9b:1::/48", "RFC 8215: local-use IPv4/IPv6 translation"),
    ("100::/64", "RFC 6666: discard-only"),
    ("100:0:0:1::/64", "RFC 9780: dummy IPv6 prefix"),
    ("2001::/23", "RFC 2928: IETF protocol assignments"),
    ("2001::/32", "RFC 4380: Teredo"),
    ("2001:1::1/128", "RFC 7723: Port Control Protocol anycast"),
    ("2001:1::2/128", "RFC 8155: TURN anycast"),
    ("2001:1::3/128", "RFC 9665: DNS-SD service registration protocol anycast"),
    ("2001:2::/48", "RFC 5180: benchmarking"),
    ("2001:3::/32", "RFC 7450: AMT"),
    ("2001:4:112::/48", "RFC 7535: AS112-v6"),
    ("2001:10::/28", "RFC 4843: ORCHID (deprecated)"),
    ("2001:20::/28", "RFC 7343: ORCHIDv2"),
    ("2001:30::/28", "RFC 9374: drone remote ID entity tags"),
    ("2001:db8::/32", "RFC 3849: documentation"),
    ("2002::/16", "RFC 3056: 6to4"),
    ("2620:4f:8000::/48", "RFC 7534: direct delegation AS112 service"),
    ("3fff::/20", "RFC 9637: documentation"),
    ("5f00::/16", "RFC 9602: segment routing (SRv6) SIDs"),
    ("fc00::/7", "RFC 4193: unique local"),
    ("fe80::/10", "RFC 4291: link-local unicast"),
    ("fec0::/10", "RFC 3879: site-local (deprecated)"),
    ("ff00::/8", "RFC 4291: multicast"),
)
_SPECIAL = tuple(ipaddress.ip_network(network) for network, _ in SPECIAL_PURPOSE)
RESOLVE_TIMEOUT_SECONDS = 5.0
GLOBAL_UNICAST_V6 = ipaddress.IPv6Network("2000::/3")  # RFC 4291: all else is not unicast


class TargetRefused(ValueError):
    """A webhook URL that points somewhere the service must not send requests."""


def is_public_address(address: IPAddress) -> bool:
    """True unless the address lies in a special-purpose range (or, IPv6, outside 2000::/3)."""
    if isinstance(address, ipaddress.IPv6Address) and address not in GLOBAL_UNICAST_V6:
        return False
    return not any(address in network for network in _SPECIAL)


async def resolve(host: str, port: int) -> list[IPAddress]:
    """The host's addresses in the resolver's order, without duplicates; refused if none."""
    lookup = asyncio.get_running_loop().getaddrinfo(host, port, type=socket.SOCK_STREAM)
    try:
        infos = await asyncio.wait_for(lookup, RESOLVE_TIMEOUT_SECONDS)
        found = [ipaddress.ip_address(info[4][0]) for info in infos]
    except (OSError, UnicodeError, ValueError):  # TimeoutError is an OSError
        raise TargetRefused(REFUSED) from None
    if not found:
        raise TargetRefused(REFUSED)
    return list(dict.fromkeys(found))


async def check_target(url: str, *, allow_private: bool) -> list[IPAddress]:
    """Refuse non-HTTP(S) URLs and hosts that are not public; return the checked addresses.

    Checked when subscribing and again before every delivery, which connects to exactly the
    addresses returned here. With ``allow_private`` nothing is resolved and the list is empty.
    """
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError as exc:  # e.g. an unclosed IPv6 bracket or a port out of range
        raise TargetRefused(f"the URL cannot be parsed: {exc}") from None
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise TargetRefused("webhook URLs must be absolute http(s) URLs")
    if parts.username or parts.password:
        raise TargetRefused("webhook URLs must not carry credentials")
    if allow_private:
        return []
    try:
        addresses: list[IPAddress] = [ipaddress.ip_address(parts.hostname)]
    except ValueError:
        default = 443 if parts.scheme == "https" else 80
        addresses = await resolve(parts.hostname, port or default)
    if not all(is_public_address(address) for address in addresses):
        raise TargetRefused(REFUSED)
    return addresses


async def validate_subscription_url(url: str, *, allow_private: bool) -> None:
    """422 for URLs a subscription may not use."""
    try:
        await check_target(url, allow_private=allow_private)
    except TargetRefused as exc:
        raise InvalidInput(
            str(exc)[:2000],
            errors=[FieldError(loc=["body", "url"], msg=str(exc)[:2000], type="webhook_target")],
        ) from None
