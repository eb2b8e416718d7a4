"""The service the mini-program's jest tests talk to: a real `haochaping serve` on 127.0.0.1 (embedded SQLite, the
mini-program channel on), pointed at the WeChat double (tests/fakes/wechat_api.py) for jscode2session, tokens and
subscribe messages, plus a small control server for what a test plays as WeChat or as time:

    POST /login {"code", "openid"}   wx.login's code the double will exchange for this openid
    GET  /sent                       the subscribe messages the double accepted
    POST /tick {"now"}               `haochaping tick --now` on the same database (sends the reminders due)
    POST /bar {"openid"}             the blacklist's bar on a mini-program user (as upheld false reviews set it)

Started by tests/miniprogram/setup.js (jest's globalSetup) with the project's Python; prints one JSON line
{"base_url", "control_url", "api_token", "template_id"} once both answer, and stops everything when its stdin
closes.
"""

from __future__ import annotations

import asyncio
import importlib.util
import json
import os
import secrets
import socket
import sys
import tempfile
from pathlib import Path
from typing import Any

import aiohttp
from aiohttp import web


def _the_double() -> Any:
    """tests/fakes/wechat_api.py, loaded by its path: tests/ on sys.path would make tests/bot shadow the service's
    `bot` (a namespace package found before the editable install's finder)."""
    path = Path(__file__).resolve().parents[1] / "fakes" / "wechat_api.py"
    spec = importlib.util.spec_from_file_location("hcp_test_wechat_double", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module.FakeWeChat


FakeWeChat = _the_double()

MP_APP_ID, MP_SECRET, TEMPLATE = "wxmp0123456789abcd", "m" * 32, "tpl-rating-reminder"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


async def main() -> None:
    wechat = await FakeWeChat({MP_APP_ID: MP_SECRET}).start()
    folder = tempfile.TemporaryDirectory(prefix="hcp-mp-")
    token = secrets.token_urlsafe(24)
    port = free_port()
    inherited = {k: v for k, v in os.environ.items() if not k.startswith(("HAOCHAPING_", "WECHAT_", "TWILIO_"))}
    env = {**inherited, "HAOCHAPING_DATABASE_URL": f"sqlite+aiosqlite:///{folder.name}/hcp.db",
           "HAOCHAPING_API_TOKEN": token, "HAOCHAPING_SECRET_KEY": secrets.token_urlsafe(36),
           "HAOCHAPING_PUBLIC_URL": f"http://127.0.0.1:{port}", "HAOCHAPING_LOG_LEVEL": "WARNING",
           "WECHAT_MP_APP_ID": MP_APP_ID, "WECHAT_MP_APP_SECRET": MP_SECRET, "WECHAT_MP_TEMPLATE_ID": TEMPLATE,
           "WECHAT_MP_PAGE": "pages/rate/index", "WECHAT_API_BASE_URL": wechat.base_url}
    command = [sys.executable, "-m", "bot", "serve", "--no-scheduler", "--port", str(port)]
    serve = await asyncio.create_subprocess_exec(*command, env=env, cwd=folder.name,
                                                 stdout=asyncio.subprocess.DEVNULL)

    async def login(request: web.Request) -> web.Response:
        doc = await request.json()
        wechat.add_login(doc["code"], doc["openid"])
        return web.json_response({"ok": True})

    async def sent(_: web.Request) -> web.Response:
        return web.json_response([s["body"] for s in wechat.sent_of("subscribe")])

    ticking: list[Any] = []  # the runtime `tick` opens, opened once (a process a tick would cost ~2 s each)

    async def tick(request: web.Request) -> web.Response:
        """What `haochaping tick --now` does (bot.cli.main.tick calls the same function), on the same database."""
        from datetime import datetime

        from bot.duties import scheduler
        from bot.infra.config import load_settings
        from bot.infra.runtime import open_runtime

        doc = await request.json()
        try:
            if not ticking:
                ticking.append(await open_runtime(load_settings(env, Path(folder.name))))
            counts = await scheduler.tick(ticking[0], datetime.fromisoformat(doc["now"]))
        except Exception as exc:  # said to the test, which fails with it
            return web.json_response({"status": 1, "err": repr(exc)})
        return web.json_response({"status": 0, "out": counts})

    async def bar(request: web.Request) -> web.Response:
        """The blacklist's bar on a mini-program user (what upheld false reviews set), written to the database as
        the service's own store does it."""
        from datetime import UTC, datetime, timedelta

        from store import contacts
        from store.engine import Database
        from store.sealing import Sealer

        doc = await request.json()
        db = Database(env["HAOCHAPING_DATABASE_URL"])
        try:
            async with db.write() as session:
                found = await contacts.find(session, "miniprogram",
                                            Sealer(env["HAOCHAPING_SECRET_KEY"]).lookup_hashes("miniprogram",
                                                                                              doc["openid"]))
                if found is None or found.id is None:
                    return web.json_response({"barred": False}, status=404)
                await contacts.bar(session, found.id, datetime.now(UTC) + timedelta(days=365))
        finally:
            await db.close()
        return web.json_response({"barred": True})

    control = web.Application()
    control.router.add_post("/login", login)
    control.router.add_get("/sent", sent)
    control.router.add_post("/tick", tick)
    control.router.add_post("/bar", bar)
    runner = web.AppRunner(control, access_log=None)
    await runner.setup()
    control_port = free_port()
    await web.TCPSite(runner, "127.0.0.1", control_port).start()
    try:
        base = f"http://127.0.0.1:{port}"
        async with aiohttp.ClientSession() as client:
            for _ in range(300):
                if serve.returncode is not None:
                    raise SystemExit(f"haochaping serve stopped with {serve.returncode}")
                try:
                    async with client.get(base + "/healthz") as resp:
                        if resp.status == 200:
                            break
                except aiohttp.ClientError:
                    pass
                await asyncio.sleep(0.1)
            else:
                raise SystemExit("haochaping serve did not answer /healthz in 30 s")
        print(json.dumps({"base_url": base, "control_url": f"http://127.0.0.1:{control_port}", "api_token": token,
                          "template_id": TEMPLATE}), flush=True)
        await asyncio.to_thread(sys.stdin.read)  # until the tests are over
    finally:
        serve.terminate()
        try:
            await asyncio.wait_for(serve.wait(), 10)
        except TimeoutError:
            serve.kill()
        await runner.cleanup()
        for rt in ticking:
            await rt.close()
        await wechat.close()
        folder.cleanup()


if __name__ == "__main__":
    asyncio.run(main())
