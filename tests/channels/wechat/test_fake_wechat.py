"""Self-test of tests/fakes/wechat_api.py, driven by the real (synchronous) ``wechatpy`` client.

Why the real client: the fake is only worth anything if the library the project uses in production builds
the URLs the fake serves and maps the fake's answers to the same results and ``WeChatClientException``s.
The client is ``requests``-based, so every call runs in a worker thread (``asyncio.to_thread``) while the
fake keeps serving on the event loop.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

import aiohttp
import pytest
from fakes.wechat_api import FakeWeChat
from wechatpy import WeChatClient
from wechatpy.client.api import WeChatWxa
from wechatpy.exceptions import WeChatClientException

APPID = "wx0123456789abcdef"
SECRET = "0123456789abcdef0123456789abcdef"
OPENID = "o6_bmjrPTlm6_2sgVt7hMZOPfL2M"
TEMPLATE = "tpl-rating-result"


def make_client(fake: FakeWeChat, appid: str = APPID, secret: str = SECRET, **kwargs: Any) -> WeChatClient:
    """WeChatClient aimed at the fake: cgi-bin base, wxa base (its own hard-coded host!) and the token URL."""
    base = fake.base_url

    class FakeWxa(WeChatWxa):
        API_BASE_URL = base + "/"

    class FakeClient(WeChatClient):
        API_BASE_URL = base + "/cgi-bin/"
        wxa = FakeWxa()

        def fetch_access_token(self) -> dict[str, Any]:
            return self._fetch_access_token(
                url=base + "/cgi-bin/token",
                params={"grant_type": "client_credential", "appid": self.appid, "secret": self.secret},
            )

    client = FakeClient(appid, secret, **kwargs)
    client._http.trust_env = False  # never route 127.0.0.1 through an HTTP(S)_PROXY from the environment
    return client


def subscribe_data(**overrides: str) -> dict[str, dict[str, str]]:
    values = {"thing1": "不动产登记", "phrase2": "已办结", "time3": "2026年11月20日 10:00", **overrides}
    return {key: {"value": value} for key, value in values.items()}


@pytest.fixture
async def fake() -> AsyncIterator[FakeWeChat]:
    server = await FakeWeChat({APPID: SECRET}).start()
    yield server
    await server.close()


async def test_token_is_fetched_and_custom_text_recorded(fake: FakeWeChat) -> None:
    client = make_client(fake)
    result = await asyncio.to_thread(client.message.send_text, OPENID, "hi")

    assert result == {"errcode": 0, "errmsg": "ok"}
    assert [(t["appid"], t["endpoint"]) for t in fake.tokens_issued] == [(APPID, "token")]
    [sent] = fake.sent_of("custom", OPENID)
    assert sent["appid"] == APPID
    assert sent["body"] == {"touser": OPENID, "msgtype": "text", "text": {"content": "hi"}}
    token_request, send_request = fake.requests
    assert (token_request["method"], token_request["path"]) == ("GET", "/cgi-bin/token")
    assert token_request["query"] == {"grant_type": "client_credential", "appid": APPID, "secret": SECRET}
    assert (send_request["method"], send_request["path"]) == ("POST", "/cgi-bin/message/custom/send")
    assert send_request["query"] == {"access_token": fake.tokens_issued[0]["token"]}
    assert fake.sent_of("custom", "someone-else") == []


async def test_subscribe_is_recorded_and_refusal_raises_43101(fake: FakeWeChat) -> None:
    client = make_client(fake)
    result = await asyncio.to_thread(
        client.wxa.send_subscribe_message, OPENID, TEMPLATE, subscribe_data(), page="pages/rate/index?id=7"
    )

    assert result["errcode"] == 0 and isinstance(result["msgid"], int)
    [sent] = fake.sent_of("subscribe", OPENID)
    assert sent["path"] == "/cgi-bin/message/subscribe/send"
    assert sent["body"]["template_id"] == TEMPLATE and sent["body"]["page"] == "pages/rate/index?id=7"
    assert sent["body"]["data"]["thing1"] == {"value": "不动产登记"}

    refusing = "o6_bmjrPTlm6_2sgVt7hMZOPfL2N"
    fake.refuse_subscribe(refusing)
    with pytest.raises(WeChatClientException) as caught:
        await asyncio.to_thread(client.wxa.send_subscribe_message, refusing, TEMPLATE, subscribe_data())
    assert caught.value.errcode == 43101
    assert fake.sent_of("subscribe", refusing) == []


@pytest.mark.parametrize(
    ("field", "value", "errcode"),
    [
        ("thing1", "办" * 20, 0),
        ("thing1", "办" * 21, 47003),
        ("time3", "2026-11-20 10:00", 0),
        ("time3", "2026年11月20日", 0),
        ("time3", "明天上午", 47003),
    ],
)
async def test_subscribe_field_rules(fake: FakeWeChat, field: str, value: str, errcode: int) -> None:
    client = make_client(fake)
    data = subscribe_data(**{field: value})
    if errcode == 0:
        await asyncio.to_thread(client.wxa.send_subscribe_message, OPENID, TEMPLATE, data)
        assert len(fake.sent_of("subscribe")) == 1
        return
    with pytest.raises(WeChatClientException) as caught:
        await asyncio.to_thread(client.wxa.send_subscribe_message, OPENID, TEMPLATE, data)
    assert caught.value.errcode == errcode
    assert caught.value.errmsg.startswith(f"argument invalid! data.{field}.value")
    assert fake.sent_of("subscribe") == []


async def test_expired_token_answers_40001(fake: FakeWeChat) -> None:
    raw = make_client(fake, auto_retry=False)
    await asyncio.to_thread(raw.message.send_text, OPENID, "first")
    fake.expire_tokens()

    with pytest.raises(WeChatClientException) as caught:
        await asyncio.to_thread(raw.message.send_text, OPENID, "second")
    assert caught.value.errcode == 40001
    assert [s["body"]["text"]["content"] for s in fake.sent_of("custom")] == ["first"]

    # With auto_retry=True (wechatpy's default) a 40001/40014/42001 answer makes the client fetch a new token
    # and repeat the call itself (recursively, without a limit), so the caller only sees the success.
    retrying = make_client(fake)
    await asyncio.to_thread(retrying.message.send_text, OPENID, "third")
    fake.expire_tokens()
    await asyncio.to_thread(retrying.message.send_text, OPENID, "fourth")
    assert [s["body"]["text"]["content"] for s in fake.sent_of("custom")] == ["first", "third", "fourth"]
    assert len(fake.tokens_issued) == 3


async def test_new_token_invalidates_the_previous_one(fake: FakeWeChat) -> None:
    first, second = make_client(fake, auto_retry=False), make_client(fake, auto_retry=False)
    await asyncio.to_thread(first.fetch_access_token)
    await asyncio.to_thread(second.fetch_access_token)  # another process of the same app fetching its own

    with pytest.raises(WeChatClientException) as caught:
        await asyncio.to_thread(first.message.send_text, OPENID, "stale")
    assert caught.value.errcode == 40001
    await asyncio.to_thread(second.message.send_text, OPENID, "fresh")
    assert [s["body"]["text"]["content"] for s in fake.sent_of("custom")] == ["fresh"]


async def test_wrong_credentials(fake: FakeWeChat) -> None:
    for appid, secret, errcode in [(APPID, "wrong", 40125), ("wx-unknown", SECRET, 40013)]:
        client = make_client(fake, appid=appid, secret=secret)
        with pytest.raises(WeChatClientException) as caught:
            await asyncio.to_thread(client.message.send_text, OPENID, "hi")
        assert caught.value.errcode == errcode
    assert fake.tokens_issued == [] and fake.sent == []


async def test_stable_token(fake: FakeWeChat) -> None:
    async with aiohttp.ClientSession() as http:

        async def stable(force_refresh: bool) -> dict[str, Any]:
            body = {"grant_type": "client_credential", "appid": APPID, "secret": SECRET, "force_refresh": force_refresh}
            async with http.post(fake.base_url + "/cgi-bin/stable_token", json=body) as response:
                return await response.json()

        first = await stable(False)
        assert (await stable(False))["access_token"] == first["access_token"]
        refreshed = await stable(True)
        assert refreshed["access_token"] != first["access_token"] and refreshed["expires_in"] == 7200
    assert [t["endpoint"] for t in fake.tokens_issued] == ["stable_token", "stable_token"]

    client = make_client(fake, access_token=first["access_token"], auto_retry=False)
    with pytest.raises(WeChatClientException) as caught:
        await asyncio.to_thread(client.message.send_text, OPENID, "old stable token")
    assert caught.value.errcode == 40001
    client = make_client(fake, access_token=refreshed["access_token"], auto_retry=False)
    await asyncio.to_thread(client.message.send_text, OPENID, "new stable token")
    assert fake.sent_of("custom")[0]["body"]["text"]["content"] == "new stable token"


async def test_code_to_session_works_once(fake: FakeWeChat) -> None:
    fake.add_login("081code", OPENID)
    client = make_client(fake)

    session = await asyncio.to_thread(client.wxa.code_to_session, "081code")
    assert session["openid"] == OPENID and len(session["session_key"]) == 24
    login = next(r for r in fake.requests if r["path"] == "/sns/jscode2session")
    assert login["method"] == "GET"
    assert {k: login["query"][k] for k in ("appid", "secret", "js_code", "grant_type")} == {
        "appid": APPID, "secret": SECRET, "js_code": "081code", "grant_type": "authorization_code"
    }

    # A second use: real WeChat answers 40163 "code been used"; a code it never issued, 40029 "invalid code".
    for code, errcode in [("081code", 40163), ("never-issued", 40029)]:
        with pytest.raises(WeChatClientException) as caught:
            await asyncio.to_thread(client.wxa.code_to_session, code)
        assert caught.value.errcode == errcode


async def test_injected_failures(fake: FakeWeChat) -> None:
    client = make_client(fake)
    fake.fail_next(1)
    fake.http_error_next(1)

    with pytest.raises(WeChatClientException) as caught:
        await asyncio.to_thread(client.message.send_text, OPENID, "a")
    assert caught.value.errcode is None and caught.value.response.status_code == 502
    with pytest.raises(WeChatClientException) as caught:
        await asyncio.to_thread(client.message.send_text, OPENID, "b")
    assert (caught.value.errcode, caught.value.errmsg) == (-1, "system error")
    await asyncio.to_thread(client.message.send_text, OPENID, "c")
    assert [s["body"]["text"]["content"] for s in fake.sent] == ["c"]
    assert len(fake.tokens_issued) == 1  # the token fetch was not hit by the injected faults


async def test_unknown_path_is_a_loud_404(fake: FakeWeChat) -> None:
    client = make_client(fake)
    with pytest.raises(WeChatClientException) as caught:
        await asyncio.to_thread(client.menu.get)
    assert caught.value.response.status_code == 404
    assert fake.requests[-1]["path"] == "/cgi-bin/menu/get"
