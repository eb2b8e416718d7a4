"""A local stand-in for WeChat's server API (api.weixin.qq.com), good enough for the real ``wechatpy`` client.

Why a server and not a mock: the project talks to WeChat through ``wechatpy``'s synchronous, ``requests``-based
``WeChatClient``.  Pointing that real client at this server exercises its URL building, the ``access_token``
query parameter, its JSON encoding, its token cache and its error mapping (``WeChatClientException``, the
silent re-fetch-and-retry on 40001) exactly as in production, while the tests stay offline and deterministic.

Usage (the client runs in a thread because it is synchronous)::

    fake = await FakeWeChat({"wx0123456789abcdef": "app-secret"}).start()

    class FakeWxa(WeChatWxa):                       # wxa has its own hard-coded https://api.weixin.qq.com/
        API_BASE_URL = fake.base_url + "/"

    class Client(WeChatClient):
        API_BASE_URL = fake.base_url + "/cgi-bin/"
        wxa = FakeWxa()

        def fetch_access_token(self):
            return self._fetch_access_token(
                url=fake.base_url + "/cgi-bin/token",
                params={"grant_type": "client_credential", "appid": self.appid, "secret": self.secret},
            )

    client = Client("wx0123456789abcdef", "app-secret")
    await asyncio.to_thread(client.message.send_text, openid, "您好")
    assert fake.sent_of("custom", openid)[0]["body"]["text"]["content"] == "您好"
    await fake.close()

Note that overriding ``WeChatClient.API_BASE_URL`` alone is NOT enough: ``WeChatWxa`` (and card, datacube,
marketing, ... -- every API class with its own ``API_BASE_URL``) keeps calling the real host.

What wechatpy 1.8.x sends (read from the installed library, confirmed by the self-test):

* ``fetch_access_token``: ``GET {token url}?grant_type=client_credential&appid=..&secret=..`` (no access_token).
* every API call: ``{API_BASE_URL}{endpoint}?access_token=..``; POST bodies are ``json.dumps(data,
  ensure_ascii=False)`` as UTF-8 bytes, without a Content-Type header.
* ``message.send_text(openid, text)`` -> ``POST /cgi-bin/message/custom/send``
  ``{"touser", "msgtype": "text", "text": {"content"}}``.
* ``message.send_template(...)`` -> ``POST /cgi-bin/message/template/send``
  ``{"touser", "template_id", "url"?, "miniprogram"?, "data"}``.
* ``message.send_subscribe_message(...)`` (official-account subscription) -> ``POST
  /cgi-bin/message/subscribe/bizsend`` ``{"touser", "template_id", "data", "page"?, "miniprogram"?}``.
* ``wxa.send_subscribe_message(...)`` (mini program) -> ``POST /cgi-bin/message/subscribe/send``
  ``{"touser", "template_id", "page"?, "data"}``.
* ``wxa.code_to_session(js_code)`` -> ``GET /sns/jscode2session?appid=..&secret=..&js_code=..&grant_type=
  authorization_code&access_token=..`` -- wechatpy adds an access_token (so it fetches one first); WeChat
  ignores it, and so does this fake.
* The stable token (``POST /cgi-bin/stable_token``) is not used by wechatpy 1.8; it is here for code that
  fetches tokens itself.

Any non-2xx answer becomes ``WeChatClientException(errcode=None)``; an HTTP-200 JSON with a non-zero
``errcode`` becomes ``WeChatClientException(errcode, errmsg)``, except that 40001/40014/42001 make a client
with ``auto_retry=True`` (the default) fetch a new token and repeat the call -- without any limit.

Deliberate simplifications, each documented where it lives: errmsg texts carry no ``rid: ...`` suffix; tokens
do not age (no 42001 after 7200 s); a new token invalidates the previous one at once (WeChat keeps the old
one usable for about 5 minutes).
"""

from __future__ import annotations

import base64
import json
import re
import secrets
import time
from typing import Any

from aiohttp import web

TOKEN_TTL = 7200

