"""Where webhooks may go: public addresses only, unless settings allow private ones (SSRF)."""

import asyncio
import ipaddress
import socket
from urllib.parse import urlsplit

from app.errors import FieldError, InvalidInput


class TargetRefused(ValueError):
    """A webhook URL that points somewhere the service must not send requests."""


def _is_public(address: ipaddress.IPv4Address | ipaddress.IPv6Address) -> bool:
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        address = address.ipv4_mapped
    return not (
        address.is_private
        or address.is_loopback
        or address.is_link_local
        or address.is_multicast
        or address.is_reserved
        or address.is_unspecified
        or not address.is_global
    )


async def check_target(url: str, *, allow_private: bool) -> None:
    """Refuse non-HTTP(S) URLs and hosts that resolve to non-public addresses.

    Checked when subscribing and again before every delivery, so a DNS answer that changes
    to an internal address later (rebinding) is still refused.
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
        return
    try:
        infos = await asyncio.get_running_loop().getaddrinfo(
            parts.hostname, port or 443, type=socket.SOCK_STREAM
        )
    except (socket.gaierror, UnicodeError) as exc:
        raise TargetRefused(f"the host {parts.hostname!r} does not resolve") from exc
    for info in infos:
        address = ipaddress.ip_address(info[4][0])
        if not _is_public(address):
            raise TargetRefused(
                f"the host resolves to a non-public address ({address}); private targets are disabled"
            )


async def validate_subscription_url(url: str, *, allow_private: bool) -> None:
    """422 for URLs a subscription may not use."""
    try:
        await check_target(url, allow_private=allow_private)
    except TargetRefused as exc:
        raise InvalidInput(
            str(exc)[:2000],
            errors=[FieldError(loc=["body", "url"], msg=str(exc)[:2000], type="webhook_target")],
        ) from None
