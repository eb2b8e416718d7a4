"""A local stand-in for Twilio's REST API (2010-04-01), good enough for the real ``twilio`` client.

Why a server and not a mock: the project talks to Twilio through the real ``twilio`` library and its
``AsyncTwilioHttpClient``, so the only honest seam is HTTP.  Pointing the real client at this server
exercises the library's URL building, Basic auth, form encoding, JSON parsing and its error mapping
(``TwilioRestException``) exactly as in production, while the tests stay offline and deterministic.

Usage::

    fake = await FakeTwilio(account_sid, auth_token).start()
    client = twilio.rest.Client(account_sid, auth_token, http_client=AsyncTwilioHttpClient())
    client.api.base_url = fake.base_url
    msg = await client.messages.create_async(to="+8613800138000", from_="+15005550006", body="...")
    assert fake.sms_to("13800138000")[0]["sid"] == msg.sid
    await fake.close()

What the twilio 9.x client sends (read from the installed library): ``POST
{base}/2010-04-01/Accounts/{AccountSid}/Messages.json`` (and ``Calls.json``) with an
``application/x-www-form-urlencoded`` body whose keys are Twilio's PascalCase names (``To``, ``From``,
``Body``, ``StatusCallback``, ``Url`` ...), HTTP Basic auth ``AccountSid:AuthToken`` and
``Accept: application/json``; ``fetch_async`` sends ``GET .../Messages/{Sid}.json``.  A 2xx answer is parsed
as the resource JSON; anything else becomes ``TwilioRestException(status=<http status>, code=<json code>)``.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import contextlib
import json
import re
import secrets
from datetime import UTC, datetime
from email.utils import format_datetime
from typing import Any
from urllib.parse import urlencode

from aiohttp import web

API_VERSION = "2010-04-01"

# GSM 03.38 basic character set and its extension table (extension characters cost two septets).  Used
# only to compute ``num_segments`` the way Twilio does, so tests about long Chinese texts see real counts.
_GSM7_BASIC = frozenset(
    "@£$¥èéùìòÇ\nØø\rÅåΔ_ΦΓΛΩΠΨΣΘΞÆæßÉ !\"#¤%&'()*+,-./0123456789:;<=>?"
    "¡ABCDEFGHIJKLMNOPQRSTUVWXYZÄÖÑÜ§¿abcdefghijklmnopqrstuvwxyzäöñüà"
)
_GSM7_EXTENDED = frozenset("^{}\\[~]|€\f")

_ROUTE = re.compile(
    rf"^/{API_VERSION}/Accounts/(?P<account>[^/]+)/(?P<kind>Messages|Calls)"
    r"(?:/(?P<sid>[^/]+))?\.json$"
)


def _digits_key(phone: str) -> str:
    """Last 11 digits of a number, so "+86 138-0013-8000", "8613800138000" and "13800138000" compare equal."""
    return re.sub(r"\D", "", phone)[-11:]


def _num_segments(body: str) -> int:
    """Number of SMS segments Twilio would bill for ``body`` (GSM-7: 160/153, otherwise UCS-2: 70/67)."""
    if not body:
        return 1
    if all(ch in _GSM7_BASIC or ch in _GSM7_EXTENDED for ch in body):
        units = sum(2 if ch in _GSM7_EXTENDED else 1 for ch in body)
        single, multi = 160, 153
    else:
        # UCS-2 counts UTF-16 code units: characters outside the BMP (emoji) take two.
        units = len(body.encode("utf-16-le")) // 2
        single, multi = 70, 67
    return 1 if units <= single else -(-units // multi)


def _rfc2822(moment: datetime) -> str:
    """Twilio's date format, e.g. ``Thu, 24 Aug 2023 05:01:45 +0000``."""
    return format_datetime(moment.replace(microsecond=0))


def _us_formatted(phone: str) -> str:
    """Twilio's ``to_formatted``/``from_formatted``: "(415) 555-1212" for NANP numbers, else unchanged."""
    digits = re.sub(r"\D", "", phone)
    if phone.startswith("+1") and len(digits) == 11:
        return f"({digits[1:4]}) {digits[4:7]}-{digits[7:]}"
    return phone