_TOKEN_PATHS = frozenset({"/cgi-bin/token", "/cgi-bin/stable_token"})
# API path -> kind recorded in ``sent`` (all are POST)
_SEND_PATHS: dict[str, str] = {
    "/cgi-bin/message/custom/send": "custom",
    "/cgi-bin/message/subscribe/send": "subscribe",
    "/cgi-bin/message/subscribe/bizsend": "subscribe",
    "/cgi-bin/message/template/send": "template",
}
_CUSTOM_MSGTYPES = frozenset(
    {"text", "image", "voice", "video", "music", "news", "mpnews", "mpnewsarticle", "msgmenu", "wxcard",
     "miniprogrampage"}
)

# A date or a time of day, or both: "2026年11月20日 10:00", "2026-11-20 10:00", "2026/11/20", "10:00:30".
_M, _D = r"(?:0?[1-9]|1[0-2])", r"(?:0?[1-9]|[12]\d|3[01])"
_DATE = rf"\d{{4}}(?:年{_M}月{_D}日|-{_M}-{_D}|/{_M}/{_D})"
_CLOCK = r"(?:[01]?\d|2[0-3]):[0-5]\d(?::[0-5]\d)?"
_POINT = rf"(?:{_DATE}(?:\s*{_CLOCK})?|{_CLOCK})"
_DATETIME = re.compile(rf"{_POINT}(?:\s*~\s*{_POINT})?")
_FIELD_TYPE = re.compile(r"^(?P<type>[a-z_]+?)\d*$")
_CJK = re.compile(r"[\u4e00-\u9fff]")


def _check_field(key: str, value: str) -> str | None:
    """Why WeChat would reject ``data.<key>.value`` (subscription / new-style template rules), or None.

    The type is the key without its trailing number (``thing1`` -> thing).  Rules, from WeChat's
    subscribeMessage.send documentation: thing <= 20 characters (a Chinese character counts one); time/date
    a date and/or a 24-hour time, optionally a range "a~b"; number <= 32 digits (decimal point allowed);
    letter <= 32 letters; character_string <= 32 digits/letters/symbols; phone_number <= 17 digits/symbols;
    phrase <= 5 Chinese characters; name <= 10 Chinese characters or <= 20 letters/symbols.  Keys of other
    shapes (old template messages' ``first``/``keyword1``/``remark``) are not checked.
    """
    match = _FIELD_TYPE.match(key)
    kind = match["type"] if match else ""
    if kind not in ("thing", "time", "date", "number", "letter", "character_string", "phone_number", "phrase",
                    "name"):
        return None
    if value == "":
        return "is empty"
    limits = {"thing": 20, "number": 32, "letter": 32, "character_string": 32, "phone_number": 17, "phrase": 5}
    if kind in limits and len(value) > limits[kind]:
        return "exceeds limit"
    if kind in ("time", "date"):
        return None if _DATETIME.fullmatch(value) else "invalid"
    ok = {
        "number": re.fullmatch(r"[-+]?\d+(?:\.\d+)?", value),
        "letter": re.fullmatch(r"[A-Za-z]+", value),
        "character_string": not _CJK.search(value),
        "phone_number": re.fullmatch(r"[\d+\-()\s]+", value),
        "phrase": all(_CJK.match(ch) for ch in value),
        "name": len(value) <= 10 if _CJK.search(value) else len(value) <= 20,
    }.get(kind, True)
    return None if ok else "invalid"


