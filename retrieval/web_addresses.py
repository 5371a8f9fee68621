"""Which hosts a web ingest may reach: all of them from the CLI, public ones from Discord.

``qabot ingest URL`` runs on the operator's machine, and an intranet docs site is a fair
thing to ingest. ``/ingest url:`` is run by a Discord server's admin, who is not necessarily
the bot host's operator: left open it would let them read what only the bot's host can reach
(a router's admin page, ``localhost`` services, a cloud instance's metadata address at
169.254.169.254) and get it back as cited answers. So a Discord web ingest refuses any host
whose address is not globally routable (``ipaddress``' ``is_global``: private, loopback,
link-local, shared and reserved ranges are not), unless the operator allows it
(``QABOT_DISCORD_WEB_PRIVATE``).

The check runs twice: before each request, with a message naming the page, and again in the
HTTP transport for every request the client makes (robots.txt, sitemaps, each redirect hop).
A name is resolved for the check and again by the connection; a DNS server that answers
differently the second time (rebinding) is not defended against here.
"""

from __future__ import annotations

import ipaddress
import socket

import httpx


def private_address(host: str, port: int | None = None) -> str | None:
    """The first address of ``host`` that is not globally routable, or None when all are
    (or when the name does not resolve: the request then fails on its own)."""
    host = host.strip("[]")
    try:
        addresses = [ipaddress.ip_address(host)]
    except ValueError:
        try:
            infos = socket.getaddrinfo(host, port or 80, type=socket.SOCK_STREAM)
        except (socket.gaierror, UnicodeError):
            return None
        addresses = [ipaddress.ip_address(info[4][0]) for info in infos]
    for address in addresses:
        if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
            address = address.ipv4_mapped
        if not address.is_global:
            return str(address)
    return None


def refusal(host: str, address: str) -> str:
    """Why a page of ``host`` is not fetched."""
    shown = host if host == address else f"{host} ({address})"
    return (
        f"{shown} is a private or local address; web pages are fetched from public "
        "addresses only here (the bot's operator can allow others: QABOT_DISCORD_WEB_PRIVATE)"
    )


class PrivateAddressError(httpx.ConnectError):
    """A request to a host that is not globally routable, refused before connecting."""


class PublicOnlyTransport(httpx.HTTPTransport):
    """An HTTP transport that refuses hosts that are not globally routable."""

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        address = private_address(request.url.host, request.url.port)
        if address is not None:
            raise PrivateAddressError(refusal(request.url.host, address), request=request)
        return super().handle_request(request)
