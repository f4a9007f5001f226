"""``make screenshots``: the screen test, writing a PNG of each main screen into a folder.

Usage: ``python -m tests.integration.web.screenshots docs/web``.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

import pytest


def main(argv: list[str]) -> int:
    target = Path(argv[0] if argv else "docs/web").resolve()
    os.environ["KITH_SCREENSHOTS_DIR"] = str(target)
    here = Path(__file__).resolve().parent
    return int(pytest.main(["-x", "-q", "-p", "no:logging", str(here / "test_screens.py")]))


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
