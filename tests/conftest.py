"""Fixtures: real SQLite files and a real PostgreSQL database, in-process state and real Redis, the
real twilio client talking to a local fake of Twilio's REST API.

Servers: PostgreSQL at $HCP_TEST_PG (default postgresql://postgres@127.0.0.1:5432/test, used only
to create and drop a database of this session's own) and Redis at $HCP_TEST_REDIS (default
redis://127.0.0.1:6379/0, keys under a prefix of each test's own). Locally a missing server skips
its tests with the reason; under CI=true it fails them.
"""

from __future__ import annotations

import asyncio
import gc
import logging
import os
import secrets
import shutil
import sys
from collections.abc import AsyncIterator, Iterator
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest
import redis.asyncio as aioredis
from fakes.twilio_api import FakeTwilio
from fakes.wechat_api import FakeWeChat
from helpers import PUBLIC_URL, TOKEN, WX, Clock, Hcp
from redis.exceptions import ConnectionError as RedisConnectionError
from servers import (  # noqa: F401
    ALL_BACKENDS,
    BACKENDS,
    CI,
    MARIADB,
    PG_ADMIN,
    REDIS_URL,
    mariadb_admin,
    truncate,
    unavailable,
)

from bot.infra.config import Settings
from bot.infra.runtime import Runtime, open_runtime
from bot.web.app import build_app

# This machine (and CI) sets PYTHONDONTWRITEBYTECODE=1, so every `haochaping` process a test starts would compile
# the project's modules from source again (about 0.4 s of CPU each, a few hundred times a run). The suite and
# the processes it starts may keep their bytecode (__pycache__ is ignored by git).
os.environ.pop("PYTHONDONTWRITEBYTECODE", None)
sys.dont_write_bytecode = False


def run_isolated(coro: Any) -> Any:
    """Run a coroutine to completion on a loop of its own (fixtures may be set up inside a running loop)."""
    with ThreadPoolExecutor(1) as pool:
        return pool.submit(asyncio.run, coro).result()


async def _pg_admin(sql: str) -> None:
    import asyncpg

    conn = await asyncpg.connect(PG_ADMIN, timeout=10)
    try:
        await conn.execute(sql)
    finally:
        await conn.close()


@pytest.fixture(scope="session")
def pg_database() -> Iterator[str]:
    """A database of this session's own, migrated once; dropped at the end."""
    from store import migrate
    from store.engine import Database

    name = f"hcp_test_{secrets.token_hex(4)}"
    try:
        run_isolated(_pg_admin(f'CREATE DATABASE "{name}"'))
    except (OSError, TimeoutError) as exc:  # not reachable; any other error fails loudly
        unavailable("PostgreSQL", exc)
    url = "postgresql+asyncpg://" + PG_ADMIN.split("://", 1)[1].rsplit("/", 1)[0] + "/" + name

    async def up() -> None:
        db = Database(url)
        try:
            await migrate.upgrade(db)
        finally:
            await db.close()

    run_isolated(up())
    yield url
    run_isolated(_pg_admin(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))


@pytest.fixture
def keep_logging() -> Iterator[None]:
    """bot.cli.main sets the process's logging up (root handlers, levels): put it back after each test, so
    that running the CLI in-process leaves nothing behind for the tests that follow."""
    names = ("", "twilio", "alembic", "wechatpy", "urllib3", "aiohttp.access")
    saved = {name: (logging.getLogger(name).level, list(logging.getLogger(name).handlers)) for name in names}
    yield
    for name, (level, handlers) in saved.items():
        logger = logging.getLogger(name)
        logger.setLevel(level)
        for handler in list(logger.handlers):
            if handler not in handlers:
                logger.removeHandler(handler)
        for handler in handlers:
            if handler not in logger.handlers:
                logger.addHandler(handler)


@pytest.fixture
def backend(request: pytest.FixtureRequest) -> tuple[str, str]:
    return getattr(request, "param", ("sqlite", "memory"))


