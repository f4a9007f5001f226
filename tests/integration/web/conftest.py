"""The real stack and gateway (serving the built web app) plus Debian's headless Chromium.

The stack fixtures are the gateway tests' module-scoped ones (every service
in-process, the gateway over real HTTP). The browser is ``/usr/bin/chromium``
from Debian's ``chromium`` package driven by Playwright; nothing downloads a
browser. A missing browser or app build fails with the command that fixes it.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.integration.gateway.conftest import gateway, module_settings, stack  # noqa: F401

WEB = Path(__file__).resolve().parents[3] / "web"
AXE = WEB / "node_modules" / "axe-core" / "axe.min.js"


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
