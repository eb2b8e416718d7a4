import pytest

from conftest import ALL_BACKENDS


@pytest.mark.parametrize("backend", ALL_BACKENDS, indirect=True)
async def test_reminder_reply_and_stored(hcp):
    case_no, phone, sms = await hcp.reminded()
    reply = await hcp.sms(phone, "1")
    assert reply.status == 200 and reply.messages
    evs = await hcp.evaluations(case_no)
    assert [e["grade"] for e in evs] == ["very_satisfied"]
