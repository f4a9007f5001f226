"""The real stack and gateway (serving the built web app) plus Debian's headless Chromium.

The stack fixtures are the gateway tests' module-scoped ones (every service
in-process, the gateway over real HTTP); the browser talks to the gateway's one origin,
the stream server in front of the Flask app (as ``make run``), so the app's
``EventSource`` is same-origin. The browser is ``/usr/bin/chromium``
from Debian's ``chromium`` package driven by Playwright; nothing downloads a
browser. A missing browser or app build fails with the command that fixes it.
"""

from __future__ import annotations

import dataclasses
import os
import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest

from kith.common.config import Settings
from kith.common.service import RunningService
from tests.integration.gateway.conftest import module_settings, stack  # noqa: F401
from tests.integration.gateway.harness import Gateway, gateway_config, serving_gateway

WEB = Path(__file__).resolve().parents[3] / "web"
AXE = WEB / "node_modules" / "axe-core" / "axe.min.js"


@pytest.fixture(scope="module")
def gateway(stack: tuple[Settings, dict[str, RunningService]]) -> Iterator[Gateway]:  # noqa: F811
    """The served gateway, every request (API and app) through its one origin."""
    with serving_gateway(*stack, gateway_config()) as served:
        yield dataclasses.replace(served, url=served.origin)


def chromium_path() -> str:
    found = os.environ.get("KITH_TEST_CHROMIUM") or shutil.which("chromium") or "/usr/bin/chromium"
    if not Path(found).is_file():
        pytest.fail("the browser tests need Debian's Chromium: apt-get install -y chromium "
                    "(or set KITH_TEST_CHROMIUM to a Chromium binary)", pytrace=False)
    return found


def require_build() -> None:
    if not (WEB / "dist" / "index.html").is_file() or not AXE.is_file():
        pytest.fail("the web app is not built: run `make web` (needs npm)", pytrace=False)


@pytest.fixture(scope="module")
def browser() -> Iterator[object]:
    require_build()
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        chromium = p.chromium.launch(executable_path=chromium_path(),
                                     args=["--no-sandbox", "--disable-dev-shm-usage"])
        try:
            yield chromium
        finally:
            chromium.close()