class FakeWeChat:
    """An aiohttp server on 127.0.0.1 that answers WeChat's token, message and login endpoints.

    Recorded state (plain lists/dicts so tests can assert on them directly):

    * ``tokens_issued`` -- every newly minted token: ``{"appid", "token", "endpoint": "token"|"stable_token"}``
      (a stable_token call that hands back the still-valid current token mints nothing and adds nothing).
    * ``sent`` -- accepted sends: ``{"kind": "custom"|"subscribe"|"template", "appid", "body": <json>,
      "path"}`` (``path`` tells the mini-program ``subscribe/send`` from the official-account ``bizsend``).
    * ``requests`` -- every request, accepted or not: ``{"method", "path", "query", "body", "status",
      "response"}`` (``body`` is the parsed JSON, the raw text if it was not JSON, or None).
    * ``sessions`` -- js_code -> ``{"openid", "session_key", "unionid"?}``, filled by ``add_login``.

    Tokens: like WeChat, ``/cgi-bin/token`` and ``/cgi-bin/stable_token`` keep separate, isolated tokens per
    appid ("与 getAccessToken 获取的调用凭证完全隔离，互不影响").  A new ``/cgi-bin/token`` invalidates the
    previous ``/cgi-bin/token`` token of that appid; ``stable_token`` with ``force_refresh`` invalidates the
    previous stable token, without it hands back the current one while that is valid.  WeChat keeps a replaced
    token usable for about 5 minutes; this fake's grace period is 0 s, so two processes sharing an appid that
    each fetch their own token see the first one fail with 40001 at once -- the situation the grace hides.
    """

    def __init__(self, apps: dict[str, str]) -> None:
        self.apps = dict(apps)
        self.tokens_issued: list[dict[str, Any]] = []
        self.sent: list[dict[str, Any]] = []
        self.requests: list[dict[str, Any]] = []
        self.sessions: dict[str, dict[str, Any]] = {}
        self._valid: dict[str, str] = {}  # valid token -> appid
        self._current: dict[tuple[str, str], tuple[str, float]] = {}  # (appid, endpoint) -> (token, issued at)
        self._used_codes: set[str] = set()
        self._refusing: dict[str, tuple[int, str]] = {}
        self._failures: list[tuple[int, str]] = []
        self._http_errors: list[int] = []
        self._msgid = 2_000_000_000
        self._runner: web.AppRunner | None = None
        self._port: int | None = None

    # ------------------------------------------------------------------------------------------- lifecycle

    async def start(self) -> FakeWeChat:
        """Listen on a free port of 127.0.0.1; returns ``self``: ``fake = await FakeWeChat(...).start()``."""
        app = web.Application()
        app.router.add_route("*", "/{tail:.*}", self._handle)
        self._runner = web.AppRunner(app, access_log=None, shutdown_timeout=2.0)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        await site.start()
        self._port = self._runner.addresses[0][1]
        return self

    async def close(self) -> None:
        """Stop the server."""
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    async def __aenter__(self) -> FakeWeChat:
        return await self.start()

    async def __aexit__(self, *exc_info: object) -> None:
        await self.close()

    @property
    def base_url(self) -> str:
        """The stand-in for ``https://api.weixin.qq.com``, e.g. ``http://127.0.0.1:54321`` (no trailing slash):
        ``API_BASE_URL = base_url + "/cgi-bin/"``, wxa's ``base_url + "/"``."""
        if self._port is None:
            raise RuntimeError("FakeWeChat.start() has not been awaited")
        return f"http://127.0.0.1:{self._port}"

    # ------------------------------------------------------------------------------------ setup/inspection

    def add_login(self, code: str, openid: str, *, unionid: str | None = None, session_key: str | None = None) -> None:
        """Register a ``wx.login()`` code: ``jscode2session`` with it answers this openid, once."""
        session: dict[str, Any] = {
            "openid": openid,
            "session_key": session_key or base64.b64encode(secrets.token_bytes(16)).decode(),
        }
        if unionid is not None:
            session["unionid"] = unionid
        self.sessions[code] = session
        self._used_codes.discard(code)

    def sent_of(self, kind: str, touser: str | None = None) -> list[dict[str, Any]]:
        """Accepted sends of ``kind`` ("custom", "subscribe", "template"), optionally only those to ``touser``."""
        return [s for s in self.sent if s["kind"] == kind and (touser is None or s["body"].get("touser") == touser)]

    # ------------------------------------------------------------------------------------- fault injection

    def expire_tokens(self) -> None:
        """Every token issued so far becomes invalid: the next API call with one answers 40001 (real WeChat
        would say 42001 "access_token expired" for an aged token; wechatpy treats both alike).  The next
        token fetch mints a fresh one, stable_token included."""
        self._valid.clear()

    def refuse_subscribe(
        self, openid: str, errcode: int = 43101, errmsg: str = "user refuse to accept the msg"
    ) -> None:
        """Every subscription message (``subscribe/send`` and ``bizsend``) to ``openid`` answers this error,
        like a user who did not accept (or used up) the subscription.  Nothing is recorded in ``sent``."""
        self._refusing[openid] = (errcode, errmsg)

    def fail_next(self, n: int, errcode: int = -1, errmsg: str = "system error") -> None:
        """The next ``n`` API calls -- everything except ``/cgi-bin/token`` and ``/cgi-bin/stable_token``,
        ``jscode2session`` included -- answer HTTP 200 ``{"errcode", "errmsg"}`` before any other check.
        Beware: an injected 40001/40014/42001 makes a wechatpy client with auto_retry re-fetch and retry."""
        self._failures.extend([(errcode, errmsg)] * n)

    def http_error_next(self, n: int, status: int = 502) -> None:
        """The next ``n`` API calls (same set as ``fail_next``, and served first) answer this HTTP status with
        an HTML body, like WeChat's gateway does; wechatpy raises ``WeChatClientException(errcode=None)``."""
        self._http_errors.extend([status] * n)

    # -------------------------------------------------------------------------------------------- handling

    async def _handle(self, request: web.Request) -> web.Response:
        """Single entry point so that every request, whatever its fate, lands in ``self.requests``."""
        query = {key: request.query.get(key) for key in request.query}
        raw = await request.read()
        body: Any = None
        if raw:
            text = raw.decode("utf-8", "replace")
            try:
                body = json.loads(text)
            except ValueError:
                body = text
        status, payload = self._dispatch(request.method, request.path, query, body)
        if isinstance(payload, str):
            response = web.Response(status=status, text=payload, content_type="text/html")
        else:
            response = web.Response(
                status=status, text=json.dumps(payload, ensure_ascii=False), content_type="application/json"
            )
        self.requests.append(
            {"method": request.method, "path": request.path, "query": query, "body": body, "status": status,
             "response": payload}
        )
        return response

    def _dispatch(
        self, method: str, path: str, query: dict[str, str | None], body: Any
    ) -> tuple[int, dict[str, Any] | str]:
        if path == "/cgi-bin/token":
            if method != "GET":
                return 200, _err(43001, "require GET method")
            return 200, self._token(query.get("grant_type"), query.get("appid"), query.get("secret"))
        if path == "/cgi-bin/stable_token":
            if method != "POST":
                return 200, _err(43002, "require POST method")
            if not isinstance(body, dict):
                return 200, _err(47001, "data format error")
            return 200, self._stable_token(body)
        if path != "/sns/jscode2session" and path not in _SEND_PATHS:
            # WeChat answers unknown paths in many ways; a loud 404 makes a missing fake endpoint obvious.
            return 404, _err(404, f"FakeWeChat does not implement {method} {path}")

        # --- an API call: injected faults first.
        if self._http_errors:
            status = self._http_errors.pop(0)
            return status, f"<html><body><h1>{status} Bad Gateway</h1></body></html>"
        if self._failures:
            errcode, errmsg = self._failures.pop(0)
            return 200, _err(errcode, errmsg)

        if path == "/sns/jscode2session":
            if method != "GET":
                return 200, _err(43001, "require GET method")
            return 200, self._jscode2session(query)

        if method != "POST":
            return 200, _err(43002, "require POST method")
        token = query.get("access_token")
        if not token:
            return 200, _err(41001, "access_token missing")
        appid = self._valid.get(token)
        if appid is None:
            return 200, _err(40001, "invalid credential, access_token is invalid or not latest")
        if not isinstance(body, dict):
            return 200, _err(47001, "data format error")
        kind = _SEND_PATHS[path]
        problem = self._check_send(kind, body)
        if problem is not None:
            return 200, problem
        entry: dict[str, Any] = {"kind": kind, "appid": appid, "body": body, "path": path}
        answer: dict[str, Any] = {"errcode": 0, "errmsg": "ok"}
        if kind != "custom":  # subscribe and template sends answer a msgid; custom sends do not
            self._msgid += 1
            answer["msgid"] = entry["msgid"] = self._msgid
        self.sent.append(entry)
        return 200, answer

    # ------------------------------------------------------------------------------------------- endpoints

    def _credentials_error(self, appid: str | None, secret: str | None) -> dict[str, Any] | None:
        if not appid or appid not in self.apps:
            return _err(40013, "invalid appid")
        if secret != self.apps[appid]:
            return _err(40125, "invalid appsecret")
        return None

    def _mint(self, appid: str, endpoint: str) -> dict[str, Any]:
        """A new token for (appid, endpoint); the previous one of that pair stops working at once."""
        previous = self._current.get((appid, endpoint))
        if previous is not None:
            self._valid.pop(previous[0], None)
        token = secrets.token_urlsafe(96)
        self._valid[token] = appid
        self._current[(appid, endpoint)] = (token, time.monotonic())
        self.tokens_issued.append({"appid": appid, "token": token, "endpoint": endpoint})
        return {"access_token": token, "expires_in": TOKEN_TTL}

    def _token(self, grant_type: str | None, appid: str | None, secret: str | None) -> dict[str, Any]:
        if grant_type != "client_credential":
            return _err(40002, "invalid grant_type")
        problem = self._credentials_error(appid, secret)
        if problem is not None:
            return problem
        assert appid is not None
        return self._mint(appid, "token")

    def _stable_token(self, body: dict[str, Any]) -> dict[str, Any]:
        if body.get("grant_type") != "client_credential":
            return _err(40002, "invalid grant_type")
        appid, secret = body.get("appid"), body.get("secret")
        problem = self._credentials_error(appid, secret)
        if problem is not None:
            return problem
        assert isinstance(appid, str)
        current = self._current.get((appid, "stable_token"))
        if not body.get("force_refresh") and current is not None and current[0] in self._valid:
            token, issued = current
            remaining = max(1, TOKEN_TTL - int(time.monotonic() - issued))
            return {"access_token": token, "expires_in": remaining}
        return self._mint(appid, "stable_token")

    def _jscode2session(self, query: dict[str, str | None]) -> dict[str, Any]:
        problem = self._credentials_error(query.get("appid"), query.get("secret"))
        if problem is not None:
            return problem
        code = query.get("js_code")
        if not code:
            return _err(41008, "missing code")
        if code in self._used_codes:
            # What WeChat answers for a second use of a code ("code been used, rid: ...").
            return _err(40163, "code been used")
        session = self.sessions.get(code)
        if session is None:
            return _err(40029, "invalid code")
        self._used_codes.add(code)
        return dict(session)

    def _check_send(self, kind: str, body: dict[str, Any]) -> dict[str, Any] | None:
        """WeChat's answer to an invalid send, or None if it would be accepted."""
        touser = body.get("touser")
        if not isinstance(touser, str) or not touser:
            return _err(40003, "invalid openid")
        if kind == "custom":
            msgtype = body.get("msgtype")
            if msgtype not in _CUSTOM_MSGTYPES:
                return _err(40008, "invalid message type")
            if msgtype == "text":
                text = body.get("text")
                if not isinstance(text, dict) or not text.get("content"):
                    return _err(44004, "empty content")
            return None
        if not body.get("template_id"):
            return _err(40037, "invalid template_id")
        data = body.get("data")
        if not isinstance(data, dict):
            return _err(47003, "argument invalid! data is invalid")
        for key, field in data.items():
            if not isinstance(field, dict) or "value" not in field:
                return _err(47003, f"argument invalid! data.{key}.value is empty")
            reason = _check_field(key, str(field["value"]))
            if reason is not None:
                return _err(47003, f"argument invalid! data.{key}.value {reason}")
        if kind == "subscribe" and touser in self._refusing:
            errcode, errmsg = self._refusing[touser]
            return _err(errcode, errmsg)
        return None


def _err(errcode: int, errmsg: str) -> dict[str, Any]:
    return {"errcode": errcode, "errmsg": errmsg}
