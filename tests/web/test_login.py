"""Logging in for the work-order routes: tokens, and the limit on failed attempts."""

from __future__ import annotations

import pytest
from servers import BACKENDS

from bot.work_orders import users
from bot.work_orders.users import FREE_FAILURES

PASSWORD = "correct horse battery"


async def make_user(hcp, name: str, role: str = "l1", agencies: tuple[str, ...] = ("AG1",)) -> None:
    async with hcp.rt.db.write() as session:
        await users.create(session, name, role, list(agencies), PASSWORD, hcp.clock())


async def login(hcp, name: str, password: str = PASSWORD) -> tuple[int, dict]:
    resp = await hcp.client.post("/api/v1/login", json={"username": name, "password": password})
    return resp.status, await resp.json()


@pytest.mark.parametrize("backend", BACKENDS, indirect=True)
async def test_failed_logins_make_the_name_wait_from_this_address_but_not_another_name(hcp):
    await make_user(hcp, "alice")
    await make_user(hcp, "bob")
    for _ in range(FREE_FAILURES):
        status, _ = await login(hcp, "alice", "wrong password!")
        assert status == 401
    status, doc = await login(hcp, "alice")  # even the right password waits now, for a while
    assert status == 429 and "too many" in doc["error"]
    status, doc = await login(hcp, "bob")
    assert status == 200 and doc["user"]["role"] == "l1"
    hcp.clock.advance(seconds=users.backoff(FREE_FAILURES))
    status, doc = await login(hcp, "alice")
    assert status == 200 and doc["token"]


async def test_a_token_works_until_it_expires_and_a_forged_one_never(hcp):
    await make_user(hcp, "carol", agencies=("*",))
    status, doc = await login(hcp, "carol")
    assert status == 200
    token = doc["token"]
    assert (await hcp.api("GET", "/api/v1/work-orders", token=token))[0] == 200
    prefix, uid, exp, mac = token.split(".")
    forged = f"{prefix}.{uid}.{int(exp) + 3600}.{mac}"
    assert (await hcp.api("GET", "/api/v1/work-orders", token=forged))[0] == 401
    hcp.clock.advance(hours=12, seconds=1)
    assert (await hcp.api("GET", "/api/v1/work-orders", token=token))[0] == 401


async def test_a_user_token_does_not_post_cases(hcp):
    await make_user(hcp, "dave")
    _, doc = await login(hcp, "dave")
    status, _ = await hcp.api("POST", "/api/v1/cases", hcp.case_body(), token=doc["token"])
    assert status == 401


def test_passwords_are_scrypt_hashes_that_verify_only_the_password():
    stored = users.hash_password("a long password", n=2**10)
    assert stored.startswith("scrypt$1024$")
    assert users.verify_password("a long password", stored)
    assert not users.verify_password("a long passwore", stored)
    assert not users.verify_password("a long password", "md5$abc")
    assert users.hash_password("a long password", n=2**10) != stored  # salted



async def test_non_ascii_digits_and_signatures_are_401_or_404_never_500(hcp):
    for token in ("hcpu.².1900000000.abc", "hcpu.1.²²²²²²²²²².abc", "hcpu.1.1900000000.é"):
        status, _doc = await hcp.api("GET", "/api/v1/work-orders", token=token)
        assert status == 401, token
    for path in ("/api/v1/work-orders/²", "/api/v1/work-orders?after=²"):
        status, _doc = await hcp.api("GET", path)
        assert status in (404, 422), path
