"""SMS templates (issue 20): every SMS message keeps its key and values beside its text, the policy maps keys to
each template provider's templates, and a template provider refuses to start without the contract's set."""

from __future__ import annotations

import asyncio
import dataclasses
import time
from pathlib import Path

import pytest
from helpers import Hcp
from hypothesis import given
from hypothesis import strategies as st
from sqlmodel import select

from bot.infra.config import ConfigError, Settings
from bot.infra.rate import TokenBucket
from bot.infra.runtime import open_sms
from bot.policy.rules import PolicyError, load_policy, sms_templates
from channels.base import SmsProvider, shorten
from channels.local import LocalChannel
from channels.registry import SMS_PROVIDERS
from store.models import OutboxMessage


async def test_a_reminder_keeps_its_key_and_values_for_a_template_provider(hcp: Hcp) -> None:
    _, _, reminder = await hcp.reminded()

    async with hcp.rt.db.read() as session:
        [row] = (await session.exec(select(OutboxMessage).where(OutboxMessage.kind == "reminder"))).all()
    assert row.payload["key"] == "rating.reminder"
    values = row.payload["values"]
    assert set(values) == {"item", "agency", "completed_at", "token", "link"}
    assert values["item"] == "居民身份证换领" and values["completed_at"] == "2026年11月20日"
    assert reminder["body"].count(values["token"]) == 1 and values["link"].endswith("/r/" + values["token"])


def test_values_are_single_line_text_and_the_token_comes_from_the_link() -> None:
    found = sms_templates.payload("rating.ask_reasons", {"reasons": "1.服务态度差\n2.办事效率低"})
    assert found == {"key": "rating.ask_reasons", "values": {"reasons": "1.服务态度差 2.办事效率低"}}
    linked = sms_templates.payload("rating.use_link", {"link": "https://x.gov.cn/r/1.abc"})
    assert linked["values"] == {"token": "1.abc", "link": "https://x.gov.cn/r/1.abc"}


def _policy(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "policy.toml"
    path.write_text(text, encoding="utf-8")
    return path


def test_the_policy_reads_templates_and_names_what_is_wrong(tmp_path: Path) -> None:
    ok = load_policy(_policy(tmp_path, '[sms.templates."rating.reminder"]\naliyun = "SMS_1"\ntencent = "17"\n'
                                       'params = ["item", "completed_at", "token"]\n'))
    assert ok.sms_templates["rating.reminder"].codes == {"aliyun": "SMS_1", "tencent": "17"}
    assert ok.sms_templates["rating.reminder"].params == ("item", "completed_at", "token")
    with pytest.raises(PolicyError, match=r"count is not a value of rating\.reprompt"):
        load_policy(_policy(tmp_path, '[sms.templates."rating.reprompt"]\naliyun = "S"\nparams = ["count"]\n'))
    with pytest.raises(PolicyError, match="no SMS message has this key"):
        load_policy(_policy(tmp_path, '[sms.templates."rating.nope"]\naliyun = "S"\n'))


def test_a_template_provider_refuses_to_start_naming_the_keys_without_a_template(tmp_path: Path,
                                                                                 monkeypatch) -> None:
    provider = SmsProvider("templated", (), lambda config: LocalChannel(), needs_templates=True)
    monkeypatch.setitem(SMS_PROVIDERS, "templated", provider)
    policy = load_policy(_policy(tmp_path, '[sms.templates."rating.reminder"]\naliyun = "T1"\n'))  # not its own
    with pytest.raises(ConfigError, match=r"rating\.reminder, rating\.menu"):
        open_sms(dataclasses.replace(Settings(), sms_provider="templated"), policy)


async def test_the_token_bucket_spaces_sends_at_the_rate() -> None:
    bucket = TokenBucket(20)
    started = time.monotonic()
    await asyncio.gather(*(bucket.take() for _ in range(30)))
    assert 0.4 <= time.monotonic() - started < 1.5  # 20 at once, then 10 more at 20 a second
    await TokenBucket(0).take()  # no limit: never waits


@given(st.text(), st.integers(min_value=1, max_value=60))
def test_a_shortened_value_fits_and_keeps_its_beginning(value: str, limit: int) -> None:
    short = shorten(value, limit)
    assert len(short) <= limit
    if len(value) <= limit:
        assert short == value
    else:
        assert short.endswith("\u2026") and value.startswith(short[:-1]) and len(short) == limit