@pytest.fixture(scope="session")
def sqlite_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A SQLite file migrated once by the migrations themselves; each test gets a copy of it.

    Running the migrations again for every test cost ~150 ms each (about two minutes of the suite);
    tests/store/test_migrations.py still migrates fresh files from nothing.
    """
    from store import migrate
    from store.engine import Database

    path = tmp_path_factory.mktemp("sqlite-template") / "haochaping.db"

    async def up() -> None:
        db = Database(f"sqlite+aiosqlite:///{path}")
        try:
            await migrate.upgrade(db)
        finally:
            await db.close()  # the last connection's close checkpoints the WAL into the file

    run_isolated(up())
    if path.with_name(path.name + "-wal").exists():  # a copy of the main file alone would lose its tail
        pytest.fail("the SQLite template kept a WAL file after closing", pytrace=False)
    return path


@pytest.fixture
async def database_url(backend: tuple[str, str], tmp_path: Path, request: pytest.FixtureRequest) -> str:
    if backend[0] == "sqlite":
        path = tmp_path / "haochaping.db"
        shutil.copyfile(request.getfixturevalue("sqlite_template"), path)
        return f"sqlite+aiosqlite:///{path}"
    if backend[0] == "mariadb":
        return await _mariadb_database(request)
    url = request.getfixturevalue("pg_database")
    await truncate(url)
    return url


async def _mariadb_database(request: pytest.FixtureRequest) -> str:
    """A MariaDB database of the test's own, migrated by the migrations; dropped after the test."""
    from store import migrate
    from store.engine import Database

    name = f"hcp_test_{secrets.token_hex(4)}"
    try:
        await mariadb_admin(f"CREATE DATABASE `{name}` CHARACTER SET utf8mb4")
    except OSError as exc:
        unavailable("MariaDB", exc)
    request.addfinalizer(lambda: run_isolated(mariadb_admin(f"DROP DATABASE IF EXISTS `{name}`")))
    url = f"{MARIADB}/{name}"
    db = Database(url)
    try:
        await migrate.upgrade(db)
    finally:
        await db.close()
    return url


@pytest.fixture
async def redis_url(backend: tuple[str, str]) -> AsyncIterator[tuple[str | None, str]]:
    """(url or None, key prefix of this test's own); the prefix's keys are removed afterwards."""
    prefix = f"hcp-test-{secrets.token_hex(6)}:"
    if backend[1] != "redis":
        yield None, prefix
        return
    import redis.asyncio as aioredis

    client = aioredis.Redis.from_url(REDIS_URL, socket_connect_timeout=5)
    try:
        await client.ping()
    except (OSError, TimeoutError, RedisConnectionError) as exc:  # not reachable, refused
        await client.aclose()
        unavailable("Redis", exc)
    yield REDIS_URL, prefix
    keys = [k async for k in client.scan_iter(match=prefix + "*", count=1000)]
    if keys:
        await client.delete(*keys)
    await client.aclose()


@pytest.fixture
async def redis_prefix() -> AsyncIterator[str]:
    """A Redis key prefix of this test's own on the shared Redis, for processes started by the test (serve
    workers); its keys are deleted afterwards."""
    prefix = f"hcp-test-{secrets.token_hex(6)}:"
    client = aioredis.Redis.from_url(REDIS_URL, socket_connect_timeout=5)
    try:
        await client.ping()
    except (OSError, TimeoutError, RedisConnectionError) as exc:
        await client.aclose()
        unavailable("Redis", exc)
    try:
        yield prefix
    finally:
        keys = [k async for k in client.scan_iter(match=prefix + "*", count=1000)]
        if keys:
            await client.delete(*keys)
        await client.aclose()


@pytest.fixture
async def fake_twilio() -> AsyncIterator[FakeTwilio]:
    fake = await FakeTwilio("AC" + secrets.token_hex(16), secrets.token_hex(16)).start()
    yield fake
    await fake.close()


@pytest.fixture
async def fake_wechat() -> AsyncIterator[FakeWeChat]:
    fake = await FakeWeChat({WX["app_id"]: WX["app_secret"], WX["mp_app_id"]: WX["mp_app_secret"]}).start()
    yield fake
    await fake.close()


@pytest.fixture
def wechat_safe_mode() -> bool:
    """The official account in safe mode (an AES key set), as the acceptance suite runs it."""
    return True


@pytest.fixture
def policy_path(tmp_path: Path) -> str | None:
    """None: the built-in policy (the contract's values). Override in a test module to change it."""
    return None


@pytest.fixture
def settings(database_url: str, redis_url: tuple[str | None, str], fake_twilio: FakeTwilio,
             fake_wechat: FakeWeChat, wechat_safe_mode: bool, policy_path: str | None) -> Settings:
    return Settings(
        database_url=database_url, redis_url=redis_url[0], redis_prefix=redis_url[1], public_url=PUBLIC_URL,
        api_token=TOKEN, policy_path=policy_path, scheduler=False,
        twilio_account_sid=fake_twilio.account_sid, twilio_auth_token=fake_twilio.auth_token,
        twilio_sms_from="+8610690012345", twilio_api_base_url=fake_twilio.base_url,
        wechat_token=WX["token"], wechat_encoding_aes_key=WX["aes_key"] if wechat_safe_mode else None,
        wechat_app_id=WX["app_id"], wechat_app_secret=WX["app_secret"], wechat_mp_app_id=WX["mp_app_id"],
        wechat_mp_app_secret=WX["mp_app_secret"], wechat_mp_template_id=WX["template_id"],
        wechat_mp_page="pages/rate/index", wechat_api_base_url=fake_wechat.base_url,
    )


