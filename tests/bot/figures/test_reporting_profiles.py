"""Reporting profiles as policy data (issue 8, "Reporting upward"): the presets' code tables written out
by hand from DOMAIN.md, the grade and channel encodings as properties, the request body a profile builds,
and the refusals of a wrong profile, each naming its key.

No database and no server here: tests/bot/figures/test_reporting.py pushes through a real socket.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given
from hypothesis import strategies as st

from bot.policy.reporting_profiles import CHANNELS, NEUTRAL_FIELDS, ReportingProfile, Retry, parse_profiles
from bot.policy.rules import PolicyError, load_policy, parse_policy
from bot.rating.ratings import CHANNELS as RATING_CHANNELS
from dialogs.grades import Grade

URL = "https://upstream.example.gov.cn/api/report"
SHANGHAI = ZoneInfo("Asia/Shanghai")

# DOMAIN.md "The five grades": grade → (GB/T 39046 满意度代码, provincial `satisfaction`). Written out, not derived.
GRADE_TABLE = {
    "very_satisfied": (1, 5),
    "satisfied": (2, 4),
    "basically_satisfied": (3, 3),
    "dissatisfied": (4, 2),
    "very_dissatisfied": (5, 1),
}
# Our channel codes (docs/figures.md): 1–5 common; gbt39046: 6 phone, 7 SMS, 9 default; provincial: 6 SMS,
# 7 default, 9 phone.
CHANNEL_TABLE = {
    "web": (1, 1), "wechat": (2, 2), "miniprogram": (2, 2), "qr": (3, 3), "hall": (4, 4), "terminal": (5, 5),
    "phone": (6, 9), "sms": (7, 6), "default": (9, 7), "callback": (9, 9),
}


def one(doc: dict[str, Any], name: str = "p") -> ReportingProfile:
    [profile] = parse_policy({"reporting": {name: doc}}).reporting
    return profile


def gbt(**more: Any) -> ReportingProfile:
    return one({"style": "gbt39046", "endpoint": URL, **more})


def provincial(**more: Any) -> ReportingProfile:
    return one({"style": "provincial", "endpoint": URL, **more})


RECORD = {
    "case_no": "C-1", "item_code": "I-1", "item_name": "居民身份证换领", "agency_code": "A-1", "agency_name": "公安局",
    "staff_id": "G1024", "staff_name": "李四", "hall_code": None, "hall_name": None, "district_code": None,
    "district_name": None, "completed_at": "2026-11-20T02:00:00+00:00", "grade": "dissatisfied", "score": 3,
    "reasons": ["attitude"], "text": "排队太久", "channel": "sms", "is_default": False, "is_followup": False,
    "via": None, "status": "valid", "callback_result": None, "rated_at": "2026-11-21T02:00:00+00:00",
    "version": 1, "changed_at": "2026-11-21T02:00:00+00:00",
}


# --- the presets, by hand ---------------------------------------------------------------------------------


@pytest.mark.parametrize("grade", list(GRADE_TABLE))
def test_each_grade_has_the_domain_tables_digit_in_each_preset_and_never_the_others(grade: str) -> None:
    national, province = GRADE_TABLE[grade]
    assert gbt().grade_code(Grade(grade)) == national
    assert provincial().grade_code(Grade(grade)) == province
    if national != province:  # basically_satisfied is 3 in both lists
        assert gbt().grade_code(Grade(grade)) != province
        assert provincial().grade_code(Grade(grade)) != national


@pytest.mark.parametrize("channel", list(CHANNEL_TABLE))
def test_each_channel_has_its_documented_code_in_each_preset(channel: str) -> None:
    assert (gbt().channel_code(channel), provincial().channel_code(channel)) == CHANNEL_TABLE[channel]


def test_every_channel_a_rating_may_carry_has_a_code_in_each_preset() -> None:
    assert set(CHANNELS) == set(RATING_CHANNELS) == set(CHANNEL_TABLE)


def test_grade_codes_reversed_on_a_gbt_style_and_a_table_of_strings() -> None:
    assert gbt(grade_codes="reversed").grade_code(Grade.VERY_SATISFIED) == 5
    custom = gbt(grade_codes={"very_satisfied": "A", "satisfied": "B", "basically_satisfied": "C",
                              "dissatisfied": "D", "very_dissatisfied": "E"})
    assert custom.grade_code(Grade.DISSATISFIED) == "D"


# --- encodings as properties --------------------------------------------------------------------------------

TABLES = st.sampled_from(["gbt39046", "reversed"]) | st.lists(
    st.one_of(st.integers(-1000, 1000), st.text(min_size=1, max_size=4)), min_size=5, max_size=5, unique=True,
).map(lambda codes: dict(zip([g.value for g in Grade], codes, strict=True)))
STYLE = st.sampled_from(["gbt39046", "provincial"])


@given(style=STYLE, table=TABLES, grade=st.sampled_from(list(Grade)))
def test_grade_encoding_is_a_bijection(style: str, table: Any, grade: Grade) -> None:
    profile = one({"style": style, "endpoint": URL, "grade_codes": table})
    codes = [profile.grade_code(g) for g in Grade]
    assert len(set(codes)) == 5
    assert profile.grade_of(profile.grade_code(grade)) is grade


@given(style=STYLE, overrides=st.dictionaries(st.sampled_from(CHANNELS), st.integers(0, 99), max_size=4),
       channel=st.sampled_from(CHANNELS))
def test_channel_encoding_is_total_and_decodes_to_a_set_that_holds_the_channel(
        style: str, overrides: dict[str, int], channel: str) -> None:
    profile = one({"style": style, "endpoint": URL, "channel_codes": overrides})
    assert set(profile.channel_codes) == set(CHANNELS)
    assert channel in profile.channels_of(profile.channel_code(channel))
    if channel in overrides:
        assert profile.channel_code(channel) == overrides[channel]


@given(st.integers(1, 40))
def test_the_backoff_doubles_from_first_seconds_and_stops_at_max_seconds(attempts: int) -> None:
    retry = Retry(30, 3600)
    assert retry.delay(attempts) == min(30 * 2 ** (attempts - 1), 3600)
    assert retry.delay(attempts + 1) >= retry.delay(attempts)


# --- the body a profile builds -------------------------------------------------------------------------------


def test_the_provincial_body_has_camel_case_fields_local_dates_and_the_reversed_digit() -> None:
    body = provincial().body(RECORD, "p:1:1", SHANGHAI)
    assert body["projectNo"] == "C-1" and body["taskCode"] == "I-1" and body["deptName"] == "公安局"
    assert body["satisfaction"] == 2 and body["pf"] == 6 and body["requestId"] == "p:1:1"
    assert body["appraiseTime"] == "2026-11-21 10:00:00" and body["finishTime"] == "2026-11-20 10:00:00"
    assert body["appraiseReasons"] == ["attitude"] and body["appraiseText"] == "排队太久"
    assert "grade" not in body and "dissatisfied" not in body.values()  # a digit only


def test_the_gbt_body_renames_drops_and_formats_as_told() -> None:
    profile = gbt(fields={"case_no": "bjbh", "staff_name": "", "text": ""}, date_format="%Y%m%d%H%M%S",
                  timezone="UTC", channel_codes={"sms": "08"})
    body = profile.body(RECORD, "p:1:1", SHANGHAI)
    assert body["bjbh"] == "C-1" and "case_no" not in body
    assert "staff_name" not in body and "text" not in body and "李四" not in body.values()
    assert body["satisfaction_code"] == 4 and body["channel_code"] == "08"
    assert body["rated_at"] == "20261121020000"  # the profile's own zone: UTC
    assert body["idempotency_key"] == "p:1:1"
    assert len(body) == len(NEUTRAL_FIELDS) - 2  # every neutral field but the two dropped


def test_iso_dates_keep_the_offset() -> None:
    body = gbt(date_format="iso").body(RECORD, "k", SHANGHAI)
    assert body["rated_at"] == "2026-11-21T10:00:00+08:00"
    assert body["completed_at"] == "2026-11-20T10:00:00+08:00"


def test_defaults_of_a_minimal_profile() -> None:
    p = gbt()
    assert (p.enabled, p.timeout_seconds, p.retry, p.timezone, p.auth.type) == (True, 10, Retry(30, 3600), None, "none")


# --- refusals, each naming its key -----------------------------------------------------------------------------


@pytest.mark.parametrize(("doc", "message"), [
    ({"endpoint": URL}, r"reporting\.hainan\.style: required"),
    ({"style": "national", "endpoint": URL}, r"reporting\.hainan\.style"),
    ({"style": "gbt39046"}, r"reporting\.hainan\.endpoint: required"),
    ({"style": "gbt39046", "endpoint": "ftp://x.cn/r"}, r"reporting\.hainan\.endpoint: expected an http"),
    ({"style": "gbt39046", "endpoint": "https://u:p@x.cn/r"}, r"reporting\.hainan\.endpoint: no credentials"),
    ({"style": "gbt39046", "endpoint": URL, "endpont": URL}, r"reporting\.hainan: unknown key\(s\) endpont"),
    ({"style": "gbt39046", "endpoint": URL, "grade_codes": "ascending"}, r"reporting\.hainan\.grade_codes"),
    ({"style": "gbt39046", "endpoint": URL,
      "grade_codes": {"very_satisfied": 1, "satisfied": 2, "basically_satisfied": 3, "dissatisfied": 4}},
     r"reporting\.hainan\.grade_codes: every grade needs a code; missing very_dissatisfied"),
    ({"style": "gbt39046", "endpoint": URL,
      "grade_codes": {"very_satisfied": 1, "satisfied": 2, "basically_satisfied": 3, "dissatisfied": 4,
                      "very_dissatisfied": 4}},
     r"reporting\.hainan\.grade_codes: dissatisfied and very_dissatisfied both have the code 4"),
    ({"style": "gbt39046", "endpoint": URL,
      "grade_codes": {"very_satisfied": 1, "satisfied": 2, "basically_satisfied": 3, "dissatisfied": 4,
                      "very_dissatisfied": 5, "great": 6}},
     r"reporting\.hainan\.grade_codes: unknown grade\(s\) great"),
    ({"style": "gbt39046", "endpoint": URL,
      "grade_codes": {"very_satisfied": True, "satisfied": 2, "basically_satisfied": 3, "dissatisfied": 4,
                      "very_dissatisfied": 5}}, r"reporting\.hainan\.grade_codes\.very_satisfied"),
    ({"style": "gbt39046", "endpoint": URL, "channel_codes": {"fax": 8}},
     r"reporting\.hainan\.channel_codes: unknown channel\(s\) fax"),
    ({"style": "gbt39046", "endpoint": URL, "fields": {"grade_name": "x"}},
     r"reporting\.hainan\.fields: unknown field\(s\) grade_name"),
    ({"style": "gbt39046", "endpoint": URL, "fields": {"grade": ""}},
     r"reporting\.hainan\.fields\.grade: cannot be left out"),
    ({"style": "gbt39046", "endpoint": URL, "fields": {"text": "case_no"}},
     r"reporting\.hainan\.fields: the upstream field\(s\) case_no would receive two values"),
    ({"style": "gbt39046", "endpoint": URL, "auth": {"type": "bearer", "token": "s3cret"}},
     r"reporting\.hainan\.auth\.token: secrets are never written in the policy file"),
    ({"style": "gbt39046", "endpoint": URL, "auth": {"type": "bearer"}},
     r"reporting\.hainan\.auth: type 'bearer' needs token_env"),
    ({"style": "gbt39046", "endpoint": URL, "auth": {"type": "basic", "password_env": "P"}},
     r"reporting\.hainan\.auth: type 'basic' needs username"),
    ({"style": "gbt39046", "endpoint": URL, "auth": {"type": "bearer", "token_env": "T", "header": "X"}},
     r"reporting\.hainan\.auth: unknown key\(s\) for type 'bearer': header"),
    ({"style": "gbt39046", "endpoint": URL, "auth": {"type": "oauth"}}, r"reporting\.hainan\.auth\.type"),
    ({"style": "gbt39046", "endpoint": URL, "auth": {"type": "bearer", "token_env": "1 TOKEN"}},
     r"reporting\.hainan\.auth\.token_env: expected the name of an environment variable"),
    ({"style": "gbt39046", "endpoint": URL, "auth": {"type": "header", "header": "X Key", "value_env": "V"}},
     r"reporting\.hainan\.auth\.header"),
    ({"style": "gbt39046", "endpoint": URL, "date_format": "yyyy-MM-dd"}, r"reporting\.hainan\.date_format"),
    ({"style": "gbt39046", "endpoint": URL, "timezone": "Mars/Olympus"}, r"reporting\.hainan\.timezone"),
    ({"style": "gbt39046", "endpoint": URL, "timeout_seconds": 0}, r"reporting\.hainan\.timeout_seconds"),
    ({"style": "gbt39046", "endpoint": URL, "retry": {"first_seconds": 60, "max_seconds": 30}},
     r"reporting\.hainan\.retry: max_seconds \(30\) is below first_seconds \(60\)"),
    ({"style": "gbt39046", "endpoint": URL, "retry": {"first": 60}}, r"reporting\.hainan\.retry"),
    ({"style": "gbt39046", "endpoint": URL, "enabled": "yes"}, r"reporting\.hainan\.enabled"),
    ({"style": "gbt39046", "endpoint": URL, "success": {"field": "code"}}, r"reporting\.hainan\.success"),
    ({"style": "gbt39046", "endpoint": URL, "success": {"field": "code", "values": []}},
     r"reporting\.hainan\.success\.values"),
    ({"style": "gbt39046", "endpoint": URL, "success": {"field": "data..status", "values": ["0"]}},
     r"reporting\.hainan\.success\.field"),
    ({"style": "gbt39046", "endpoint": URL, "success": {"field": "code", "values": ["0"], "duplicate": [[1]]}},
     r"reporting\.hainan\.success\.duplicate"),
    ({"style": "gbt39046", "endpoint": URL, "success": {"field": "code", "values": ["0"], "duplicate": [0]}},
     r"reporting\.hainan\.success: \['0'\] both a success and a duplicate"),
])
def test_a_wrong_profile_is_refused_naming_the_key(doc: dict[str, Any], message: str) -> None:
    with pytest.raises(PolicyError, match=message):
        parse_policy({"reporting": {"hainan": doc}})


def test_reporting_must_be_tables_of_profiles_with_plain_names() -> None:
    with pytest.raises(PolicyError, match=r"reporting: expected tables"):
        parse_policy({"reporting": "https://x.cn"})
    with pytest.raises(PolicyError, match=r"reporting\.海南"):
        parse_policy({"reporting": {"海南": {"style": "gbt39046", "endpoint": URL}}})


def test_a_policy_file_with_two_profiles(tmp_path: Path) -> None:
    path = tmp_path / "policy.toml"
    path.write_text(f"""
