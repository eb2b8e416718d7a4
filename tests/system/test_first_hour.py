"""A newcomer's first hour (issue 19): `serve --port 18080` writes its own port into links when
HAOCHAPING_PUBLIC_URL is unset, GET / leads somewhere, and a taken port is one line and exit code 2.

The simulator's clock on its rating page is in tests/web/test_simulator.py and tests/browser/test_browser_simulator.py.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import os
import re
import socket
import sys
import threading
from html.parser import HTMLParser
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from helpers import without_providers
from servers import free_port

from bot.cli import main as cli
from bot.infra.config import DEFAULT_PUBLIC_URL, KEYS, Settings, listen_url, load_settings, serving_settings
from bot.infra.i18n import SUPPORTED
from bot.web.pages import autonym

HAOCHAPING = Path(sys.executable).with_name("haochaping")  # the console script, as deployed
STARTUP_SECONDS = 30


def clean_env() -> dict[str, str]:
    """The caller's environment without any of the service's settings."""
    return {k: v for k, v in os.environ.items()
            if k not in KEYS and not k.startswith(("HAOCHAPING_", "TWILIO_", "WECHAT_"))}


# --- the public URL `serve` writes into links -------------------------------------------------------------


@pytest.mark.parametrize(("host", "expected"), [
    ("127.0.0.1", "http://127.0.0.1:18080"), ("0.0.0.0", "http://127.0.0.1:18080"), ("::", "http://127.0.0.1:18080"),
    ("::1", "http://[::1]:18080"), ("localhost", "http://localhost:18080"), ("192.168.1.20", "http://192.168.1.20:18080"),
])
def test_serve_without_a_public_url_names_its_own_address(host, expected, tmp_path: Path):
    loaded = load_settings({}, cwd=tmp_path)
    assert loaded.public_url == DEFAULT_PUBLIC_URL and loaded.public_url_given is False
    served = serving_settings(loaded, host, 18080)
    assert served.public_url == expected == listen_url(host, 18080)


def test_a_configured_public_url_is_used_as_is(tmp_path: Path):
    given = load_settings({"HAOCHAPING_PUBLIC_URL": "https://hcp.example.gov.cn/"}, cwd=tmp_path)
    assert given.public_url_given and serving_settings(given, "0.0.0.0", 18080) is given
    assert given.public_url == "https://hcp.example.gov.cn"
    # the default's own value, set on purpose (a port forwarded from 8080): used as it is too
    same = load_settings({"HAOCHAPING_PUBLIC_URL": DEFAULT_PUBLIC_URL}, cwd=tmp_path)
    assert serving_settings(same, "127.0.0.1", 18080).public_url == DEFAULT_PUBLIC_URL
    (tmp_path / "haochaping.toml").write_text('public_url = "http://10.0.0.5:9000"\n', encoding="utf-8")
    from_file = load_settings({}, cwd=tmp_path)
    assert from_file.public_url_given and serving_settings(from_file, "127.0.0.1", 18080).public_url == (
        "http://10.0.0.5:9000")


def test_an_empty_public_url_counts_as_unset(tmp_path: Path):
    empty = load_settings({"HAOCHAPING_PUBLIC_URL": ""}, cwd=tmp_path)
    assert not empty.public_url_given
    assert serving_settings(empty, "127.0.0.1", 18081).public_url == "http://127.0.0.1:18081"


@pytest.fixture
def settings(settings: Settings) -> Settings:
    """What load_settings gives without HAOCHAPING_PUBLIC_URL, as `serve --host 0.0.0.0 --port 18080` runs it; the
    providers are the test's fakes (the reminder reaches the fake Twilio)."""
    unset = dataclasses.replace(settings, public_url=DEFAULT_PUBLIC_URL, public_url_given=False)
    return serving_settings(unset, "0.0.0.0", 18080)


async def test_the_reminder_of_a_serve_on_another_port_links_to_that_port(hcp):
    _, _, sms = await hcp.reminded()
    assert re.search(r"http://127\.0\.0\.1:18080/r/[A-Za-z0-9._-]+", sms["body"]), sms["body"]
    assert ":8080/" not in sms["body"]


async def _read_until(stream: asyncio.StreamReader, pattern: str, seen: list[str]) -> re.Match[str]:
    async with asyncio.timeout(STARTUP_SECONDS):
        while True:
            line = (await stream.readline()).decode(errors="replace")
            assert line, "serve exited:\n" + "".join(seen)
            seen.append(line)
            found = re.search(pattern, line)
            if found:
                return found


