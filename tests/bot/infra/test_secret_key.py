"""The key that seals personal data (issue 18, finding 14): refused in production when it would live with the data,
checked against the data at every start, and rotated by `haochaping secret rotate`, which re-seals everything."""

from __future__ import annotations

import asyncio
import dataclasses
import json
from pathlib import Path

import pytest
from cryptography.exceptions import InvalidTag
from helpers import Hcp
from servers import BACKENDS
from sqlmodel import select

from bot.cli import main as cli
from bot.infra.config import ConfigError, Settings
from bot.infra.runtime import open_runtime
from store import settings as stored
from store.models import Case, Contact
from store.sealing import Sealer

NEW = "rotated-key-" + "n" * 40


def run_cli(args: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[int, dict[str, object] | str]:
    status = cli.main(args)
    out, err = capsys.readouterr()
    return status, (json.loads(out) if status == 0 else err)


@pytest.mark.parametrize("command", [["tick"], ["serve", "--port", "0"]])
def test_serve_and_tick_refuse_a_public_service_without_a_configured_key(command, tmp_path: Path, monkeypatch,
                                                                           capsys, keep_logging) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("HAOCHAPING_SECRET_KEY", raising=False)
    monkeypatch.setenv("HAOCHAPING_PUBLIC_URL", "https://hcp.example.gov.cn")

    status, err = run_cli(command, capsys)

    assert status == 2 and "HAOCHAPING_SECRET_KEY" in str(err) and "secret rotate" in str(err)
    assert not (tmp_path / "haochaping.db").exists()  # refused before anything was sealed


def test_a_local_service_may_keep_its_generated_key(tmp_path: Path, monkeypatch, capsys, keep_logging) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("HAOCHAPING_SECRET_KEY", raising=False)
    monkeypatch.delenv("HAOCHAPING_PUBLIC_URL", raising=False)

    status, counts = run_cli(["tick", "--now", "2026-11-21T10:00:00+08:00"], capsys)

    assert status == 0 and isinstance(counts, dict) and "reminders" in counts


@pytest.mark.parametrize("backend", BACKENDS, indirect=True)
async def test_a_service_started_with_another_key_than_the_data_refuses(hcp: Hcp, settings: Settings) -> None:
    await hcp.post_case(phone=hcp.new_phone())

    with pytest.raises(ConfigError, match="sealed with"):
        await open_runtime(dataclasses.replace(settings, secret_key="another-key-" + "x" * 30))


@pytest.mark.parametrize("backend", BACKENDS, indirect=True)
async def test_rotation_reseals_everything_and_the_service_works_on(hcp: Hcp, settings: Settings, monkeypatch,
                                                                   capsys, keep_logging) -> None:
    phone = hcp.new_phone()
    case_no, _, reminder = await hcp.reminded(phone=phone, applicant={"name": "张三", "locale": "zh-CN"})
    old_link = reminder["body"].split("https://hcp.example.gov.cn", 1)[1].split()[0].rstrip("。")
    old_key = settings.secret_key or await stored.get(hcp.rt.db, stored.SECRET_KEY)
    assert old_key
    await hcp.rt.close()
    monkeypatch.setenv("HAOCHAPING_DATABASE_URL", settings.database_url)
    monkeypatch.setenv("HAOCHAPING_NEW_SECRET_KEY", NEW)
    if settings.secret_key:
        monkeypatch.setenv("HAOCHAPING_SECRET_KEY", settings.secret_key)

    status, result = await asyncio.to_thread(run_cli, ["secret", "rotate"], capsys)

    assert status == 0 and isinstance(result, dict)
    assert result["contacts"] >= 1 and result["names"] >= 1
    assert result["stored_key_removed"] is (settings.secret_key is None)
    rotated = dataclasses.replace(settings, secret_key=NEW, previous_secret_key=old_key)
    with pytest.raises(ConfigError):  # the old key is no longer the data's
        await open_runtime(dataclasses.replace(settings, secret_key=old_key))
    rt = await open_runtime(rotated)
    try:
        rt.clock = hcp.clock
        from aiohttp.test_utils import TestClient, TestServer

        from bot.web.app import build_app

        async with TestClient(TestServer(build_app(rt))) as client:
            again = Hcp(rt=rt, client=client, twilio=hcp.twilio, clock=hcp.clock, wechat=hcp.wechat)
            reply = await again.sms(phone, "2")  # the same person is found under the new key
            stored_case = await again.case(case_no)
            page = await client.get(old_link)  # a link sent before the rotation still opens
        assert reply.status == 200 and "感谢" in reply.text
        assert [e["grade"] for e in stored_case["evaluations"]] == ["satisfied"]
        assert stored_case["applicant"]["name"] == "张*" and stored_case["applicant"]["phone"].endswith(phone[-4:])
        assert page.status == 200
    finally:
        await rt.close()


@pytest.mark.parametrize("command", [["tick"], ["secret", "status"]])
def test_a_short_key_is_a_configuration_error_and_nothing_is_recorded(command, tmp_path: Path, monkeypatch, capsys,
                                                                       keep_logging) -> None:
    """A key the sealer refuses was recorded as the data's key before the crash, so the right key was refused next."""
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("HAOCHAPING_SECRET_KEY", "too-short")
    monkeypatch.delenv("HAOCHAPING_PUBLIC_URL", raising=False)

    status, err = run_cli(command, capsys)

    assert status == 2 and "HAOCHAPING_SECRET_KEY" in str(err) and "16" in str(err)
    monkeypatch.setenv("HAOCHAPING_SECRET_KEY", "a-proper-key-" + "k" * 30)
    status, _ = run_cli(["tick", "--now", "2026-11-21T10:00:00+08:00"], capsys)
    assert status == 0


@pytest.mark.parametrize("backend", BACKENDS, indirect=True)
async def test_rotation_to_the_national_algorithms_reseals_everything_and_links_sent_before_still_open(
        hcp: Hcp, settings: Settings, monkeypatch, capsys, keep_logging) -> None:
    """HAOCHAPING_NEW_CRYPTO=sm: every value re-sealed with SM4-GCM and found by HMAC-SM3, none left under the old
    key or algorithms; the service then runs with HAOCHAPING_CRYPTO=sm and refuses to start with "aes"."""
    phones = [hcp.new_phone() for _ in range(3)]
    reminded = [await hcp.reminded(phone=p, applicant={"name": f"王{i}", "locale": "zh-CN"})
                for i, p in enumerate(phones)]
    old_link = reminded[0][2]["body"].split("https://hcp.example.gov.cn", 1)[1].split()[0].rstrip("。")
    old_key = settings.secret_key or await stored.get(hcp.rt.db, stored.SECRET_KEY)
    assert old_key
    await hcp.rt.close()
    monkeypatch.setenv("HAOCHAPING_DATABASE_URL", settings.database_url)
    monkeypatch.setenv("HAOCHAPING_NEW_SECRET_KEY", NEW)
    monkeypatch.setenv("HAOCHAPING_NEW_CRYPTO", "sm")
    if settings.secret_key:
        monkeypatch.setenv("HAOCHAPING_SECRET_KEY", settings.secret_key)

    status, result = await asyncio.to_thread(run_cli, ["secret", "rotate"], capsys)

    assert status == 0 and isinstance(result, dict), result
    assert result["crypto"] == "sm" and result["contacts"] >= 3 and "HAOCHAPING_CRYPTO=sm" in str(result["next"])
    with pytest.raises(ConfigError, match="HAOCHAPING_CRYPTO"):  # the right key, the wrong algorithms
        await open_runtime(dataclasses.replace(settings, secret_key=NEW))
    rt = await open_runtime(dataclasses.replace(settings, secret_key=NEW, crypto="sm", previous_secret_key=old_key,
                                                previous_crypto="aes"))
    try:
        sm, aes = Sealer(NEW, "sm"), Sealer(old_key, "aes")
        async with rt.db.read() as session:
            contacts = (await session.exec(select(Contact))).all()
            names = [c.applicant_name_sealed for c in (await session.exec(select(Case))).all()]
        assert len(contacts) >= 3
        for contact in contacts:  # nothing left under the old key: each opens with SM4 only, found by HMAC-SM3
            address = sm.open(contact.address_sealed)
            assert contact.address_hash == sm.lookup_hash(contact.channel, address)
            with pytest.raises(InvalidTag):
                aes.open(contact.address_sealed)
        assert {sm.open(n) for n in names if n} == {"王0", "王1", "王2"}
        rt.clock = hcp.clock
        from aiohttp.test_utils import TestClient, TestServer

        from bot.web.app import build_app

        async with TestClient(TestServer(build_app(rt))) as client:
            again = Hcp(rt=rt, client=client, twilio=hcp.twilio, clock=hcp.clock, wechat=hcp.wechat)
            replies = [await again.sms(p, "1") for p in phones]  # every person is found under the new hash
            cases = [await again.case(case_no) for case_no, _, _ in reminded]
            old_page = await client.get(old_link)  # signed with HMAC-SHA-256 before the rotation
            new_link = rt.links.token(cases[0]["id"])
            new_page = await client.get(f"/r/{new_link}")
        assert all(r.status == 200 and "感谢" in r.text for r in replies)
        assert all([e["grade"] for e in c["evaluations"]] == ["very_satisfied"] for c in cases)
        assert old_page.status == 200 and new_page.status == 200
        assert new_link != old_link.rsplit("/", 1)[1]  # signed with HMAC-SM3 now
    finally:
        await rt.close()


def test_unknown_algorithms_are_a_configuration_error(tmp_path: Path, monkeypatch, capsys, keep_logging) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("HAOCHAPING_CRYPTO", "des")

    status, err = run_cli(["tick"], capsys)

    assert status == 2 and "HAOCHAPING_CRYPTO" in str(err) and "sm" in str(err)
    assert not (tmp_path / "haochaping.db").exists()