[reporting.national]
style = "gbt39046"
endpoint = "{URL}"
auth = {{ type = "hmac", secret_env = "NATIONAL_SECRET", header = "X-Sign" }}
retry = {{ first_seconds = 10, max_seconds = 600 }}

[reporting.hainan]
style = "provincial"
endpoint = "http://10.0.0.8:8080/hcp/appraise"
auth = {{ type = "basic", username = "hcp", password_env = "HAINAN_PASSWORD" }}
fields = {{ hall_code = "", idempotency_key = "serialNo" }}
channel_codes = {{ phone = 8 }}
enabled = false
""", encoding="utf-8")
    national, hainan = load_policy(path).reporting
    assert (national.name, national.auth.type, national.auth.header, national.retry) == (
        "national", "hmac", "X-Sign", Retry(10, 600))
    assert (hainan.enabled, hainan.fields["idempotency_key"], hainan.fields["hall_code"]) == (False, "serialNo", "")
    assert hainan.channel_code("phone") == 8 and hainan.grade_code(Grade.VERY_DISSATISFIED) == 1


def test_profiles_parse_apart_from_the_policy() -> None:
    assert parse_profiles({}) == ()
    with pytest.raises(ValueError, match=r"reporting\.x: expected a table"):
        parse_profiles({"x": 3})


# --- a verdict in the answer's body ------------------------------------------------------------------------


@pytest.mark.parametrize(("answer", "said"), [
    (b'{"code": "0", "msg": "\xe6\x88\x90\xe5\x8a\x9f"}', ("sent", "0")),
    (b'{"code": 0}', ("sent", "0")),
    (b'{"code": "1001", "msg": "repeat"}', ("duplicate", "1001")),
    (b'{"code": "E102", "msg": "no such item"}', ("refused", "E102")),
    (b'{"data": {"status": true}}', ("refused", None)),  # another path
    (b'{"msg": "ok"}', ("refused", None)),
    (b'{"code": {"inner": 0}}', ("refused", None)),
    (b"<html>502 Bad Gateway</html>", ("refused", None)),
    (b"\xff\xfe", ("refused", None)),
])
def test_the_answers_body_says_whether_the_record_was_taken(answer: bytes, said: tuple[str, Any]) -> None:
    profile = gbt(success={"field": "code", "values": ["0", 0], "duplicate": [1001, "1001"]})
    assert profile.success is not None and profile.success.judge(answer) == said
    nested = gbt(success={"field": "data.status", "values": [True]}).success
    assert nested is not None and nested.judge(b'{"data": {"status": true}}') == ("sent", "true")


JSON = st.recursive(st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=5),
                    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=4), inner, max_size=3))


@given(JSON)
def test_any_json_answer_gets_a_verdict_and_only_a_listed_value_is_taken(doc: Any) -> None:
    import json

    success = gbt(success={"field": "code", "values": ["0"]}).success
    assert success is not None
    said, value = success.judge(json.dumps({"code": doc}).encode())
    assert said in ("sent", "refused")
    assert (said == "sent") == (value == "0") == (doc == "0" or (type(doc) is int and doc == 0))