async def test_serve_on_another_port_says_so_and_its_simulated_reminder_links_there(tmp_path: Path):
    """The console script on a port of its own, nothing configured: the start-up line names the URL it took,
    and the reminder the simulator's clock sends (an SMS of the local provider) links to that port."""
    port = free_port()
    process = await asyncio.create_subprocess_exec(
        str(HAOCHAPING), "serve", "--port", str(port), "--no-scheduler", env=clean_env(), cwd=tmp_path,
        stdin=asyncio.subprocess.DEVNULL, stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.PIPE)
    seen: list[str] = []
    try:
        assert process.stderr is not None
        started = await _read_until(process.stderr, r"haochaping on http://\S+ — .*", seen)
        base = f"http://127.0.0.1:{port}"
        found = re.search(r"public URL (\S+) \(([^)]*)\)", started.group(0))
        assert found and found.group(1) == base and "HAOCHAPING_PUBLIC_URL" in found.group(2), seen
        jar = aiohttp.CookieJar(unsafe=True)  # the simulator's cookie, from an IP address
        async with aiohttp.ClientSession(base, cookie_jar=jar, timeout=aiohttp.ClientTimeout(total=20)) as http:
            async with http.get("/", allow_redirects=False) as home:
                assert (home.status, home.headers["Location"]) == (302, "/simulator/")
            async with http.get("/simulator/") as page:
                assert page.status == 200
            async with http.post("/simulator/api/case", json={"channel": "sms"}) as posted:
                assert posted.status == 200, await posted.text()
            # The simulator's clock starts at the real time; a reminder due in the quiet hours (21:00-08:00)
            # waits for the morning. Of two instants twelve hours apart, one is outside an 11-hour night.
            reminders: list[dict[str, Any]] = []
            for hours in (24, 12):
                async with http.post("/simulator/api/clock", json={"hours": hours}) as moved:
                    doc = await moved.json()
                reminders = [e for e in doc["sms"] if e.get("kind") == "reminder"]
                if reminders:
                    break
        [reminder] = reminders
        link = re.search(r"https?://\S+/simulator/r/[A-Za-z0-9._-]+", reminder["text"])
        assert link and link.group(0).startswith(base + "/simulator/r/"), reminder["text"]
    finally:
        if process.returncode is None:
            process.terminate()
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(process.wait(), 10)
        if process.returncode is None:
            process.kill()
            await process.wait()


# --- GET / ---------------------------------------------------------------------------------------------------


async def test_the_root_of_the_embedded_defaults_is_the_simulator(hcp, settings, tmp_path: Path):
    assert load_settings({}, cwd=tmp_path).simulator_enabled  # the embedded defaults: no provider, simulator on
    hcp.rt.settings = without_providers(settings)
    response = await hcp.client.get("/", allow_redirects=False)
    assert response.status == 302 and response.headers["Location"] == "/simulator/"
    followed = await hcp.client.get("/")
    assert followed.status == 200 and followed.url.path == "/simulator/"


class _Text(HTMLParser):
    """The words a reader sees: text outside the language switch (each language there is in its own name),
    and the links' targets."""

    def __init__(self) -> None:
        super().__init__()
        self.words: list[str] = []
        self.switch: list[str] = []
        self.links: list[str] = []
        self._in_switch = 0
        self._skip = 0

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        found = dict(attrs)
        if tag == "nav" and "langs" in (found.get("class") or ""):
            self._in_switch += 1
        if tag in ("script", "style"):
            self._skip += 1
        if tag == "a" and found.get("href"):
            self.links.append(str(found["href"]))

    def handle_endtag(self, tag: str) -> None:
        if tag == "nav" and self._in_switch:
            self._in_switch -= 1
        if tag in ("script", "style") and self._skip:
            self._skip -= 1

    def handle_data(self, data: str) -> None:
        if self._skip or not data.strip():
            return
        (self.switch if self._in_switch else self.words).append(data.strip())


@pytest.mark.parametrize("provider", ["twilio", "simulator_off"])
async def test_the_root_with_a_provider_is_a_short_status_page_in_chinese(hcp, settings, provider):
    if provider == "simulator_off":  # the local provider, the simulator switched off
        hcp.rt.settings = dataclasses.replace(without_providers(settings), simulator=False)
    phone = hcp.new_phone()
    await hcp.post_case(phone=phone)
    response = await hcp.client.get("/", allow_redirects=False)
    html = await response.text()
    assert response.status == 200 and response.content_type == "text/html"
    assert response.headers["Cache-Control"] == "no-store" and "Content-Security-Policy" in response.headers
    assert '<html lang="zh-Hans">' in html
    seen = _Text()
    seen.feed(html)
    text = " ".join(seen.words)
    assert "政务服务好差评" in text and "服务正在运行" in text and "工作台" in text and "健康检查" in text
    assert {"/console/", "/healthz"} <= set(seen.links)
    english = re.findall(r"[A-Za-z]{2,}", re.sub(r"/[\w/.-]*", " ", text))  # words, paths left out
    assert english == [], english
    assert seen.switch == [autonym(loc) for loc in SUPPORTED]  # the switch: each language in its own name
    for private in (phone, phone[-4:], "张三", "李四", settings.public_url, "sqlite"):
        assert private not in html
    head = await hcp.client.head("/", allow_redirects=False)
    assert head.status == 200


async def test_the_status_page_in_the_readers_language(hcp):
    english = await hcp.client.get("/", headers={"Accept-Language": "en-US,en;q=0.9"})
    assert english.status == 200 and "The service is running." in await english.text()
    hant = await hcp.client.get("/?lang=zh_Hant")
    assert "服務正在運行" in await hant.text()


# --- a taken port --------------------------------------------------------------------------------------------


def test_a_taken_port_is_one_line_and_exit_code_2(tmp_path: Path, monkeypatch, capsys, keep_logging):
    monkeypatch.chdir(tmp_path)
    for key in KEYS:
        monkeypatch.delenv(key, raising=False)
    outcome: dict[str, Any] = {}

    def run(port: int) -> None:
        try:
            outcome["status"] = cli.main(["serve", "--port", str(port)])
        except BaseException as exc:  # what escaped main() is the finding
            outcome["raised"] = exc

    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        thread = threading.Thread(target=run, args=(port,), daemon=True)
        thread.start()
        thread.join(STARTUP_SECONDS)
        assert not thread.is_alive(), "serve did not give up on a taken port"
    err = capsys.readouterr().err

    assert "raised" not in outcome, repr(outcome.get("raised"))
    assert outcome["status"] == 2
    assert "Traceback" not in err and "Errno" not in err
    [line] = err.strip().splitlines()
    assert line.startswith("haochaping serve: ") and f"127.0.0.1:{port}" in line and "already in use" in line
