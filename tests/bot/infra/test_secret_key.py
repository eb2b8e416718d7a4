"""The key that seals personal data (issue 18, finding 14): refused in production when it would live with the data,
checked against the data at every start, and rotated by `haochaping secret rotate`, which re-seals everything."""

from __future__ import annotations

import asyncio
import dataclasses
import json
from pathlib import Path

import pytest
from helpers import Hcp
from servers import BACKENDS

from bot.cli import main as cli
from bot.infra.config import ConfigError, Settings
from bot.infra.runtime import open_runtime
from store import settings as stored

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
