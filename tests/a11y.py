"""Accessibility and layout checks for the browser tests: axe-core run in the page, and no sideways scrolling.

axe-core is the version tests/a11y/package-lock.json pins, installed by scripts/install-chromium (npm ci). It
is evaluated through Playwright's protocol rather than added as a <script>, so the pages' Content-Security-Policy
(script-src 'self') stays as it is in production. The viewports are the issue's: two phones and a laptop.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

AXE = Path(__file__).resolve().parent / "a11y" / "node_modules" / "axe-core" / "axe.min.js"
VIEWPORTS: dict[str, dict[str, int]] = {
    "360x640": {"width": 360, "height": 640},
    "390x844": {"width": 390, "height": 844},
    "1366x768": {"width": 1366, "height": 768},
}
SERIOUS = ("serious", "critical")


def axe_source() -> str:
    """The axe-core script; LookupError (with what to do) when it is not installed."""
    if not AXE.is_file():
        raise LookupError(f"{AXE} is missing: scripts/install-chromium installs axe-core (npm ci in tests/a11y)")
    return AXE.read_text(encoding="utf-8")


async def axe_violations(page: Any, impacts: tuple[str, ...] = SERIOUS, enable: tuple[str, ...] = ()
                         ) -> list[dict[str, Any]]:
    """The page's axe-core violations of these impacts: [{"id", "impact", "help", "targets"}]. `enable`: rules
    axe leaves off by default to run as well (e.g. "color-contrast-enhanced", WCAG AAA's 7:1)."""
    if not await page.evaluate("() => typeof window.axe !== 'undefined'"):
        await page.evaluate(axe_source())
    result = await page.evaluate(
        "async rules => (await axe.run(document, {resultTypes: ['violations'], rules: Object.fromEntries("
        "rules.map(r => [r, {enabled: true}]))})).violations.map(v => ({"
        "id: v.id, impact: v.impact, help: v.help, targets: v.nodes.map(n => n.target.join(' '))}))", list(enable))
    return [v for v in result if v["impact"] in impacts]


async def sideways_overflow(page: Any) -> int:
    """How many CSS pixels the page is wider than its viewport (0: no horizontal scroll). The viewport is the one
    the context was given: in a mobile context (is_mobile) window.innerWidth grows to fit content too wide."""
    width = page.viewport_size["width"]
    return int(await page.evaluate("w => Math.max(0, document.documentElement.scrollWidth - w)", width))