class FakeTwilio:
    """An aiohttp server on 127.0.0.1 that answers Messages.json and Calls.json like Twilio does.

    Recorded state (plain lists so tests can assert on them directly):

    * ``messages`` -- accepted message creations:
      ``{"sid", "to", "from", "body", "status_callback", "form": {...every form field...}}``
    * ``calls`` -- accepted call creations: ``{"sid", "to", "from", "url", "status_callback", "form"}``
    * ``requests`` -- every request, accepted or not: ``{"method", "path", "status", "form"}``

    ``form`` values are strings; a field sent several times (``MediaUrl``, ``StatusCallbackEvent``) is a list.

    Failure injection (``fail_next``, ``hang_next``, ``refuse``) exists because the interesting code paths in
    the project -- retries, time-outs, opt-outs -- are exactly the ones the real Twilio test credentials
    cannot trigger on demand.
    """

    def __init__(self, account_sid: str, auth_token: str) -> None:
        self.account_sid = account_sid
        self.auth_token = auth_token
        self.messages: list[dict[str, Any]] = []
        self.calls: list[dict[str, Any]] = []
        self.requests: list[dict[str, Any]] = []
        # Full resource JSON by sid, so GET .../{Sid}.json answers what the POST answered.
        self._resources: dict[str, dict[str, Any]] = {}
        self._failures: list[tuple[int, int, str]] = []
        self._hangs: list[float] = []
        self._refused: dict[str, tuple[int, int, str]] = {}
        self._hanging = 0
        self._closing = asyncio.Event()
        self._runner: web.AppRunner | None = None
        self._port: int | None = None

    # ------------------------------------------------------------------------------------------- lifecycle

    async def start(self) -> FakeTwilio:
        """Listen on a free port of 127.0.0.1; returns ``self``: ``fake = await FakeTwilio(...).start()``."""
        app = web.Application()
        app.router.add_route("*", "/{tail:.*}", self._handle)
        # A short shutdown_timeout: close() wakes hung handlers itself, nothing legitimate should take longer.
        self._runner = web.AppRunner(app, access_log=None, shutdown_timeout=2.0)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        await site.start()
        self._port = self._runner.addresses[0][1]
        return self

    async def close(self) -> None:
        """Stop the server.  Requests still held by ``hang_next`` are released at once (answered 503, not
        recorded) so that closing never waits for a 30-second hang."""
        self._closing.set()
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    async def __aenter__(self) -> FakeTwilio:
        return await self.start()

    async def __aexit__(self, *exc_info: object) -> None:
        await self.close()

    @property
    def base_url(self) -> str:
        """What to assign to ``client.api.base_url``, e.g. ``http://127.0.0.1:54321`` (no trailing slash)."""
        if self._port is None:
            raise RuntimeError("FakeTwilio.start() has not been awaited")
        return f"http://127.0.0.1:{self._port}"

    @property
    def hanging(self) -> int:
        """How many requests ``hang_next`` is holding right now; lets a test wait until a hang has begun."""
        return self._hanging

    # ------------------------------------------------------------------------------------------ inspection

    def sms_to(self, phone: str) -> list[dict[str, Any]]:
        """Accepted messages whose To has the same last 11 digits as ``phone`` (format-agnostic)."""
        key = _digits_key(phone)
        return [m for m in self.messages if _digits_key(m["to"]) == key]

    # ------------------------------------------------------------------------------------- fault injection

    def fail_next(
        self, n: int, status: int = 500, code: int = 20500, message: str = "Internal Server Error"
    ) -> None:
        """The next ``n`` authenticated POSTs (Messages or Calls) or message lists answer this Twilio error;
        nothing is recorded as accepted.  Queued after any failures already pending."""
        self._failures.extend([(status, code, message)] * n)

    def hang_next(self, n: int, seconds: float = 30) -> None:
        """The next ``n`` authenticated POSTs or message lists wait ``seconds`` (an asyncio wait: other
        requests keep being served) and are then processed normally -- like a slow Twilio that did accept
        the message, so a client that timed out and retried may cause two accepted messages if the fake is
        still running."""
        self._hangs.extend([seconds] * n)

    def refuse(
        self,
        phone: str,
        code: int = 21610,
        status: int = 400,
        message: str = "Attempt to send to unsubscribed recipient",
    ) -> None:
        """Every message to ``phone`` (last 11 digits) answers this error, until the fake is discarded.
        Twilio's 21610 is "unsubscribed recipient" (the user texted STOP), 21211 "invalid 'To' number"."""
        self._refused[_digits_key(phone)] = (status, code, message)

    # -------------------------------------------------------------------------------------------- handling

    async def _handle(self, request: web.Request) -> web.Response:
        """Single entry point so that every request, whatever its fate, lands in ``self.requests``."""
        form: dict[str, Any] = {}
        if request.method in ("POST", "PUT"):
            posted = await request.post()
            for key in posted:
                values = [v if isinstance(v, str) else str(v) for v in posted.getall(key)]
                form[key] = values[0] if len(values) == 1 else values
        response = await self._dispatch(request, form)
        self.requests.append(
            {"method": request.method, "path": request.path, "status": response.status, "form": form}
        )
        return response

    async def _dispatch(self, request: web.Request, form: dict[str, Any]) -> web.Response:
        match = _ROUTE.match(request.path)
        if match is None:
            return self._not_found(request.path)
        if not self._authorized(request) or match["account"] != self.account_sid:
            return _error(401, 20003, "Authenticate")

        kind, sid = match["kind"], match["sid"]
        if sid is not None:
            if request.method != "GET":
                return self._not_found(request.path)
            resource = self._resources.get(sid)
            expected_prefix = "SM" if kind == "Messages" else "CA"
            if resource is None or not sid.startswith(expected_prefix):
                return self._not_found(request.path)
            return _json(200, resource)

        listing = request.method == "GET" and kind == "Messages"
        if request.method != "POST" and not listing:
            return self._not_found(request.path)

        if self._hangs:
            seconds = self._hangs.pop(0)
            self._hanging += 1
            try:
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._closing.wait(), seconds)
            finally:
                self._hanging -= 1
            if self._closing.is_set():
                return _error(503, 20503, "Service Unavailable")
        if self._failures:
            status, code, message = self._failures.pop(0)
            return _error(status, code, message)

        if listing:
            return self._list_messages(request)
        if kind == "Messages":
            return self._create_message(form)
        return self._create_call(form)

    def _authorized(self, request: web.Request) -> bool:
        header = request.headers.get("Authorization", "")
        scheme, _, encoded = header.partition(" ")
        if scheme.lower() != "basic":
            return False
        try:
            decoded = base64.b64decode(encoded, validate=True).decode("utf-8")
        except (binascii.Error, UnicodeDecodeError):
            return False
        user, sep, password = decoded.partition(":")
        return bool(sep) and user == self.account_sid and password == self.auth_token

    def _not_found(self, path: str) -> web.Response:
        return _error(404, 20404, f"The requested resource {path} was not found")

    def _create_message(self, form: dict[str, Any]) -> web.Response:
        """Validate like Twilio (same error codes), then store and answer the MessageInstance JSON."""
        to = _first(form.get("To"))
        from_ = _first(form.get("From"))
        body = _first(form.get("Body"))
        service_sid = _first(form.get("MessagingServiceSid"))
        if not to:
            return _error(400, 21604, "A 'To' phone number is required.")
        if not from_ and not service_sid:
            return _error(400, 21603, "A 'From' phone number is required.")
        if not body and not form.get("MediaUrl") and not form.get("ContentSid"):
            return _error(400, 21602, "Message body is required.")
        refusal = self._refused.get(_digits_key(to))
        if refusal is not None:
            status, code, message = refusal
            return _error(status, code, message)

        sid = "SM" + secrets.token_hex(16)
        now = _rfc2822(datetime.now(UTC))
        uri = f"/{API_VERSION}/Accounts/{self.account_sid}/Messages/{sid}.json"
        media = form.get("MediaUrl")
        num_media = 0 if media is None else (len(media) if isinstance(media, list) else 1)
        resource: dict[str, Any] = {
            "account_sid": self.account_sid,
            "api_version": API_VERSION,
            "body": body or "",
            "date_created": now,
            "date_sent": None,
            "date_updated": now,
            "direction": "outbound-api",
            "error_code": None,
            "error_message": None,
            "from": from_ or None,
            "messaging_service_sid": service_sid or None,
            "num_media": str(num_media),
            "num_segments": str(_num_segments(body or "")),
            "price": None,
            "price_unit": "USD",
            "sid": sid,
            # Twilio says "accepted" when a Messaging Service still has to pick the sender.
            "status": "queued" if from_ else "accepted",
            "subresource_uris": {"media": uri.removesuffix(".json") + "/Media.json"},
            "to": to,
            "uri": uri,
        }
        self._resources[sid] = resource
        self.messages.append(
            {
                "sid": sid,
                "to": to,
                "from": from_,
                "body": body,
                "status_callback": _first(form.get("StatusCallback")),
                "form": form,
            }
        )
        return _json(201, resource)

    def _list_messages(self, request: web.Request) -> web.Response:
        """``GET Messages.json``: newest first, filtered by ``To``/``From`` (exact, as Twilio does) and paged
        by ``PageSize``/``Page``, in Twilio's list envelope (``messages`` plus the paging keys the twilio
        client reads). ``DateSent`` filters are not supported: the fake never marks a message sent."""
        query = request.query
        unsupported = [k for k in query if k.startswith("DateSent")]
        if unsupported:
            return _error(400, 20001, f"the fake does not filter by {', '.join(unsupported)}")
        try:
            size = max(1, min(1000, int(query.get("PageSize", "50"))))
            page = max(0, int(query.get("Page", "0")))
        except ValueError:
            return _error(400, 20001, "PageSize and Page must be integers")
        found = [self._resources[m["sid"]] for m in reversed(self.messages)
                 if (not query.get("To") or m["to"] == query["To"])
                 and (not query.get("From") or m["from"] == query["From"])]
        chunk = found[page * size:(page + 1) * size]
        filters = {k: query[k] for k in ("To", "From") if query.get(k)}

        def uri(number: int) -> str:  # the paging links keep the filters, as Twilio's do
            return f"/{API_VERSION}/Accounts/{self.account_sid}/Messages.json?" + urlencode(
                {**filters, "PageSize": size, "Page": number})

        more = (page + 1) * size < len(found)
        return _json(200, {
            "messages": chunk, "page": page, "page_size": size, "start": page * size,
            "end": page * size + max(len(chunk) - 1, 0), "uri": uri(page), "first_page_uri": uri(0),
            "next_page_uri": uri(page + 1) if more else None,
            "previous_page_uri": uri(page - 1) if page else None,
        })

    def _create_call(self, form: dict[str, Any]) -> web.Response:
        """Validate like Twilio (same error codes), then store and answer the CallInstance JSON."""
        to = _first(form.get("To"))
        from_ = _first(form.get("From"))
        url = _first(form.get("Url"))
        if not to:
            return _error(400, 21201, "No 'To' number is specified")
        if not from_:
            return _error(400, 21213, "No 'From' number is specified")
        if not url and not form.get("Twiml") and not form.get("ApplicationSid"):
            return _error(400, 21205, "Url parameter is required.")

        sid = "CA" + secrets.token_hex(16)
        now = _rfc2822(datetime.now(UTC))
        base = f"/{API_VERSION}/Accounts/{self.account_sid}/Calls/{sid}"
        resource: dict[str, Any] = {
            "account_sid": self.account_sid,
            "annotation": None,
            "answered_by": None,
            "api_version": API_VERSION,
            "caller_name": None,
            "date_created": now,
            "date_updated": now,
            "direction": "outbound-api",
            "duration": None,
            "end_time": None,
            "forwarded_from": None,
            "from": from_,
            "from_formatted": _us_formatted(from_),
            "group_sid": None,
            "parent_call_sid": None,
            "phone_number_sid": None,
            "price": None,
            "price_unit": "USD",
            "queue_time": "0",
            "sid": sid,
            "start_time": None,
            "status": "queued",
            "subresource_uris": {
                name: f"{base}/{path}.json"
                for name, path in (
                    ("notifications", "Notifications"),
                    ("recordings", "Recordings"),
                    ("payments", "Payments"),
                    ("events", "Events"),
                    ("siprec", "Siprec"),
                    ("streams", "Streams"),
                    ("transcriptions", "Transcriptions"),
                    ("user_defined_message_subscriptions", "UserDefinedMessageSubscriptions"),
                    ("user_defined_messages", "UserDefinedMessages"),
                )
            },
            "to": to,
            "to_formatted": _us_formatted(to),
            "trunk_sid": None,
            "uri": base + ".json",
        }
        self._resources[sid] = resource
        self.calls.append(
            {
                "sid": sid,
                "to": to,
                "from": from_,
                "url": url,
                "status_callback": _first(form.get("StatusCallback")),
                "form": form,
            }
        )
        return _json(201, resource)


def _first(value: str | list[str] | None) -> str | None:
    """A form field as one string (the first occurrence when the client repeated it)."""
    if isinstance(value, list):
        return value[0] if value else None
    return value


def _json(status: int, payload: dict[str, Any]) -> web.Response:
    return web.Response(
        status=status,
        text=json.dumps(payload, ensure_ascii=False),
        content_type="application/json",
        charset="utf-8",
    )


def _error(status: int, code: int, message: str) -> web.Response:
    """Twilio's legacy error body, which the client turns into TwilioRestException(status, code)."""
    return _json(
        status,
        {
            "code": code,
            "message": message,
            "more_info": f"https://www.twilio.com/docs/errors/{code}",
            "status": status,
        },
    )
