"""Browser tests' support: Playwright's async API driving the system's Chromium against the app on a real socket.

Nothing is downloaded: `playwright install` is never run. The Chromium is Debian's (`scripts/install-chromium`),
found as $HCP_TEST_CHROMIUM or `chromium` on PATH. Browser, app and test share the test's own event loop.

The fixtures (`live`, `browser`, `traffic`, `new_page`, `page`, `desktop_page`) are in conftest.py; what
they and the tests use is here: launching, serving, the record of what a page asked for, screenshots.
"""

from __future__ import annotations

import os
import re
import shutil
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

from aiohttp import web
from helpers import PUBLIC_URL

try:  # a missing Playwright is reported by the fixtures (a skip locally, a failure under CI), not on import
    from playwright.async_api import expect
except ImportError:  # pragma: no cover
    expect = None  # type: ignore[assignment]

if TYPE_CHECKING:
    import pytest
    from playwright.async_api import Browser, BrowserContext, Page, Playwright

ROOT = Path(__file__).resolve().parent.parent
SCREENSHOTS = ROOT / "test-artifacts" / "screenshots"

# --disable-background-networking and friends: without them Chromium dials Google's services, and a closed
# network refuses those connections (slowly). Playwright adds most of them too; saying so costs nothing.
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync"]
TIMEOUT_MS = 10_000  # an action or a navigation that takes longer has failed; Playwright's default is 30 s

PHONE: dict[str, Any] = {"viewport": {"width": 375, "height": 812}, "device_scale_factor": 2,
                         "is_mobile": True, "has_touch": True, "locale": "zh-CN"}
DESKTOP: dict[str, Any] = {"viewport": {"width": 1280, "height": 800}, "device_scale_factor": 1,
                           "is_mobile": False, "has_touch": False, "locale": "zh-CN"}


def find_chromium() -> str:
    """The Chromium to drive; LookupError (with what to do) when there is none."""
    configured = os.environ.get("HCP_TEST_CHROMIUM")
    if configured:
        if not os.access(configured, os.X_OK):
            raise LookupError(f"HCP_TEST_CHROMIUM={configured} is not an executable file")
        return configured
    found = shutil.which("chromium")
    if not found:
        raise LookupError("no `chromium` on PATH; scripts/install-chromium installs Debian's")
    return found


async def launch(pw: Playwright, executable: str) -> Browser:
    return await pw.chromium.launch(executable_path=executable, headless=True, args=CHROMIUM_ARGS)


async def serve(app: web.Application) -> tuple[web.AppRunner, str]:
    """The app on a free port of 127.0.0.1 in the running loop: (its runner, to clean up; its base URL)."""
    runner = web.AppRunner(app, access_log=None, shutdown_timeout=1.0)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", 0).start()
    host, port = runner.addresses[0][:2]
    return runner, f"http://{host}:{port}"


def token_of(sms_body: str) -> str:
    """The rating link's token in a reminder. The link names PUBLIC_URL; a browser test opens live + /r/token."""
    [token] = re.findall(re.escape(PUBLIC_URL) + r"/r/([A-Za-z0-9._-]+)", sms_body)
    return token


def origin(url: str) -> str:
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.netloc}"


LOCAL_SCHEMES = ("data", "blob", "about")  # never leave the browser


@dataclass
class Traffic:
    """Everything the pages of a test asked for, and what they complained about in their consoles."""

    origin: str
    requests: list[str] = field(default_factory=list)
    console_errors: list[str] = field(default_factory=list)
    page_errors: list[str] = field(default_factory=list)
    failed_loads: list[str] = field(default_factory=list)  # "404 <url>": styles, scripts, images (not documents)

    def watch(self, context: BrowserContext) -> None:
        context.on("request", lambda req: self.requests.append(req.url))
        context.on("response", lambda resp: self.failed_loads.append(f"{resp.status} {resp.url}")
                   if resp.status >= 400 and resp.request.resource_type != "document" else None)
        context.on("requestfailed", lambda req: self.failed_loads.append(f"{req.failure} {req.url}")
                   if req.failure != "net::ERR_ABORTED" else None)  # aborted: left behind by a navigation
        context.on("console", lambda msg: self.console_errors.append(f"{msg.text} ({msg.location.get('url')})")
                   if msg.type == "error" else None)
        context.on("weberror", lambda err: self.page_errors.append(str(err.error)))

    def foreign(self) -> list[str]:
        """Requests that went anywhere but the live server (data:, blob: and about: stay in the browser)."""
        return [url for url in self.requests
                if urlsplit(url).scheme not in LOCAL_SCHEMES and origin(url) != origin(self.origin)]

    def assert_local(self) -> None:
        assert self.requests, "no request was recorded at all: is the page watched?"
        assert not self.foreign(), f"the page loaded from outside {self.origin}: {self.foreign()}"

    def assert_quiet(self) -> None:
        """Every style, script and image loaded; no script error, no console error (a CSP violation, a
        failed load, a script's console.error)."""
        assert not self.failed_loads, f"loads that failed: {self.failed_loads}"
        assert not self.page_errors, f"errors in the page's scripts: {self.page_errors}"
        assert not self.console_errors, f"errors in the browser console: {self.console_errors}"


async def new_context(browser: Browser, base_url: str, traffic: Traffic, **options: Any) -> BrowserContext:
    """A fresh context at phone size unless told otherwise; relative URLs go to the live server."""
    context = await browser.new_context(**{**PHONE, "base_url": base_url, **options})
    context.set_default_timeout(TIMEOUT_MS)
    context.set_default_navigation_timeout(TIMEOUT_MS)
    traffic.watch(context)
    return context


def artifact(request: pytest.FixtureRequest, step: str, suffix: str = ".png") -> Path:
    """test-artifacts/screenshots/<test name>-<step><suffix>, the name made safe for a file system."""
    name = re.sub(r"[^A-Za-z0-9_.-]+", "_", request.node.name).strip("_")
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    return SCREENSHOTS / f"{name}-{re.sub(r'[^A-Za-z0-9_.-]+', '_', step)}{suffix}"


async def shot(page: Page, request: pytest.FixtureRequest, step: str, *, full_page: bool = True) -> Path:
    """A screenshot of the page now, as test-artifacts/screenshots/<test name>-<step>.png."""
    path = artifact(request, step)
    await page.screenshot(path=path, full_page=full_page)
    return path


async def keep_failure(contexts: list[BrowserContext], request: pytest.FixtureRequest) -> None:
    """When the test failed: a screenshot and the HTML of every page it had open, named <test>-failed[-n]."""
    report = getattr(request.node, "rep_call", None)
    if report is None or not report.failed:
        return
    pages = [p for context in contexts for p in context.pages]
    for n, p in enumerate(pages):
        step = "failed" if len(pages) == 1 else f"failed-{n + 1}"
        try:
            await shot(p, request, step)
            artifact(request, step, ".html").write_text(await p.content(), encoding="utf-8")
        except Exception as exc:  # a crashed page: the report says why the test failed, this is a courtesy
            artifact(request, step, ".txt").write_text(f"no screenshot: {exc}\n", encoding="utf-8")


async def overflow_x(page: Page) -> int:
    """How many CSS pixels the page is wider than its viewport (0: nothing to scroll sideways).

    Measured against the viewport the context was given, not window.innerWidth: a mobile context (is_mobile, as
    PHONE is) widens its layout viewport to fit content that is too wide, and innerWidth grows with it."""
    width = page.viewport_size["width"]
    return await page.evaluate("w => Math.max(0, document.documentElement.scrollWidth - w)", width)
