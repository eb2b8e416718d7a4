"""Self-test of tests/fakes/aliyun_sms.py, driven by the real `alibabacloud-dysmsapi20170525` client.

The double is worth something only if the SDK the service uses accepts its answers and its refusals as it
takes Aliyun's: the V3 signature it computes must verify (and a wrong secret must not), SendSms/QuerySendDetails
bodies must parse into the SDK's models, gateway errors must become its exceptions.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from zoneinfo import ZoneInfo

import aiohttp
import pytest
from aiohttp import web
from alibabacloud_dysmsapi20170525 import models
from alibabacloud_dysmsapi20170525.client import Client
from alibabacloud_tea_openapi import utils_models
from alibabacloud_tea_openapi.exceptions import ClientException, ServerException
from darabonba.runtime import RuntimeOptions
from fakes.aliyun_sms import FakeAliyunSms

AK, SECRET = "LTAI5tTestAccessKey01", "test-secret-0123456789abcdef"
SIGN = "汕头政务服务"
TEMPLATES = {"SMS_100": "您办理的“${item}”已于${completed_at}办结，请回复1-5评价。",
             "SMS_101": "感谢您的评价！"}
CITIZEN = "13800138000"


def client_for(fake: FakeAliyunSms, secret: str = SECRET, ak: str = AK, timeout_ms: int = 5000) -> Client:
    """As channels/aliyun wires it: endpoint host:port, protocol http, explicit timeouts."""
    host = fake.endpoint.split("://", 1)[1]
    return Client(utils_models.Config(access_key_id=ak, access_key_secret=secret, endpoint=host, protocol="http",
                                      read_timeout=timeout_ms, connect_timeout=timeout_ms))


def send_request(phone: str = CITIZEN, **over: str | None) -> models.SendSmsRequest:
    param = json.dumps({"item": "居民身份证换领", "completed_at": "2026年11月20日"}, ensure_ascii=False)
    fields: dict[str, str | None] = {"phone_numbers": phone, "sign_name": SIGN, "template_code": "SMS_100",
                                     "template_param": param, "out_id": "42"}
    fields.update(over)
    return models.SendSmsRequest(**fields)


@pytest.fixture
async def fake() -> AsyncIterator[FakeAliyunSms]:
    server = await FakeAliyunSms(AK, SECRET, sign_names=[SIGN], templates=TEMPLATES).start()
    yield server
    await server.close()


async def test_a_signed_send_is_accepted_recorded_and_listed(fake: FakeAliyunSms) -> None:
    client = client_for(fake)
    answer = await client.send_sms_with_options_async(send_request("+8613800138000"), RuntimeOptions())
    assert answer.status_code == 200 and answer.body.code == "OK" and answer.body.biz_id.endswith("^0")
    [sent] = fake.sms_to(CITIZEN)
    assert sent["biz_id"] == answer.body.biz_id and sent["out_id"] == "42" and sent["sign_name"] == SIGN
    assert list(sent["params"]) == ["item", "completed_at"]
    assert sent["content"] == "【汕头政务服务】您办理的“居民身份证换领”已于2026年11月20日办结，请回复1-5评价。"
    day = datetime.now(UTC).astimezone(ZoneInfo("Asia/Shanghai")).strftime("%Y%m%d")
    listed = await client.query_send_details_with_options_async(models.QuerySendDetailsRequest(
        phone_number=CITIZEN, send_date=day, page_size=50, current_page=1), RuntimeOptions())
    assert listed.body.code == "OK" and listed.body.total_count == 1
    [record] = listed.body.sms_send_detail_dtos.sms_send_detail_dto
    assert (record.out_id, record.send_status, record.template_code) == ("42", 1, "SMS_100")
    fake.report_item(sent, success=False, err_code="MOBILE_NOT_ON_SERVICE", err_msg="停机")
    listed = await client.query_send_details_with_options_async(models.QuerySendDetailsRequest(
        phone_number=CITIZEN, send_date=day, page_size=50, current_page=1), RuntimeOptions())
    [record] = listed.body.sms_send_detail_dtos.sms_send_detail_dto
    assert (record.send_status, record.err_code) == (2, "MOBILE_NOT_ON_SERVICE")


async def test_values_with_spaces_plus_and_chinese_survive_the_signature(fake: FakeAliyunSms) -> None:
    param = json.dumps({"item": "不动产 登记+抵押", "completed_at": "2026-11-20 10:00"}, ensure_ascii=False)
    answer = await client_for(fake).send_sms_with_options_async(send_request(template_param=param), RuntimeOptions())
    assert answer.body.code == "OK"
    assert fake.sends[-1]["params"]["item"] == "不动产 登记+抵押"


async def test_a_wrong_secret_or_key_is_refused_as_aliyun_does(fake: FakeAliyunSms) -> None:
    with pytest.raises(ClientException) as wrong:
        await client_for(fake, secret="not-the-secret").send_sms_with_options_async(send_request(), RuntimeOptions())
    assert (wrong.value.status_code, wrong.value.code) == (400, "SignatureDoesNotMatch")
    with pytest.raises(ClientException) as unknown:
        await client_for(fake, ak="LTAI-someone-else").send_sms_with_options_async(send_request(), RuntimeOptions())
    assert (unknown.value.status_code, unknown.value.code) == (404, "InvalidAccessKeyId.NotFound")
    assert fake.sends == []


async def test_a_replayed_request_is_refused_by_its_nonce(fake: FakeAliyunSms) -> None:
    seen: dict[str, object] = {}

    async def record(request: web.Request) -> web.Response:
        seen["url"], seen["headers"] = str(request.rel_url), dict(request.headers)
        return web.json_response({"Code": "OK", "BizId": "1^0", "Message": "OK", "RequestId": "x"})

    app = web.Application()
    app.router.add_post("/", record)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = runner.addresses[0][1]
    try:
        capture = Client(utils_models.Config(access_key_id=AK, access_key_secret=SECRET, endpoint=f"127.0.0.1:{port}",
                                             protocol="http"))
        await capture.send_sms_with_options_async(send_request(), RuntimeOptions())
    finally:
        await runner.cleanup()
    headers = {k: v for k, v in seen["headers"].items() if k.lower() not in ("content-length", "host")}  # type: ignore[union-attr]
    headers["host"] = f"127.0.0.1:{port}"  # as signed
    async with aiohttp.ClientSession() as session:
        first = await session.post(fake.endpoint + seen["url"], headers=headers)  # type: ignore[operator]
        again = await session.post(fake.endpoint + seen["url"], headers=headers)  # type: ignore[operator]
        assert first.status == 200 and (await first.json())["Code"] == "OK"
        assert again.status == 400 and (await again.json())["Code"] == "SignatureNonceUsed"
    assert len(fake.sends) == 1


@pytest.mark.parametrize(("over", "code"), [
    ({"phone_numbers": "12345"}, "isv.MOBILE_NUMBER_ILLEGAL"),
    ({"sign_name": "别的签名"}, "isv.SMS_SIGNATURE_ILLEGAL"),
    ({"template_code": "SMS_999"}, "isv.SMS_TEMPLATE_ILLEGAL"),
    ({"template_param": '{"item": 1, "completed_at": "x"}'}, "isv.INVALID_JSON_PARAM"),
    ({"template_param": '{"item": "x"}'}, "isv.TEMPLATE_MISSING_PARAMETERS"),
    ({"template_param": '{"item": "https://x.gov.cn/r/1", "completed_at": "x"}'}, "isv.PARAM_NOT_SUPPORT_URL"),
    ({"template_param": json.dumps({"item": "长" * 36, "completed_at": "x"})}, "isv.PARAM_LENGTH_LIMIT"),
], ids=["number", "signature", "template", "json", "missing", "url", "length"])
async def test_business_refusals_come_back_as_200_with_the_code(fake: FakeAliyunSms, over: dict[str, str],
                                                                  code: str) -> None:
    answer = await client_for(fake).send_sms_with_options_async(send_request(**over), RuntimeOptions())
    assert answer.status_code == 200 and answer.body.code == code and answer.body.biz_id is None
    assert fake.sends == []


async def test_a_refused_number_gets_its_code_as_many_times_as_told(fake: FakeAliyunSms) -> None:
    fake.refuse(CITIZEN, "isv.BUSINESS_LIMIT_CONTROL", "触发天级流控Permits:10", times=1)
    client = client_for(fake)
    first = await client.send_sms_with_options_async(send_request(), RuntimeOptions())
    second = await client.send_sms_with_options_async(send_request(), RuntimeOptions())
    assert (first.body.code, first.body.message) == ("isv.BUSINESS_LIMIT_CONTROL", "触发天级流控Permits:10")
    assert second.body.code == "OK" and len(fake.sends) == 1


async def test_gateway_errors_become_the_sdks_exceptions(fake: FakeAliyunSms) -> None:
    fake.fail_next(1, 503, "ServiceUnavailable")
    fake.fail_next(1, 400, "Throttling.User", "Request was denied due to user flow control.")
    client = client_for(fake)
    with pytest.raises(ServerException) as server:
        await client.send_sms_with_options_async(send_request(), RuntimeOptions())
    assert (server.value.status_code, server.value.code) == (503, "ServiceUnavailable")
    with pytest.raises(ClientException) as throttled:
        await client.send_sms_with_options_async(send_request(), RuntimeOptions())
    assert throttled.value.code == "Throttling.User"
    assert (await client.send_sms_with_options_async(send_request(), RuntimeOptions())).body.code == "OK"
    assert len(fake.sends) == 1


async def test_a_hang_times_the_sdk_out_and_then_the_message_is_accepted(fake: FakeAliyunSms) -> None:
    fake.hang_next(1, seconds=0.8)
    with pytest.raises(Exception) as timed_out:
        await client_for(fake, timeout_ms=200).send_sms_with_options_async(send_request(), RuntimeOptions())
    assert "Timeout" in repr(timed_out.value) or "timeout" in str(timed_out.value).lower()
    for _ in range(100):
        if fake.sends:
            break
        await asyncio.sleep(0.02)
    assert len(fake.sends) == 1  # a slow Aliyun still sent it


@pytest.mark.parametrize("how", ["hang", "drop"])
async def test_a_lost_answer_leaves_the_message_accepted(fake: FakeAliyunSms, how: str) -> None:
    fake.lose_next(1, how=how, seconds=5)
    with pytest.raises(Exception):  # noqa: B017 - the SDK's own wrapper of a read time-out or a dropped connection
        await client_for(fake, timeout_ms=300).send_sms_with_options_async(send_request(), RuntimeOptions())
    fake.release()
    assert len(fake.sends) == 1 and fake.sends[0]["out_id"] == "42"


async def test_pushes_reach_a_webhook_as_a_json_array_as_often_as_told(fake: FakeAliyunSms) -> None:
    received: list[object] = []

    async def hook(request: web.Request) -> web.Response:
        assert request.content_type == "application/json"
        received.append(await request.json())
        return web.json_response({"code": 0, "msg": "接收成功"})

    app = web.Application()
    app.router.add_post("/webhooks/aliyun/sms/{token}/up", hook)
    app.router.add_post("/webhooks/aliyun/sms/{token}/report", hook)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    base = f"http://127.0.0.1:{runner.addresses[0][1]}"
    try:
        item = fake.up_item(CITIZEN, "1", 1234567890)
        answers = await fake.push_up(base, "t" * 16, [item], times=3)
        assert answers == [(200, {"code": 0, "msg": "接收成功"})] * 3
        await client_for(fake).send_sms_with_options_async(send_request(), RuntimeOptions())
        report = fake.report_item(fake.sends[0])
        await fake.push_report(base, "t" * 16, [report])
    finally:
        await runner.cleanup()
    assert received[:3] == [[item]] * 3
    assert set(item) == {"phone_number", "content", "send_time", "dest_code", "sequence_id"}
    assert set(report) == {"phone_number", "send_time", "report_time", "success", "err_code", "err_msg", "sms_size",
                           "biz_id", "out_id"}
    assert received[3] == [report] and report["biz_id"] == fake.sends[0]["biz_id"] and report["out_id"] == "42"
