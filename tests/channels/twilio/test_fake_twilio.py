"""Self-test of tests/fakes/twilio_api.py, driven by the real ``twilio`` client.

Why the real client: the fake is only worth anything if the library the project uses in production accepts
its answers -- parses the 201 into a MessageInstance/CallInstance and maps errors to TwilioRestException.
"""

from __future__ import annotations

import asyncio
import re
import time
from collections.abc import AsyncIterator
from datetime import UTC, datetime

import aiohttp
import pytest
from fakes.twilio_api import FakeTwilio
from twilio.base.exceptions import TwilioException, TwilioRestException
from twilio.http.async_http_client import AsyncTwilioHttpClient
from twilio.rest import Client
from twilio.rest.api.v2010.account.call import CallInstance
from twilio.rest.api.v2010.account.message import MessageInstance

ACCOUNT_SID = "AC" + "1" * 32
AUTH_TOKEN = "secret-token"
FROM = "+15005550006"
CITIZEN = "+8613800138000"


def make_client(fake: FakeTwilio, token: str = AUTH_TOKEN, **http_kwargs: float) -> Client:
    """Exactly how the project wires the client: async http client, API base URL pointed at the fake."""
    client = Client(ACCOUNT_SID, token, http_client=AsyncTwilioHttpClient(**http_kwargs))
    client.api.base_url = fake.base_url
    return client


async def close_client(client: Client) -> None:
    await client.http_client.session.close()


@pytest.fixture
async def fake() -> AsyncIterator[FakeTwilio]:
    server = await FakeTwilio(ACCOUNT_SID, AUTH_TOKEN).start()
    yield server
    await server.close()


@pytest.fixture
async def client(fake: FakeTwilio) -> AsyncIterator[Client]:
    twilio_client = make_client(fake)
    yield twilio_client
    await close_client(twilio_client)


async def test_message_is_created_recorded_and_fetchable(fake: FakeTwilio, client: Client) -> None:
    body = "您对本次办事服务满意吗？回复1满意，2基本满意，3不满意。" * 3  # > 70 UCS-2 units: 2 segments
    msg = await client.messages.create_async(
        to=CITIZEN, from_=FROM, body=body, status_callback="https://hcp.example/twilio/status"
    )

    assert isinstance(msg, MessageInstance)
    assert re.fullmatch(r"SM[0-9a-f]{32}", msg.sid or "")
    assert (msg.status, msg.direction, msg.to, msg.from_) == ("queued", "outbound-api", CITIZEN, FROM)
    assert msg.num_segments == "2"
    assert msg.date_created is not None and msg.date_created.tzinfo is not None
    assert msg.account_sid == ACCOUNT_SID

    [recorded] = fake.messages
    assert recorded["sid"] == msg.sid
    assert recorded["body"] == body
    assert recorded["status_callback"] == "https://hcp.example/twilio/status"
    assert recorded["form"]["To"] == CITIZEN and recorded["form"]["From"] == FROM
    # sms_to compares on the last 11 digits, whatever the formatting.
    assert fake.sms_to("138-0013-8000") == [recorded]
    assert fake.sms_to("+8613900139000") == []

    fetched = await client.messages(msg.sid).fetch_async()
    assert (fetched.sid, fetched.body) == (msg.sid, body)

    with pytest.raises(TwilioRestException) as missing:
        await client.messages("SM" + "0" * 32).fetch_async()
    assert (missing.value.status, missing.value.code) == (404, 20404)


async def test_messages_are_listed_newest_first_by_to_and_from_across_pages(
        fake: FakeTwilio, client: Client) -> None:
    """The sender asks this list what an attempt with an unknown outcome did; the real client pages it."""
    other = "+8613900139000"
    sids = [(await client.messages.create_async(to=CITIZEN, from_=FROM, body=f"m{i}")).sid for i in range(5)]
    await client.messages.create_async(to=other, from_=FROM, body="elsewhere")
    listed = await client.messages.list_async(to=CITIZEN, from_=FROM, page_size=2)
    assert [m.sid for m in listed] == list(reversed(sids))
    assert [m.body for m in await client.messages.list_async(to=CITIZEN, limit=2)] == ["m4", "m3"]
    assert [m.body for m in await client.messages.list_async(to=other)] == ["elsewhere"]
    assert await client.messages.list_async(to=CITIZEN, from_="+10000000000") == []
    with pytest.raises(TwilioException, match="HTTP 400"):  # a filter the fake cannot honour is said, not ignored
        await client.messages.list_async(to=CITIZEN, date_sent_after=datetime(2026, 1, 1, tzinfo=UTC))


async def test_call_is_created_recorded_and_fetchable(fake: FakeTwilio, client: Client) -> None:
    call = await client.calls.create_async(
        to=CITIZEN,
        from_=FROM,
        url="https://hcp.example/twilio/voice.xml",
        status_callback="https://hcp.example/twilio/call-status",
    )

    assert isinstance(call, CallInstance)
    assert re.fullmatch(r"CA[0-9a-f]{32}", call.sid or "")
    assert (call.status, call.to, call.direction) == ("queued", CITIZEN, "outbound-api")
    [recorded] = fake.calls
    assert recorded["sid"] == call.sid
    assert recorded["url"] == "https://hcp.example/twilio/voice.xml"
    assert recorded["status_callback"] == "https://hcp.example/twilio/call-status"
    assert fake.messages == []

    fetched = await client.calls(call.sid).fetch_async()
    assert fetched.sid == call.sid


