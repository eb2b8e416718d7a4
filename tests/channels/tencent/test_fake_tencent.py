"""Self-test of tests/fakes/tencent_sms.py, driven by the official SDK's asyncio client (tencentcloud-sdk-python-sms).

Why the real SDK: the double is worth something only if the library the project uses in production signs requests
the double accepts, refuses what the double refuses (AuthFailure on a wrong key), and parses its answers into its
models and exceptions as it parses Tencent's.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
from aiohttp import web
from aiohttp.test_utils import TestServer
from fakes.tencent_sms import FakeTencentSms
from tencentcloud.common.credential import Credential
from tencentcloud.common.exception.tencent_cloud_sdk_exception import TencentCloudSDKException
from tencentcloud.common.profile.client_profile import ClientProfile
from tencentcloud.common.profile.http_profile import HttpProfile
from tencentcloud.sms.v20210111 import models
from tencentcloud.sms.v20210111.sms_client_async import SmsClient

SECRET_ID, SECRET_KEY = "AKID" + "x" * 32, "k" * 32
APP, SIGN = "1400006666", "汕头市政务服务"
PHONE = "+8613800138000"


def client(fake: FakeTencentSms, secret_key: str = SECRET_KEY, secret_id: str = SECRET_ID,
           timeout: float = 5, region: str = "ap-guangzhou") -> SmsClient:
    """As channels/tencent wires it: the endpoint a URL's host, plain HTTP."""
    host = fake.endpoint.split("://", 1)[1]
    profile = ClientProfile(httpProfile=HttpProfile(protocol="http", endpoint=host, reqTimeout=timeout))
    return SmsClient(Credential(secret_id, secret_key), region, profile)


def send_request(phones: list[str] | None = None, template: str = "1700001", values: list[str] | None = None,
                 context: str = "42", sign: str = SIGN) -> models.SendSmsRequest:
    request = models.SendSmsRequest()
    request.PhoneNumberSet = phones or [PHONE]
    request.SmsSdkAppId = APP
    request.SignName = sign
    request.TemplateId = template
    request.TemplateParamSet = ["居民身份证换领", "2026年11月20日", "1.abc"] if values is None else values
    request.SessionContext = context
    return request


def pull_request(phone: str = PHONE, begin: int | None = None) -> models.PullSmsSendStatusByPhoneNumberRequest:
    request = models.PullSmsSendStatusByPhoneNumberRequest()
    request.BeginTime = int(time.time()) - 60 if begin is None else begin
    request.EndTime = max(request.BeginTime, int(time.time())) + 1
    request.Offset, request.Limit = 0, 100
    request.PhoneNumber, request.SmsSdkAppId = phone, APP
    return request


@pytest.fixture
async def fake() -> AsyncIterator[FakeTencentSms]:
    server = await FakeTencentSms(SECRET_ID, SECRET_KEY, APP, SIGN, templates={"1700001": 3, "1700002": 0}).start()
    yield server
    await server.close()


@pytest.fixture
async def sdk(fake: FakeTencentSms) -> AsyncIterator[SmsClient]:
    sms = client(fake)
    yield sms
    await sms.close()


async def test_a_send_is_accepted_recorded_and_answered_per_number(fake: FakeTencentSms, sdk: SmsClient) -> None:
    answer = await sdk.SendSms(send_request())

    [status] = answer.SendStatusSet
    assert (status.Code, status.PhoneNumber, status.SessionContext, status.Fee) == ("Ok", PHONE, "42", 1)
    assert status.SerialNo and answer.RequestId
    [send] = fake.sends
    assert send["serial"] == status.SerialNo
    assert (send["template_id"], send["params"], send["sign"], send["sdk_app_id"], send["region"]) == (
        "1700001", ["居民身份证换领", "2026年11月20日", "1.abc"], SIGN, APP, "ap-guangzhou")
    [request] = fake.requests
    assert (request["action"], request["status"], request["error"]) == ("SendSms", 200, None)
    assert fake.sends_to("13800138000") == [send]


@pytest.mark.parametrize(("kwargs", "code"), [
    ({"secret_key": "wrong" + "k" * 27}, "AuthFailure.SignatureFailure"),
    ({"secret_id": "AKID" + "y" * 32}, "AuthFailure.SecretIdNotFound"),
])
async def test_a_request_not_signed_with_the_key_is_refused_as_tencent_does(fake: FakeTencentSms, kwargs: dict,
                                                                           code: str) -> None:
    intruder = client(fake, **kwargs)
    try:
        with pytest.raises(TencentCloudSDKException) as refused:
            await intruder.SendSms(send_request())
    finally:
        await intruder.close()
    assert refused.value.code == code and refused.value.requestId
    assert fake.sends == [] and fake.requests[-1]["error"] == code


