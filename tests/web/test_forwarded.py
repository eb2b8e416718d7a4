"""The client's address behind a reverse proxy (issue 26, deploy/nginx.conf): X-Forwarded-For is believed only
from HAOCHAPING_TRUSTED_PROXIES, and then its right-most address that is not a trusted proxy. What sees the
address: the /metrics allow-list, the rating page's client hash (supervision), the log-in throttle and the audit
table. The test client connects from 127.0.0.1, the proxy here."""

from __future__ import annotations

import dataclasses

import pytest
from helpers import Hcp
from sqlmodel import select

from bot.infra.config import ConfigError, Settings, load_settings
from store.models import Evaluation

CLIENT = "203.0.113.7"


async def metrics(hcp: Hcp, forwarded: str | None) -> int:
    headers = {"X-Forwarded-For": forwarded} if forwarded is not None else {}
    return (await hcp.client.get("/metrics", headers=headers)).status


async def test_without_trusted_proxies_the_header_is_ignored(hcp: Hcp) -> None:
    assert hcp.rt.settings.trusted_proxies == ()
    assert await metrics(hcp, CLIENT) == 200  # still 127.0.0.1: a client cannot choose its address


@pytest.mark.parametrize(("forwarded", "status"), [
    (CLIENT, 403),  # the client behind the proxy is not this machine: /metrics is refused
    (f"127.0.0.1, {CLIENT}", 403),  # what the client wrote on the left is not believed
    (f"{CLIENT}, 127.0.0.1", 403),  # a second trusted hop on the right is skipped
    ("127.0.0.1", 200),  # only trusted hops: the proxy itself
    ("not-an-address", 200),  # garbage: nothing of it is believed
    (f"{CLIENT}, garbage", 200),
    (None, 200),
])
async def test_a_trusted_proxys_header_names_the_client(hcp: Hcp, settings: Settings, forwarded: str | None,
                                                        status: int) -> None:
    hcp.rt.settings = dataclasses.replace(settings, trusted_proxies=("127.0.0.0/8",))
    assert await metrics(hcp, forwarded) == status


async def test_the_rating_pages_client_hash_is_the_forwarded_clients(hcp: Hcp, settings: Settings) -> None:
    hcp.rt.settings = dataclasses.replace(settings, trusted_proxies=("127.0.0.1",))
    doc = await hcp.post_case(phone=hcp.new_phone())
    path = "/r/" + hcp.rt.links.token(doc["id"])
    resp = await hcp.client.post(path, data={"grade": "satisfied"}, headers={"X-Forwarded-For": CLIENT},
                                 allow_redirects=False)
    assert resp.status == 303
    async with hcp.rt.db.read() as session:
        ev = (await session.exec(select(Evaluation))).one()
    assert ev.client_hash == hcp.rt.sealer.lookup_hash("client", CLIENT)


def test_the_setting_is_read_and_checked(tmp_path) -> None:
    s = load_settings({"HAOCHAPING_TRUSTED_PROXIES": "10.0.0.5, 10.1.0.0/16"}, tmp_path)
    assert s.trusted_proxies == ("10.0.0.5", "10.1.0.0/16")
    with pytest.raises(ConfigError, match="HAOCHAPING_TRUSTED_PROXIES"):
        load_settings({"HAOCHAPING_TRUSTED_PROXIES": "*"}, tmp_path)
    with pytest.raises(ConfigError, match="HAOCHAPING_TRUSTED_PROXIES"):
        load_settings({"HAOCHAPING_TRUSTED_PROXIES": "proxy.local"}, tmp_path)
