"""The simulator's page as its script uses it, over the JSON API: `Sim`, one simulated browser with its own
cookie, and the simulator's own store read as the business API shows a case. Used by web/test_simulator.py,
web/test_simulator_templates.py and browser/test_browser_simulator.py."""

from __future__ import annotations

import json
from typing import Any

from bot.web import simulator, views
from store import cases as case_store


class Sim:
    """One browser of the simulator page: its own cookie, and every response it was given."""

    def __init__(self, hcp: Any, language: str | None = None) -> None:
        self.hcp = hcp
        self.cookie = ""
        self.language = language
        self.seen: list[str] = []  # every response body, for the privacy checks

    def headers(self, **more: str) -> dict[str, str]:
        headers = {"Cookie": f"hcp_sim={self.cookie}"} if self.cookie else {}
        if self.language:
            headers["Accept-Language"] = self.language
        return {**headers, **more}

    async def request(self, method: str, path: str, **kw: Any) -> tuple[int, str, Any]:
        # The test client's cookie jar would send the last cookie set to every request (over the one
        # given here): each simulated browser sends its own only.
        self.hcp.client.session.cookie_jar.clear()
        response = await self.hcp.client.request(method, path, **kw)
        text = await response.text()
        self.seen.append(text)
        if "hcp_sim" in response.cookies:
            self.cookie = response.cookies["hcp_sim"].value
        return response.status, response.content_type, text

    async def open(self) -> str:
        status, _, page = await self.request("GET", "/simulator/", headers=self.headers())
        assert status == 200 and self.cookie
        return page

    async def do(self, action: str, body: Any = None, expect: int = 200, **headers: str) -> dict[str, Any]:
        response = await self.raw(action, body, **headers)
        assert response[0] == expect, response
        return response[2]

    async def raw(self, action: str, body: Any = None, **headers: str) -> tuple[int, str, Any]:
        status, kind, text = await self.request("POST", f"/simulator/api/{action}", json={} if body is None else body,
                                                headers=self.headers(**headers))
        return status, kind, _json(kind, text)

    async def state(self, expect: int = 200) -> dict[str, Any]:
        status, kind, text = await self.request("GET", "/simulator/api/state", headers=self.headers())
        assert status == expect, text
        return _json(kind, text)

    async def person(self) -> simulator.Sim:
        """The stored session: the whole (unmasked) phone number and openid of the simulated person."""
        found = await self.hcp.rt.state.get(f"sim:{self.cookie}")
        assert found is not None, "no simulator session stored"
        person = simulator.Sim.from_json(found)
        assert person is not None
        return person


async def world_case(hcp: Any, case_no: str) -> dict[str, Any]:
    """A simulated case as GET /api/v1/cases/{case_no} shows a case, read from the simulator's own store (the
    service's API does not know it)."""
    world = hcp.rt.simulator.rt
    async with world.db.read() as session:
        case = await case_store.by_no(session, case_no)
        assert case is not None, f"{case_no} is not in the simulator's store"
        return await views.case_json(session, world, case, world.clock())


async def world_evaluations(hcp: Any, case_no: str) -> list[dict[str, Any]]:
    return (await world_case(hcp, case_no))["evaluations"]


def _json(kind: str, text: str) -> Any:
    return json.loads(text) if kind == "application/json" else text


def sms_reminders(doc: dict[str, Any]) -> list[dict[str, Any]]:
    return [e for e in doc["sms"] if e["dir"] == "out" and e.get("kind") == "reminder"]
