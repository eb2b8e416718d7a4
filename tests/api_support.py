"""Talking to the business API (CONTRACT "HTTP API for business systems") by hand: the token's header, a raw
request with any body, the bulk endpoint with its NDJSON, and the fields a 4xx answer names. Used by
web/test_api.py and bot/rating's test_intermediaries.py, test_handling_types.py and test_visit_ratings.py."""

from __future__ import annotations

import json
from typing import Any

from helpers import TOKEN, Hcp


def auth(token: str | None = TOKEN, **more: str) -> dict[str, str]:
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    headers.update(more)
    return headers


async def raw(hcp: Hcp, method: str, path: str, data: Any, content_type: str = "application/json",
              token: str | None = TOKEN) -> tuple[int, Any]:
    resp = await hcp.client.request(method, path, data=data, headers=auth(token, **{"Content-Type": content_type}))
    body = await resp.json() if resp.content_type == "application/json" else await resp.text()
    return resp.status, body


async def bulk(hcp: Hcp, data: Any, token: str | None = TOKEN) -> tuple[int, Any]:
    return await raw(hcp, "POST", "/api/v1/cases:bulk", data, "application/x-ndjson", token)


def ndjson(*docs: Any) -> str:
    return "".join((d if isinstance(d, str) else json.dumps(d, ensure_ascii=False)) + "\n" for d in docs)


def fields(doc: dict[str, Any]) -> list[str]:
    assert isinstance(doc, dict) and isinstance(doc.get("errors"), list) and doc["errors"], doc
    for e in doc["errors"]:
        assert isinstance(e.get("message"), str) and e["message"].strip(), e
    return [e["field"] for e in doc["errors"]]
