"""Whose address a request is counted under."""

from __future__ import annotations

from kith.gateway.proxies import client_address, parse_cidrs

PROXIES = parse_cidrs("10.0.0.0/8, 192.168.1.7")


def test_forwarded_for_from_a_configured_proxy_names_the_client() -> None:
    assert client_address("10.1.2.3", "203.0.113.9", PROXIES) == "203.0.113.9"
    # A client's own (spoofed) entries sit left of what the proxies appended.
    assert client_address("10.1.2.3", "1.1.1.1, 203.0.113.9, 10.4.4.4", PROXIES) \
        == "203.0.113.9"


def test_forwarded_for_from_anyone_else_is_ignored() -> None:
    assert client_address("198.51.100.5", "1.2.3.4", PROXIES) == "198.51.100.5"
    assert client_address("198.51.100.5", "1.2.3.4", []) == "198.51.100.5"
    assert client_address("10.1.2.3", "not-an-address", PROXIES) == "10.1.2.3"
