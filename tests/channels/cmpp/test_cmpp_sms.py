"""The SMS conversation over a carrier's gateway (HAOCHAPING_SMS_PROVIDER=cmpp), end to end through the real app:
the gateway simulator (tests/fakes/cmpp_gateway.py) on 127.0.0.1, the channel started as `serve` starts it, and
`haochaping tick`'s own code path (bot.cli.main.tick) on a short session beside it."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import datetime, timedelta

import pytest
from fakes.cmpp_gateway import FakeGateway
from helpers import PUBLIC_URL, TOKEN, Hcp
from servers import BACKENDS
from sqlmodel import col, select

from bot.cli import main as cli
from bot.delivery import sms_road
from bot.infra.config import Settings
from bot.policy.rules import DEFAULT_REASONS
from channels.cmpp import CmppChannel, Timing
from store.models import OutboxMessage

SP, SECRET, SRC, SERVICE = "901234", "s3cret-shared", "1065712345", "HCP"
QUICK = Timing(heartbeat=0.5, answer=0.2, misses=2, connect=2.0, backoff_min=0.05, backoff_max=0.2, ready_wait=2.0)


def cmpp_values(gw: FakeGateway, **more: str) -> dict[str, str]:
    return {"CMPP_HOST": gw.host, "CMPP_PORT": str(gw.port), "CMPP_SP_ID": SP, "CMPP_SECRET": SECRET,
            "CMPP_SRC_ID": SRC, "CMPP_SERVICE_ID": SERVICE, "CMPP_MAX_CONNECTIONS": "2", **more}


@pytest.fixture
async def gateway() -> AsyncIterator[FakeGateway]:
    gw = await FakeGateway(SP, SECRET, src_id=SRC, service_id=SERVICE, max_connections=2).start()
    yield gw
    await gw.close()


@pytest.fixture
def secret() -> str:
    return SECRET


@pytest.fixture
def settings(database_url: str, redis_url: tuple[str | None, str], gateway: FakeGateway, secret: str) -> Settings:
    """The service with a CMPP gateway as its SMS provider and nothing else (no Twilio, no WeChat)."""
    return Settings(database_url=database_url, redis_url=redis_url[0], redis_prefix=redis_url[1],
                    public_url=PUBLIC_URL, api_token=TOKEN, scheduler=False, send_timeout=2.0, sms_provider="cmpp",
                    provider_values=cmpp_values(gateway, CMPP_SECRET=secret))


@pytest.fixture
async def served(hcp: Hcp, gateway: FakeGateway, secret: str) -> Hcp:
    """The channel started as `serve` starts it (after the app is built), with short intervals."""
    channel = hcp.rt.sms_channel
    assert isinstance(channel, CmppChannel)
    channel.timing = QUICK
    await channel.start()
    if secret == SECRET:
        await gateway.wait_logged_in()
    return hcp


async def remind(hcp: Hcp, gateway: FakeGateway, **kw: object) -> tuple[str, str]:
    """A case whose reminder went through the gateway (a tick a minute after it was due); the clock just after."""
    phone = hcp.new_phone()
    doc = await hcp.post_case(phone=phone, **kw)
    due = datetime.fromisoformat(doc["remind_at"])
    counts = await hcp.tick(due + timedelta(minutes=1))
    assert counts["sent"] >= 1, counts
    hcp.clock.set(due + timedelta(minutes=5))
    assert gateway.sms_to(phone), "no reminder reached the gateway"
    return doc["case_no"], phone


async def reply(hcp: Hcp, gateway: FakeGateway, phone: str, text: str, **kw: object) -> list[str]:
    ids, results = await gateway.deliver(phone, text, **kw)  # type: ignore[arg-type]
    assert set(results) <= {0}
    await sms_road.settled()
    return ids


async def outbox(hcp: Hcp) -> list[OutboxMessage]:
    async with hcp.rt.db.read() as session:
        rows = await session.exec(select(OutboxMessage).order_by(col(OutboxMessage.created_at), col(OutboxMessage.id)))
        return list(rows.all())


async def reminder_status(hcp: Hcp, case_no: str) -> str:
    [reminder] = (await hcp.case(case_no))["reminders"]
    return reminder["status"]


@pytest.mark.parametrize("backend", BACKENDS, indirect=True)
async def test_a_rating_over_cmpp_from_reminder_to_answers(served: Hcp, gateway: FakeGateway) -> None:
    hcp = served
    case_no, phone = await remind(hcp, gateway)

    [reminder] = gateway.sms_to(phone)
    [row] = await outbox(hcp)
    assert reminder.text == row.body and len(reminder.parts) == 3  # long: three parts, put back together
    assert all(p.tp_udhi == 1 and p.registered_delivery == 1 and p.msg_fmt == 8 and len(p.content) <= 140
               for p in reminder.parts)
    assert row.provider_id == reminder.msg_ids[0]
    assert await reminder_status(hcp, case_no) == "sent"

    # A bad grade, its reasons, then a sentence: each answer is submitted through the gateway, in the dialog's order.
    await reply(hcp, gateway, phone, "4")
    await reply(hcp, gateway, "86" + phone, "1 3")  # 86… is the same person
    await reply(hcp, gateway, phone, "窗口排队太久")

    [ev] = await hcp.evaluations(case_no)
    assert (ev["grade"], ev["reasons"], ev["text"], ev["channel"]) == ("dissatisfied", ["attitude", "process"],
                                                                      "窗口排队太久", "sms")
    rows = await outbox(hcp)
    assert [r.payload["key"] for r in rows[1:]] == ["rating.ask_reasons", "rating.thanks_bad", "rating.thanks_text"]
    assert [m.text for m in gateway.sms_to(phone)] == [r.body for r in rows]
    assert all(label in rows[1].body for label in DEFAULT_REASONS.values())
    assert all(r.status == "sent" and r.provider_id for r in rows)

    # The reminder's status report (by its first part's Msg_Id) marks it delivered.
    _, results = await gateway.report(reminder.msg_ids[0], "DELIVRD")
    assert results == [0]
    assert await reminder_status(hcp, case_no) == "delivered"


async def test_a_repeated_deliver_is_acted_on_once(served: Hcp, gateway: FakeGateway) -> None:
    hcp = served
    case_no, phone = await remind(hcp, gateway)

    ids = await reply(hcp, gateway, phone, "5", twice=True)  # the gateway's repeat: not read as reason 5
    hcp.rt.sms_channel._seen.clear()  # type: ignore[attr-defined]  # a restarted serve: the app's dedupe remains
    await reply(hcp, gateway, phone, "5", msg_ids=ids)
    await reply(hcp, gateway, phone, "2")

    [ev] = await hcp.evaluations(case_no)
    assert (ev["grade"], ev["reasons"]) == ("very_dissatisfied", ["efficiency"])
    assert [r.payload["key"] for r in (await outbox(hcp))[1:]] == ["rating.ask_reasons", "rating.thanks_bad"]


async def test_a_long_reply_in_parts_is_one_message(served: Hcp, gateway: FakeGateway) -> None:
    hcp = served
    case_no, phone = await remind(hcp, gateway)
    words = "窗口工作人员让我来回跑了三趟，材料清单也没有一次说清楚，希望改进办事指南。" * 3

    await reply(hcp, gateway, phone, "4")
    await reply(hcp, gateway, phone, "4")
    await reply(hcp, gateway, phone, words, part_bytes=80, order=[2, 1, 3])  # 222 bytes in three parts, shuffled

    [ev] = await hcp.evaluations(case_no)
    assert (ev["reasons"], ev["text"]) == (["guide"], words)


async def test_a_report_of_failure_makes_the_reminder_undelivered(served: Hcp, gateway: FakeGateway) -> None:
    hcp = served
    case_no, phone = await remind(hcp, gateway)
    [reminder] = gateway.sms_to(phone)

    await gateway.report(reminder.msg_ids[0], "UNDELIV", twice=True)

    assert await reminder_status(hcp, case_no) == "undelivered"
    [row] = await outbox(hcp)
    assert row.error == "provider error UNDELIV"


async def test_the_gateway_dropping_the_connection_is_survived(served: Hcp, gateway: FakeGateway) -> None:
    hcp = served
    case_no, phone = await remind(hcp, gateway)

    await gateway.drop()
    await gateway.wait_until(lambda: len(gateway.connects) == 2 and len(gateway.open_sessions) == 1, 3.0)
    await reply(hcp, gateway, phone, "1")

    assert [e["grade"] for e in await hcp.evaluations(case_no)] == ["very_satisfied"]
    assert [r.payload["key"] for r in (await outbox(hcp))[1:]] == ["rating.thanks"]
    assert len(gateway.sms_to(phone)) == 2
    status, health = await hcp.api("GET", "/healthz")
    assert status == 200 and health["cmpp"] == "ok"


@pytest.mark.parametrize("secret", ["not-the-secret"])
async def test_a_wrong_secret_is_503_naming_cmpp_and_serve_goes_on(served: Hcp, gateway: FakeGateway) -> None:
    hcp = served
    await gateway.wait_until(lambda: len(gateway.connects) >= 2, 3.0, "login attempts")

    status, health = await hcp.api("GET", "/healthz")
    assert status == 503 and health["status"] == "down"
    assert health["cmpp"] == ("down: the gateway refused the login: Status 3 (authentication error; check CMPP_SECRET "
                              "and the clock)")
    assert health["database"] == "ok"

    phone = hcp.new_phone()
    doc = await hcp.post_case(phone=phone)  # the API still answers
    counts = await hcp.tick(datetime.fromisoformat(doc["remind_at"]) + timedelta(minutes=1))
    assert counts["sent"] == 0 and gateway.submits == []
    [row] = await outbox(hcp)
    assert row.status == "pending" and "Status 3" in (row.error or "")  # retried later, nothing lost
    assert {status for _, _, status in gateway.connects} == {3}


async def test_a_refusal_then_a_login_turns_healthz_back_to_200(served: Hcp, gateway: FakeGateway) -> None:
    hcp = served
    gateway.refuse = 5
    await gateway.drop()
    await gateway.wait_until(lambda: gateway.connects[-1][2] == 5, 3.0, "a refused login")
    status, health = await hcp.api("GET", "/healthz")
    assert (status, health["cmpp"]) == (503, "down: the gateway refused the login: Status 5 (other error)")

    gateway.refuse = None
    await gateway.wait_logged_in()
    status, health = await hcp.api("GET", "/healthz")
    assert (status, health["cmpp"]) == (200, "ok")


async def test_tick_sends_on_a_short_connection_within_the_limit(served: Hcp, gateway: FakeGateway,
                                                                 settings: Settings) -> None:
    hcp = served
    phone = hcp.new_phone()
    doc = await hcp.post_case(phone=phone)
    due = datetime.fromisoformat(doc["remind_at"])

    counts = await cli.tick(settings, due + timedelta(minutes=1))  # `haochaping tick`: a runtime of its own

    assert counts["sent"] == 1
    assert [status for _, _, status in gateway.connects] == [0, 0]  # serve's session, then the tick's
    assert gateway.max_concurrent == 2 and gateway.terminates == 1  # the tick's closed with TERMINATE
    assert len(gateway.open_sessions) == 1  # serve's
    [reminder] = gateway.sms_to(phone)
    assert gateway.find_part(reminder.msg_ids[0]).session == 2

    # Its status report comes on serve's session, and serve applies it.
    await gateway.report(reminder.msg_ids[0], "DELIVRD")
    assert await reminder_status(hcp, doc["case_no"]) == "delivered"