async def test_a_body_changed_after_signing_is_refused(fake: FakeTencentSms, sdk: SmsClient) -> None:
    """The signature covers the body: the same headers over another body fail."""
    seen: dict[str, Any] = {}

    async def tamper(chain: Any) -> Any:
        seen["request"] = chain.request
        chain.request.stream = httpx.ByteStream(chain.request.content.replace(b"1700001", b"1700002"))
        return await sdk.http_client.send(chain.request, stream=True)

    sdk._inter_send_request = tamper  # type: ignore[method-assign]
    with pytest.raises(TencentCloudSDKException) as refused:
        await sdk.SendSms(send_request())
    assert refused.value.code == "AuthFailure.SignatureFailure" and fake.sends == []


@pytest.mark.parametrize(("request_kwargs", "code"), [
    ({"sign": "别的签名"}, "FailedOperation.SignatureIncorrectOrUnapproved"),
    ({"template": "999"}, "FailedOperation.TemplateIncorrectOrUnapproved"),
    ({"values": ["只有一个"]}, "FailedOperation.TemplateParamSetNotMatchApprovedTemplate"),
    ({"values": ["a", "https://x.gov.cn/r/1", "c"]}, "InvalidParameterValue.ProhibitedUseUrlInTemplateParameter"),
])
async def test_sendsms_refusals_are_tencent_errors(fake: FakeTencentSms, sdk: SmsClient, request_kwargs: dict,
                                                   code: str) -> None:
    with pytest.raises(TencentCloudSDKException) as refused:
        await sdk.SendSms(send_request(**request_kwargs))
    assert refused.value.code == code and fake.sends == []


async def test_a_refused_number_is_a_code_inside_a_200_answer(fake: FakeTencentSms, sdk: SmsClient) -> None:
    fake.refuse_number("13800138000", "LimitExceeded.PhoneNumberDailyLimit", times=1)
    other = "+8613900139000"

    answer = await sdk.SendSms(send_request([PHONE, other]))
    again = await sdk.SendSms(send_request())

    codes = {s.PhoneNumber: (s.Code, bool(s.SerialNo)) for s in answer.SendStatusSet}
    assert codes == {PHONE: ("LimitExceeded.PhoneNumberDailyLimit", False), other: ("Ok", True)}
    assert again.SendStatusSet[0].Code == "Ok"  # times=1: the cap has lifted
    assert [s["phone"] for s in fake.sends] == [other, PHONE]


async def test_a_5xx_then_an_api_error_then_success(fake: FakeTencentSms, sdk: SmsClient) -> None:
    fake.fail_next(1, 502)
    fake.error_next("InternalError.Timeout", "请求下发短信超时")
    with pytest.raises(TencentCloudSDKException) as gateway:
        await sdk.SendSms(send_request())
    with pytest.raises(TencentCloudSDKException) as internal:
        await sdk.SendSms(send_request())
    await sdk.SendSms(send_request())
    assert gateway.value.code == "ServerNetworkError" and internal.value.code == "InternalError.Timeout"
    assert [r["status"] for r in fake.requests] == [502, 200, 200] and len(fake.sends) == 1


async def test_a_hang_times_the_caller_out_while_others_are_served(fake: FakeTencentSms, sdk: SmsClient) -> None:
    fake.hang_next(1, seconds=30)
    hung = asyncio.create_task(asyncio.wait_for(sdk.SendSms(send_request()), timeout=0.5))
    for _ in range(200):
        if fake.hanging:
            break
        await asyncio.sleep(0.005)
    assert fake.hanging == 1
    other = client(fake)
    try:
        await other.SendSms(send_request(["+8613700137000"]))
    finally:
        await other.close()
    with pytest.raises(TimeoutError):
        await hung
    assert [s["phone"] for s in fake.sends] == ["+8613700137000"]
    started = time.monotonic()
    await fake.close()  # releases the hang at once
    assert time.monotonic() - started < 1.5


async def test_a_lost_answer_leaves_the_send_recorded(fake: FakeTencentSms) -> None:
    fake.lose_answer_next(1, seconds=30)
    fake.lose_answer_next(1, drop=True)
    sdk = client(fake, timeout=0.3)
    try:
        with pytest.raises(httpx.ReadTimeout):
            await sdk.SendSms(send_request(context="1"))
        with pytest.raises(httpx.RemoteProtocolError):
            await sdk.SendSms(send_request(context="2"))
    finally:
        await sdk.close()
    assert [s["session_context"] for s in fake.sends] == ["1", "2"]


