"""Tencent Cloud SMS (腾讯云短信), API 3.0 version 2021-01-11, through the official SDK's asyncio client.

The SDK (`tencentcloud-sdk-python-sms`, with `tencentcloud-sdk-python-common[async]`, which brings httpx) signs
every request with TC3-HMAC-SHA256 and raises TencentCloudSDKException(code, message) for an `Error` in the
answer, and "ServerNetworkError" for an HTTP status other than 200; httpx's own exceptions (connect, read,
write, time-outs) come through as they are, so a request that never left is told from one whose answer was lost.

Facts this file relies on, with their sources:
- SendSms (https://cloud.tencent.com/document/api/382/55981): PhoneNumberSet in E.164, SmsSdkAppId, SignName
  (the approved 签名's text, required for mainland numbers), TemplateId, TemplateParamSet ("模板参数的个数需要与
  TemplateId 对应模板的变量个数保持一致"), SessionContext ("server 会原样返回", under 512 bytes). The answer's
  SendStatusSet has one SendStatus per number with its own Code ("Ok" when sent) and SerialNo: a batch API,
  so a request answered 200 can still hold a refused number (SDK: tencentcloud/sms/v20210111/models.py,
  SendStatus.Code).
- PullSmsSendStatusByPhoneNumber (https://www.tencentcloud.com/document/api/382/40518, version 2021-01-11;
  2019-07-11: https://cloud.tencent.com/document/api/382/38773; SDK models.py, PullSmsSendStatusByPhoneNumberRequest):
  BeginTime at most 7 days back, Offset fixed at 0, Limit at most 100; 20 requests a second. A status is there
  only once the carrier reported it ("仅当运营商有返回短信接收状态时回包中才会有状态数据", models.py,
  PullSmsSendStatus.ReportStatus), and its SessionContext comes back only when Tencent has enabled it for the
  account ("默认为空，如需开通请联系腾讯云短信小助手评估", PullSmsSendStatus.SessionContext).
- Error codes: https://cloud.tencent.com/document/api/382/59177 (短信 API 3.0 发送错误码) and the SDK's
  tencentcloud/sms/v20210111/errorcodes.py; the common codes (AuthFailure.*, RequestLimitExceeded,
  InternalError) are those every TencentCloud API 3.0 product lists under 公共错误码.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Mapping
from datetime import UTC, datetime, timedelta

import httpx
from tencentcloud.common.credential import Credential
from tencentcloud.common.exception.tencent_cloud_sdk_exception import TencentCloudSDKException
from tencentcloud.common.profile.client_profile import ClientProfile
from tencentcloud.common.profile.http_profile import HttpProfile
from tencentcloud.sms.v20210111 import models
from tencentcloud.sms.v20210111.sms_client_async import SmsClient

from channels.base import Failed, Outgoing, Retry, SendResult, Sent, Stopped, Unsure

log = logging.getLogger("haochaping.tencent")

SEND_TIMEOUT = 15.0
# How long after an attempt whose answer was lost a missing status report still means "maybe sent": until then
# find_sent raises (the sender waits and asks again), after it a message the pull does not know is sent again.
# Tencent documents no upper bound for a carrier's report: its pull has a status only once the carrier reported
# one (above), and domestic SMS normally reaches the phone within seconds ("国内短信验证秒级触达",
# https://cloud.tencent.com/document/api/382/38763). A phone that is off keeps its message at the carrier and
# the report comes when it is delivered, so the window covers a night with the phone off. It must also end
# before the sender's retries do (bot/delivery/sender.py: the ninth and last attempt comes about 15 h 40 min after the
# first), or a message whose send never reached Tencent would be marked failed instead of sent again.
REPORT_WINDOW = timedelta(hours=12)
PULL_REACH = timedelta(days=7)  # PullSmsSendStatusByPhoneNumber's BeginTime: "最大可拉取当前时期前7天的数据"
PULL_LIMIT = 100

# --- error classes (https://cloud.tencent.com/document/api/382/59177 and errorcodes.py) ----------------------
# "手机号在免打扰名单库中，通常是用户退订或者命中运营商免打扰名单导致的": the person does not want our messages.
STOP_CODES = frozenset({"FailedOperation.PhoneNumberInBlacklist"})
# Caps that lift with time: per number in 30 s / 1 h / a day / the same content a day ("可自行到控制台调整短信频率
# 限制策略"), the application's daily caps, the rate limit, and an empty package (套餐包余量不足, refilled by the
# operator): the message waits for its next attempt instead of failing for ever.
RETRY_CODES = frozenset({
    "LimitExceeded.PhoneNumberThirtySecondLimit",
    "LimitExceeded.PhoneNumberOneHourLimit",
    "LimitExceeded.PhoneNumberDailyLimit",
    "LimitExceeded.PhoneNumberSameContentDailyLimit",
    "LimitExceeded.DeliveryFrequencyLimit",
    "LimitExceeded.DailyLimit",
    "LimitExceeded.AppDailyLimit",
    "LimitExceeded.AppMainlandChinaDailyLimit",
    "LimitExceeded.AppGlobalDailyLimit",
    "LimitExceeded.AppCountryOrRegionDailyLimit",
    "LimitExceeded.GlobalSmsSendingRateLimit",
    "RequestLimitExceeded",  # 公共错误码: "请求的次数超过了频率限制"
    "FailedOperation.InsufficientBalanceInSmsPackage",
    "ServerNetworkError",  # the SDK's name for an HTTP status other than 200 (a 5xx from Tencent's gateway)
})
# LimitExceeded.* that retrying does not change: more than 200 numbers in one request, a blocked region.
FINAL_LIMITS = frozenset({"LimitExceeded.PhoneNumberCountLimit", "LimitExceeded.AppCountryOrRegionInBlacklist"})
# Refusals of this request as it is: its parameters (InvalidParameter*, MissingParameter), its template or
# signature (FailedOperation.TemplateIncorrectOrUnapproved "模板未审批或内容不匹配", SignatureIncorrectOrUnapproved,
# TemplateParamSetNotMatchApprovedTemplate, ContainSensitiveWord …), the account's rights (UnauthorizedOperation.*:
# SdkAppId, IP allow-list, arrears), what is not supported (UnsupportedOperation.*), the credentials (AuthFailure.*,
# 公共错误码), and the SDK's own refusals before sending (ClientError, ClientParamsError, InvalidCredential).
FINAL_PREFIXES = ("InvalidParameter", "MissingParameter", "FailedOperation.", "UnauthorizedOperation",
                  "UnsupportedOperation", "AuthFailure", "ClientError", "ClientParamsError", "InvalidCredential",
                  "InvalidAction", "NoSuchVersion")
# Tencent's side failing (InternalError.Timeout "请求下发短信超时" is documented as "出现概率很低，可重试解决",
# https://cloud.tencent.com/document/product/382/3771, code 1008): try again later. So is a code we do not know.
RETRY_PREFIXES = ("InternalError", "LimitExceeded.")


def classify(code: str, message: str) -> SendResult:
    text = f"tencent {code}: {message}"[:500]
    if code in STOP_CODES:
        return Stopped(text)
    if code in RETRY_CODES:
        return Retry(text)
    if code in FINAL_LIMITS or code.startswith(FINAL_PREFIXES):
        return Failed(text)
    return Retry(text)  # RETRY_PREFIXES and anything new: the sender's attempts are bounded


class ReportPending(Exception):
    """find_sent: nothing found yet, and the report window of the attempt has not passed."""


class TencentSender:
    name = "tencent"

    def __init__(self, *, secret_id: str, secret_key: str, sdk_app_id: str, sign_name: str, region: str,
                 endpoint: str, scheme: str = "https", templates: Mapping[str, tuple[str, tuple[str, ...]]],
                 timeout: float = SEND_TIMEOUT, report_window: timedelta = REPORT_WINDOW) -> None:
        profile = ClientProfile(httpProfile=HttpProfile(protocol=scheme, endpoint=endpoint, reqTimeout=timeout))
        # disable_region_breaker is the SDK's default: its breaker would send to Tencent's own backup endpoint.
        self.client = SmsClient(Credential(secret_id, secret_key), region, profile)
        self.sdk_app_id = sdk_app_id
        self.sign_name = sign_name
        self.templates = dict(templates)
        self.timeout = timeout
        self.report_window = report_window
        self._warned_context = False

    # The SDK's own time-out covers each phase of a request (connect, write, read); this one bounds the whole.
    def _bound(self) -> asyncio.Timeout:
        return asyncio.timeout(self.timeout + 1.0)

    async def send(self, message: Outgoing) -> SendResult:
        template = self.templates.get(message.key) if message.key else None
        if template is None:
            return Failed(f"no tencent template for {message.key or 'a message without a key'}")
        template_id, params = template
        missing = [name for name in params if name not in message.values]
        if missing:
            return Failed(f"tencent template {template_id} of {message.key} needs {', '.join(missing)}, "
                          "which the message does not have")
        request = models.SendSmsRequest()
        request.PhoneNumberSet = [message.to]
        request.SmsSdkAppId = self.sdk_app_id
        request.SignName = self.sign_name
        request.TemplateId = template_id
        request.TemplateParamSet = [message.values[name] for name in params]
        request.SessionContext = str(message.outbox_id)
        try:
            async with self._bound():
                answer = await self.client.SendSms(request)
        except TencentCloudSDKException as exc:
            return classify(str(exc.code), _text(exc.message))
        except (httpx.ConnectError, httpx.ConnectTimeout, httpx.PoolTimeout) as exc:
            return Retry(f"{type(exc).__name__}: {exc}")  # never connected: nothing can have been sent
        except (TimeoutError, httpx.HTTPError, OSError) as exc:
            return Unsure(f"{type(exc).__name__}: {exc}")  # it may have reached Tencent
        statuses = answer.SendStatusSet or []
        mine = [s for s in statuses if s.PhoneNumber == message.to] or statuses
        if len(mine) != 1:
            return Unsure(f"tencent answered {len(statuses)} statuses for one number")
        status = mine[0]
        code = str(status.Code or "")
        if code.lower() == "ok" and status.SerialNo:
            return Sent(str(status.SerialNo))
        if code.lower() == "ok":
            return Unsure("tencent answered Ok without a SerialNo")
        return classify(code, str(status.Message or ""))

    async def find_sent(self, message: Outgoing, since: datetime) -> str | None:
        """The SerialNo of the message Tencent reports with our SessionContext (the outbox id) since `since`.

        Raises when Tencent cannot be asked, and while nothing is found but the attempt's report window has not
        passed (the report may simply not be there yet): the sender then waits and asks again, rather than
        sending twice. After the window, None: the send is taken to have never reached Tencent."""
        now = datetime.now(UTC)
        begin = max(since, now - PULL_REACH + timedelta(minutes=1))
        request = models.PullSmsSendStatusByPhoneNumberRequest()
        request.BeginTime = int(begin.timestamp())
        request.EndTime = int(now.timestamp()) + 1
        request.Offset = 0
        request.Limit = PULL_LIMIT
        request.PhoneNumber = message.to
        request.SmsSdkAppId = self.sdk_app_id
        async with self._bound():
            answer = await self.client.PullSmsSendStatusByPhoneNumber(request)
        found = answer.PullSmsSendStatusSet or []
        context = str(message.outbox_id)
        for status in found:
            if status.SessionContext == context and status.SerialNo:
                return str(status.SerialNo)
        if found and not any(s.SessionContext for s in found) and not self._warned_context:
            self._warned_context = True
            log.warning("PullSmsSendStatusByPhoneNumber answers without SessionContext: ask Tencent Cloud support "
                        "to return it, or sends whose answer was lost are sent again after %s", self.report_window)
        if now - since < self.report_window:
            raise ReportPending(f"no report for outbox message {message.outbox_id} yet; the report window ends at "
                                f"{(since + self.report_window).isoformat()}")
        return None

    async def close(self) -> None:
        await self.client.close()


def _text(value: object) -> str:
    if isinstance(value, bytes):
        return value.decode("utf-8", "replace")[:300]
    return str(value)[:300]
