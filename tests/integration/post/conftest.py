"""The post world every post story starts from: real graph and post services."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from kith.graph.entrypoint import SPEC as GRAPH
from kith.post.entrypoint import SPEC as POST
from tests.integration.post.post_world import World


@pytest.fixture
def world(stack) -> Iterator[World]:
    stack.start(GRAPH)
    stack.start(POST)
    w = World.connect(stack.settings)
    yield w
    w.close()