async def test_the_pull_by_number_returns_reported_sends_with_their_session_context(fake: FakeTencentSms,
                                                                                    sdk: SmsClient) -> None:
    first = (await sdk.SendSms(send_request(context="7"))).SendStatusSet[0].SerialNo
    await sdk.SendSms(send_request(context="8"))  # not reported yet: not pulled

    assert (await sdk.PullSmsSendStatusByPhoneNumber(pull_request())).PullSmsSendStatusSet == []
    fake.report(first, "FAIL", "MK:0001")
    [status] = (await sdk.PullSmsSendStatusByPhoneNumber(pull_request())).PullSmsSendStatusSet
    assert (status.SerialNo, status.SessionContext, status.ReportStatus, status.PhoneNumber) == (
        first, "7", "FAIL", PHONE)
    assert (await sdk.PullSmsSendStatusByPhoneNumber(pull_request("+8613900139000"))).PullSmsSendStatusSet == []
    assert (await sdk.PullSmsSendStatusByPhoneNumber(pull_request(begin=int(time.time()) + 30))
            ).PullSmsSendStatusSet == []
    with pytest.raises(TencentCloudSDKException) as too_far:
        await sdk.PullSmsSendStatusByPhoneNumber(pull_request(begin=int(time.time()) - 8 * 24 * 3600))
    assert too_far.value.code == "InvalidParameterValue.BeginTimeVerifyFail"


async def test_the_status_pull_is_a_queue(fake: FakeTencentSms, sdk: SmsClient) -> None:
    fake.auto_report = "SUCCESS"
    await sdk.SendSms(send_request())
    await sdk.SendSms(send_request())
    request = models.PullSmsSendStatusRequest()
    request.Limit, request.SmsSdkAppId = 1, APP

    first = (await sdk.PullSmsSendStatus(request)).PullSmsSendStatusSet
    request.Limit = 100
    rest = (await sdk.PullSmsSendStatus(request)).PullSmsSendStatusSet
    assert [s.SerialNo for s in first + rest] == [s["serial"] for s in fake.sends]
    assert (await sdk.PullSmsSendStatus(request)).PullSmsSendStatusSet == []


async def test_an_unknown_version_or_region_is_refused(fake: FakeTencentSms) -> None:
    elsewhere = client(fake, region="eu-frankfurt")
    try:
        with pytest.raises(TencentCloudSDKException) as region:
            await elsewhere.SendSms(send_request())
    finally:
        await elsewhere.close()
    assert region.value.code == "UnsupportedOperation.UnsupportedRegion"


class Receiver:
    """The service's two webhooks, as far as the pushes need: they record what arrives."""

    def __init__(self) -> None:
        self.bodies: list[tuple[str, Any]] = []
        self.app = web.Application()
        self.app.router.add_post("/webhooks/tencent/sms/{token}/{kind}", self.handle)

    async def handle(self, request: web.Request) -> web.Response:
        self.bodies.append((request.match_info["kind"], await request.json()))
        return web.json_response({"result": 0, "errmsg": "OK"})


async def test_pushes_reach_the_webhooks_in_tencents_shape(fake: FakeTencentSms, sdk: SmsClient) -> None:
    receiver = Receiver()
    async with TestServer(receiver.app) as server:
        base = str(server.make_url(""))
        answers = await fake.push_reply(base, "t" * 16, "13800138000", "1", at=1_790_000_000, times=3, together=True)
        serial = (await sdk.SendSms(send_request())).SendStatusSet[0].SerialNo
        status, answer = await fake.push_status(base, "t" * 16, [fake.report(serial)])

        fake.report_on_send(base, "t" * 16, "FAIL", "MK:0001")
        early = (await sdk.SendSms(send_request())).SendStatusSet[0].SerialNo

    assert answers == [(200, {"result": 0, "errmsg": "OK"})] * 3 and (status, answer) == (200, answers[0][1])
    reply = {"extend": "", "mobile": "13800138000", "nationcode": "86", "sign": SIGN, "text": "1",
             "time": 1_790_000_000}
    assert receiver.bodies[:3] == [("reply", reply)] * 3
    [(kind, [item])] = [receiver.bodies[3]]
    assert kind == "status" and set(item) == {"user_receive_time", "nationcode", "mobile", "report_status", "errmsg",
                                              "description", "sid"}
    assert (item["sid"], item["mobile"], item["nationcode"], item["report_status"]) == (
        serial, "13800138000", "86", "SUCCESS")
    # Pushed while SendSms was still being answered: the report beats the sender.
    assert receiver.bodies[4][0] == "status" and receiver.bodies[4][1][0]["sid"] == early
    assert receiver.bodies[4][1][0]["errmsg"] == "MK:0001"
