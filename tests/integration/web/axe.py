"""An axe-core scan of the current page (the npm package injected into it)."""

from __future__ import annotations

from typing import Any

from tests.integration.web.conftest import AXE


def serious_violations(page: Any) -> list[str]:
    """``"rule: help (selector)"`` for every serious or critical violation on ``page``."""
    if not page.evaluate("() => typeof window.axe !== 'undefined'"):
        page.add_script_tag(path=str(AXE))
    result = page.evaluate("""async () => {
        const r = await axe.run(document, {resultTypes: ['violations']});
        return r.violations.filter(v => v.impact === 'serious' || v.impact === 'critical')
            .map(v => `${v.id}: ${v.help} (${v.nodes.map(n => n.target.join(' ')).join(', ')})`);
    }""")
    return list(result)