async def test_wrong_token_is_rejected_with_401(fake: FakeTwilio) -> None:
    intruder = make_client(fake, token="wrong")
    try:
        with pytest.raises(TwilioRestException) as err:
            await intruder.messages.create_async(to=CITIZEN, from_=FROM, body="hi")
    finally:
        await close_client(intruder)
    assert (err.value.status, err.value.code) == (401, 20003)
    assert fake.messages == []
    assert fake.requests[-1]["status"] == 401


async def test_twilio_validation_errors(fake: FakeTwilio, client: Client) -> None:
    with pytest.raises(TwilioRestException) as no_body:
        await client.messages.create_async(to=CITIZEN, from_=FROM)
    assert (no_body.value.status, no_body.value.code) == (400, 21602)

    with pytest.raises(TwilioRestException) as no_url:
        await client.calls.create_async(to=CITIZEN, from_=FROM)
    assert (no_url.value.status, no_url.value.code) == (400, 21205)
    assert fake.messages == [] and fake.calls == []


async def test_fail_next_then_success(fake: FakeTwilio, client: Client) -> None:
    fake.fail_next(1)
    with pytest.raises(TwilioRestException) as err:
        await client.messages.create_async(to=CITIZEN, from_=FROM, body="retry me")
    assert (err.value.status, err.value.code) == (500, 20500)
    assert fake.messages == []

    msg = await client.messages.create_async(to=CITIZEN, from_=FROM, body="retry me")
    assert [m["sid"] for m in fake.messages] == [msg.sid]
    assert [r["status"] for r in fake.requests] == [500, 201]


async def test_refused_recipient_gets_21610_others_are_served(fake: FakeTwilio, client: Client) -> None:
    fake.refuse("13800138000")
    fake.refuse("+8613900000000", code=21211, message="The 'To' number is not a valid phone number.")

    with pytest.raises(TwilioRestException) as stopped:
        await client.messages.create_async(to=CITIZEN, from_=FROM, body="rate us")
    assert (stopped.value.status, stopped.value.code) == (400, 21610)

    with pytest.raises(TwilioRestException) as invalid:
        await client.messages.create_async(to="+8613900000000", from_=FROM, body="rate us")
    assert invalid.value.code == 21211

    ok = await client.messages.create_async(to="+8613700137000", from_=FROM, body="rate us")
    assert [m["sid"] for m in fake.messages] == [ok.sid]
    assert fake.sms_to(CITIZEN) == []


async def test_hang_times_out_the_caller_while_others_are_served(fake: FakeTwilio, client: Client) -> None:
    fake.hang_next(1, seconds=30)
    hung = asyncio.create_task(
        asyncio.wait_for(client.messages.create_async(to=CITIZEN, from_=FROM, body="slow"), timeout=0.5)
    )
    for _ in range(200):  # wait until the fake is really holding that request, not some later one
        if fake.hanging:
            break
        await asyncio.sleep(0.005)
    assert fake.hanging == 1

    started = time.monotonic()
    other = await client.messages.create_async(to="+8613700137000", from_=FROM, body="fast")
    assert time.monotonic() - started < 0.4
    assert not hung.done()
    assert [m["sid"] for m in fake.messages] == [other.sid]

    with pytest.raises(TimeoutError):  # asyncio.TimeoutError is the builtin TimeoutError on 3.11
        await hung
    assert fake.sms_to(CITIZEN) == []

    started = time.monotonic()
    await fake.close()  # releases the 30-second hang instead of waiting for it
    assert time.monotonic() - started < 1.5


async def test_stock_client_timeout_argument_is_not_applied(fake: FakeTwilio) -> None:
    """Pins a trap in twilio 9.x: AsyncTwilioHttpClient(timeout=...) stores the value but request() passes
    the per-call timeout (None) to aiohttp, i.e. no timeout at all.  Callers need asyncio.wait_for (or a
    subclass that forwards self.timeout).  If a twilio upgrade fixes this, this test fails -- rethink then."""
    slow_client = make_client(fake, timeout=0.2)
    fake.hang_next(1, seconds=0.6)
    started = time.monotonic()
    try:
        msg = await slow_client.messages.create_async(to=CITIZEN, from_=FROM, body="late but accepted")
    finally:
        await close_client(slow_client)
    assert time.monotonic() - started >= 0.6
    # After the hang the request is processed normally, as a slow Twilio would.
    assert [m["sid"] for m in fake.sms_to(CITIZEN)] == [msg.sid]


async def test_unknown_route_is_404_in_twilio_shape(fake: FakeTwilio) -> None:
    async with (
        aiohttp.ClientSession() as session,
        session.get(fake.base_url + "/2010-04-01/Accounts.json") as resp,
    ):
        payload = await resp.json()
    assert resp.status == 404
    assert payload["code"] == 20404 and payload["status"] == 404
    assert payload["more_info"] == "https://www.twilio.com/docs/errors/20404"
