"""The corpus of real-looking replies (tests/corpus/grades.tsv) through the real paths a citizen's words
take: a Twilio SMS answering a reminder and the official account's chat (a person with one unrated case
is understood at once); test_corpus_simulator.py takes the simulator's WeChat chat.

Each row is checked by what the person is told and what is stored: a good grade is thanked and stored; a
bad grade asks for the reasons and is stored with them; a reply asked again stores nothing and gets the
question again. One case per row, posted in bulk, so the whole table costs a few requests per row.
"""

from __future__ import annotations

import json
from typing import Any

from corpus_support import BAD, ROWS, check, said
from helpers import TOKEN, Hcp

from dialogs import messages as m


async def _bulk(hcp: Hcp, bodies: list[dict[str, Any]]) -> None:
    data = "\n".join(json.dumps(b, ensure_ascii=False) for b in bodies).encode()
    resp = await hcp.client.post("/api/v1/cases:bulk", data=data, headers={
        "Authorization": f"Bearer {TOKEN}", "Content-Type": "application/x-ndjson"})
    doc = await resp.json()
    assert resp.status == 200 and doc["created"] == len(bodies) and not doc["errors"], doc


async def _stored(hcp: Hcp, case_no: str) -> list[tuple[str, list[str]]]:
    return [(e["grade"], e["reasons"]) for e in await hcp.evaluations(case_no)]


async def test_the_corpus_over_sms_after_a_reminder(hcp: Hcp) -> None:
    phones = [hcp.new_phone() for _ in ROWS]
    bodies = [hcp.case_body(case_no=f"SMS-{r.line}", phone=p) for r, p in zip(ROWS, phones, strict=True)]
    await _bulk(hcp, bodies)
    counts = await hcp.tick("2026-11-21T10:01:00+08:00")  # 24 h after completion: every reminder goes
    assert counts["reminders"] == len(ROWS), counts
    hcp.clock.set("2026-11-21T10:05:00+08:00")
    thanks = said(hcp, m.THANKS)
    wrong = []
    for row, phone in zip(ROWS, phones, strict=True):
        reply = await hcp.sms(phone, row.reply)
        first = reply.text
        reasons_asked = "服务态度差" in first
        if reasons_asked and row.expected in BAD:
            await hcp.sms(phone, "1")
        asked_again = "1非常满意" in first and "5非常不满意" in first and not reasons_asked
        problem = check(row, first, thanks, reasons_asked, asked_again, await _stored(hcp, f"SMS-{row.line}"))
        if problem:
            wrong.append(problem)
    assert not wrong, "\n".join(wrong)


async def test_the_corpus_in_the_official_accounts_chat(hcp: Hcp) -> None:
    openids = [hcp.new_openid() for _ in ROWS]
    bodies = [hcp.case_body(case_no=f"WX-{r.line}", applicant={"locale": "zh-CN", "wechat_openid": o})
              for r, o in zip(ROWS, openids, strict=True)]
    await _bulk(hcp, bodies)
    thanks = said(hcp, m.THANKS)
    wrong = []
    for row, openid in zip(ROWS, openids, strict=True):
        status, reply, _ = await hcp.wechat_post(hcp.wx_text(openid, row.reply))
        assert status == 200
        first = hcp.reply_content(reply)
        reasons_asked = "服务态度差" in first
        if reasons_asked and row.expected in BAD:
            await hcp.wechat_post(hcp.wx_text(openid, "1"))
        asked_again = "待评价" in first and "1非常满意" in first  # the menu of the one unrated case
        problem = check(row, first, thanks, reasons_asked, asked_again, await _stored(hcp, f"WX-{row.line}"))
        if problem:
            wrong.append(problem)
    assert not wrong, "\n".join(wrong)
