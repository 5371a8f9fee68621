"""Private and local addresses are refused for Discord's web ingest (retrieval/web_addresses.py)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from retrieval.web import WebRequest, fetch_pages
from retrieval.web_addresses import PrivateAddressError, PublicOnlyTransport, private_address
from retrieval.web_cache import WebCache
from tests.fake_site import FakeSite


@pytest.mark.parametrize(
    ("host", "address"),
    [
        ("127.0.0.1", "127.0.0.1"),
        ("127.8.9.10", "127.8.9.10"),
        ("::1", "::1"),
        ("[::1]", "::1"),
        ("::ffff:127.0.0.1", "127.0.0.1"),  # IPv4 inside IPv6
        ("10.1.2.3", "10.1.2.3"),
        ("172.16.0.9", "172.16.0.9"),
        ("192.168.1.1", "192.168.1.1"),
        ("169.254.169.254", "169.254.169.254"),  # cloud instance metadata
        ("100.64.0.1", "100.64.0.1"),  # carrier-grade NAT
        ("0.0.0.0", "0.0.0.0"),
        ("fd00::1", "fd00::1"),
        ("fe80::1", "fe80::1"),
    ],
)
def test_addresses_that_are_not_public(host: str, address: str) -> None:
    assert private_address(host) == address


def test_names_are_resolved() -> None:
    assert private_address("localhost") in {"127.0.0.1", "::1"}


@pytest.mark.parametrize("host", ["93.184.216.34", "8.8.8.8", "2606:4700:4700::1111"])
def test_public_addresses_pass(host: str) -> None:
    assert private_address(host) is None


def test_a_name_that_does_not_resolve_is_left_to_the_request() -> None:
    assert private_address("no-such-host.invalid") is None


@pytest.fixture
def site() -> Iterator[FakeSite]:
    with FakeSite() as fake:
        fake.slow = False
        yield fake


def test_the_transport_refuses_before_connecting(site: FakeSite) -> None:
    with (
        httpx.Client(transport=PublicOnlyTransport()) as client,
        pytest.raises(PrivateAddressError, match="private or local address"),
    ):
        client.get(f"{site.url}/robots.txt")
    assert site.log == []


def test_a_public_only_request_names_the_refused_page(site: FakeSite, tmp_path: Path) -> None:
    url = f"{site.url}/docs/a.html"
    cache = WebCache.in_dir(tmp_path)
    try:
        refused = fetch_pages(WebRequest((url,), public_only=True), cache, "c", timeout=2)
        assert [r.error for r in refused.results] == [
            "127.0.0.1 is a private or local address; web pages are fetched from public "
            "addresses only here (the bot's operator can allow others: QABOT_DISCORD_WEB_PRIVATE)"
        ]
        assert site.log == []
        allowed = fetch_pages(WebRequest((url,)), cache, "c", timeout=2)
        assert allowed.results[0].error is None and allowed.results[0].document is not None
    finally:
        cache.close()
