"""The client's address: ``X-Forwarded-For`` is believed only when a configured proxy sent it.

``KITH_GATEWAY_TRUSTED_PROXY_CIDRS`` lists the networks of the proxies in front of
the gateway (e.g. the ingress controller's pod network). When the direct peer is
one of them, the client is the right-most ``X-Forwarded-For`` entry that is not
itself a trusted proxy; anyone else's ``X-Forwarded-For`` is ignored, so a
client cannot pick the address its rate limits are counted under.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Callable, Iterable, Sequence
from typing import Any

Network = ipaddress.IPv4Network | ipaddress.IPv6Network


def parse_cidrs(raw: str) -> list[Network]:
    """Comma-separated networks (``10.0.0.0/8, 192.168.1.7``); raises ValueError."""
    return [ipaddress.ip_network(part.strip(), strict=False)
            for part in raw.split(",") if part.strip()]


def _trusted(address: str, networks: Sequence[Network]) -> bool:
    try:
        ip = ipaddress.ip_address(address.strip())
    except ValueError:
        return False
    return any(ip in net for net in networks)


def client_address(peer: str, forwarded_for: str | None, networks: Sequence[Network]) -> str:
    """The address to attribute a request to (see the module docstring)."""
    if not networks or not forwarded_for or not _trusted(peer, networks):
        return peer
    hops = [h.strip() for h in forwarded_for.split(",") if h.strip()]
    for hop in reversed(hops):
        if not _trusted(hop, networks):
            try:
                return str(ipaddress.ip_address(hop))
            except ValueError:
                return peer  # garbage from a client behind the proxy: fall back to the proxy
    return hops[0] if hops else peer


class TrustedProxies:
    """WSGI middleware setting ``REMOTE_ADDR`` to :func:`client_address`."""

    def __init__(self, app: Callable[..., Iterable[bytes]], networks: Sequence[Network]) -> None:
        self.app = app
        self.networks = list(networks)

    def __call__(self, environ: dict[str, Any], start_response: Callable[..., Any]
                 ) -> Iterable[bytes]:
        peer = environ.get("REMOTE_ADDR", "")
        environ["REMOTE_ADDR"] = client_address(peer, environ.get("HTTP_X_FORWARDED_FOR"),
                                                self.networks)
        return self.app(environ, start_response)
