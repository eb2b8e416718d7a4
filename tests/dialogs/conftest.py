"""The dialogs are pure (ARCHITECTURE: no I/O, no clock, no globals): their tests take no database, no Redis,
no runtime and no app. A test here asking for one of those fixtures fails at once, so the layer keeps running
in seconds without any server."""

from __future__ import annotations

import pytest

SERVER_FIXTURES = {"rt", "hcp", "settings", "database_url", "redis_url", "redis_prefix", "pg_database", "live",
                   "browser", "fake_twilio", "fake_wechat"}


@pytest.fixture(autouse=True)
def _pure(request: pytest.FixtureRequest) -> None:
    wanted = SERVER_FIXTURES & set(request.fixturenames)
    if wanted:
        pytest.fail(f"a dialog test needs no server: it asks for {sorted(wanted)}", pytrace=False)
