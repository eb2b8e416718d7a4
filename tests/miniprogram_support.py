"""The mini-program's log-in as a test takes it (tests/web/test_miniprogram.py, tests/bot/rating/test_bundles.py):
WeChat's code2session double is told the code, and the service's session comes back as a bearer header."""

from __future__ import annotations

from typing import Any


async def login(hcp: Any, openid: str) -> dict[str, str]:
    code = "code-" + openid[-6:]
    hcp.wechat.add_login(code, openid)
    resp = await hcp.client.post("/api/mp/v1/login", json={"code": code})
    assert resp.status == 200, await resp.text()
    doc = await resp.json()
    assert openid not in str(doc)
    return {"Authorization": f"Bearer {doc['session']}"}