@pytest.fixture
def clock() -> Clock:
    return Clock(datetime.fromisoformat("2026-11-21T10:00:00+08:00"))


@pytest.fixture
async def rt(settings: Settings, clock: Clock) -> AsyncIterator[Runtime]:
    runtime = await open_runtime(settings)
    runtime.clock = clock
    yield runtime
    await runtime.close()


@pytest.fixture
async def hcp(rt: Runtime, aiohttp_client, fake_twilio: FakeTwilio, fake_wechat: FakeWeChat, clock: Clock) -> Hcp:
    client = await aiohttp_client(build_app(rt))
    return Hcp(rt=rt, client=client, twilio=fake_twilio, clock=clock, wechat=fake_wechat)


# The folders of tests/ mirror the code; each is a marker too (`pytest -m dialogs`, or `pytest tests/dialogs`).
LAYERS = ("dialogs", "channels", "store", "bot", "web", "browser", "system")
TESTS = Path(__file__).resolve().parent


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        parts = Path(item.path).resolve().relative_to(TESTS).parts
        if len(parts) > 1 and parts[0] in LAYERS:
            item.add_marker(parts[0])


def pytest_collection_finish(session: pytest.Session) -> None:
    """Fewer garbage collections in a process that builds an app, a runtime and fake providers for each
    of ~1,700 tests: what collection imported is frozen out of every later pass, and the youngest
    generation is collected every 20,000 allocations instead of every 700."""
    gc.collect()
    gc.freeze()
    gc.set_threshold(20_000, 50, 100)


# --- Browser tests: Playwright's async API driving the system's Chromium (tests/browser.py) ----------------
# One Chromium per test: a browser shared by the session would need a loop of the session's own, and the
# fixtures above (rt, hcp, the fakes) live in each test's loop. Playwright's driver and a Chromium start
# in about 0.5-0.6 s, a context and its page in 0.2-0.3 s.


@pytest.hookimpl(wrapper=True, tryfirst=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> Any:
    """item.rep_setup / rep_call / rep_teardown: lets a fixture's finalizer see whether the test failed."""
    report = yield
    setattr(item, "rep_" + report.when, report)
    return report


@pytest.fixture
async def live(rt: Runtime) -> AsyncIterator[str]:
    """The app on a real socket of 127.0.0.1 in the test's loop, on the test's runtime; its base URL."""
    from browser import serve

    runner, url = await serve(build_app(rt))
    yield url
    await runner.cleanup()


@pytest.fixture
async def browser(live: str) -> AsyncIterator[Any]:
    """A headless Chromium (playwright.async_api.Browser); set up after `live`, so closed before it."""
    from browser import find_chromium, launch

    try:
        from playwright.async_api import async_playwright
    except ImportError as exc:
        unavailable("Playwright (pip install -e '.[test]')", exc)
    try:
        executable = find_chromium()
    except LookupError as exc:
        unavailable("Chromium", exc)
    async with async_playwright() as pw:
        launched = await launch(pw, executable)
        yield launched
        await launched.close()


@pytest.fixture
def traffic(live: str) -> Any:
    """browser.Traffic: every request the test's pages made, their console and script errors."""
    from browser import Traffic

    return Traffic(live)


@pytest.fixture
async def new_page(browser: Any, live: str, traffic: Any, request: pytest.FixtureRequest) -> AsyncIterator[Any]:
    """`await new_page(**context_options)`: a page in a fresh context, phone size unless told otherwise
    (browser.PHONE, e.g. locale="en-US"), relative URLs on `live`, watched by `traffic`. At the end: a
    screenshot of every page if the test failed, and the check that nothing was loaded from outside."""
    from browser import keep_failure, new_context

    contexts: list[Any] = []

    async def make(**options: Any) -> Any:
        context = await new_context(browser, live, traffic, **options)
        contexts.append(context)
        return await context.new_page()

    yield make
    await keep_failure(contexts, request)
    for context in contexts:
        await context.close()
    if traffic.requests:
        assert not traffic.foreign(), f"the pages loaded from outside {live}: {traffic.foreign()}"


@pytest.fixture
async def page(new_page: Any) -> Any:
    """A Playwright Page at phone size: 375×812, device scale 2, mobile, touch, zh-CN."""
    return await new_page()


@pytest.fixture
async def desktop_page(new_page: Any) -> Any:
    """A Playwright Page at desktop size: 1280×800, zh-CN."""
    from browser import DESKTOP

    return await new_page(**DESKTOP)
