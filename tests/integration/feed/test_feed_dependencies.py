"""When post, identity or graph does not answer, the feed says ``unavailable`` (one code for a
dependency that did not answer), never a raw gRPC failure that surfaces as an internal error;
when media does not answer, a page is served without photos."""

from __future__ import annotations

import socket

import pytest

from kith.common.errors import DependencyUnavailable
from kith.common.rpc import channel
from kith.feed.clients import GraphClient, IdentityClient, MediaClient, PostClient


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def test_posts_that_cannot_be_fetched_are_a_dependency_unavailable() -> None:
    nowhere = channel(f"127.0.0.1:{free_port()}", deadline_s=1.0)

    with pytest.raises(DependencyUnavailable) as refused:
        PostClient(nowhere).batch_get("5b8f4a6e-4a3c-4b1b-9d7e-0a1b2c3d4e5f",
                                     ["0b8f4a6e-4a3c-4b1b-9d7e-0a1b2c3d4e5f"])

    assert refused.value.code == "unavailable" and "post" in refused.value.message


def test_names_that_cannot_be_fetched_are_a_dependency_unavailable() -> None:
    nowhere = channel(f"127.0.0.1:{free_port()}", deadline_s=1.0)

    with pytest.raises(DependencyUnavailable) as refused:
        IdentityClient(nowhere).display_names(["5b8f4a6e-4a3c-4b1b-9d7e-0a1b2c3d4e5f"])

    assert refused.value.code == "unavailable" and "identity" in refused.value.message


def test_personas_that_cannot_be_fetched_are_a_dependency_unavailable() -> None:
    nowhere = channel(f"127.0.0.1:{free_port()}", deadline_s=1.0)

    with pytest.raises(DependencyUnavailable) as refused:
        GraphClient(nowhere).personas("5b8f4a6e-4a3c-4b1b-9d7e-0a1b2c3d4e5f",
                                      [("0b8f4a6e-4a3c-4b1b-9d7e-0a1b2c3d4e5f",
                                        "1b8f4a6e-4a3c-4b1b-9d7e-0a1b2c3d4e5f")])

    assert refused.value.code == "unavailable" and "graph" in refused.value.message


def test_photos_that_cannot_be_fetched_are_left_out_not_a_failure() -> None:
    nowhere = channel(f"127.0.0.1:{free_port()}", deadline_s=1.0)

    assert MediaClient(nowhere).photos("5b8f4a6e-4a3c-4b1b-9d7e-0a1b2c3d4e5f",
                                       ["0b8f4a6e-4a3c-4b1b-9d7e-0a1b2c3d4e5f"]) is None
