"""Taking a work order to the callback step (回访) through the business API and answering the service's callback
call as Twilio's webhooks do: the policy file, the review, the calls placed to a phone, picking up and pressing
keys. Used by bot/work_orders/test_callbacks.py and bot/work_orders/test_work_orders_outcomes.py."""

from __future__ import annotations

import xml.etree.ElementTree as ET
from datetime import datetime
from pathlib import Path
from typing import Any

from helpers import PUBLIC_URL, Hcp, cst

# The clock's default instant (a Saturday inside the calling hours): cases are rated then.
RATED_AT = cst("2026-11-21T10:00")


def write_policy(tmp_path: Path, text: str) -> str:
    path = tmp_path / "policy.toml"
    path.write_text(text, encoding="utf-8")
    return str(path)


async def act(hcp: Hcp, wo_id: int, action: str, body: dict[str, Any] | None = None,
              expect: int = 200) -> dict[str, Any]:
    status, doc = await hcp.api("POST", f"/api/v1/work-orders/{wo_id}/{action}", body)
    assert status == expect, (action, status, doc)
    return doc


async def review(hcp: Hcp, wo_id: int, review_at: datetime | None = None) -> dict[str, Any]:
    """dispatch → rectify → review, all at `review_at` (default: the clock as it is)."""
    if review_at is not None:
        hcp.clock.set(review_at)
    await act(hcp, wo_id, "dispatch")
    await act(hcp, wo_id, "rectify", {"note": "已约谈窗口人员，整改服务态度"})
    doc = await act(hcp, wo_id, "review")
    assert doc["status"] == "reviewed", doc
    return doc


def calls_to(hcp: Hcp, phone: str) -> list[dict[str, Any]]:
    return [c for c in hcp.twilio.calls if c["to"].endswith(phone[-11:])]


def local_path(url: str) -> str:
    """A webhook URL as the service published it → the path (and query) to post it at."""
    assert url.startswith(PUBLIC_URL + "/"), url
    return url[len(PUBLIC_URL):]


def call_params(hcp: Hcp, call: dict[str, Any], **more: str) -> dict[str, str]:
    """What Twilio posts about an outbound call of ours."""
    return {"CallSid": call["sid"], "AccountSid": hcp.twilio.account_sid, "From": call["from"],
            "To": call["to"], "Called": call["to"], "Caller": call["from"], "Direction": "outbound-api",
            "ApiVersion": "2010-04-01", **more}


def twiml(raw: str) -> ET.Element:
    root = ET.fromstring(raw)
    assert root.tag == "Response", raw
    return root


async def answer(hcp: Hcp, call: dict[str, Any]) -> ET.Element:
    """The rater picks up: Twilio fetches the call's TwiML from its `url`."""
    status, raw = await hcp.twilio_post(local_path(call["url"]), call_params(hcp, call, CallStatus="in-progress"))
    assert status == 200, (status, raw)
    return twiml(raw)


def gather_action(root: ET.Element) -> str:
    gathers = list(root.iter("Gather"))
    assert len(gathers) == 1, ET.tostring(root, encoding="unicode")
    action = gathers[0].get("action")
    assert action, ET.tostring(root, encoding="unicode")
    return action


async def press(hcp: Hcp, call: dict[str, Any], root: ET.Element, digits: str | None) -> ET.Element:
    """Key presses (or, with None, the Redirect after a silent Gather) at the question `root` asked."""
    action = gather_action(root)
    if digits is None:
        redirects = list(root.iter("Redirect"))
        assert redirects and (redirects[0].text or "").strip() == action, ET.tostring(root, encoding="unicode")
    params = call_params(hcp, call, CallStatus="in-progress", **({"Digits": digits} if digits is not None else {}))
    status, raw = await hcp.twilio_post(action, params)
    assert status == 200, (status, raw)
    return twiml(raw)
