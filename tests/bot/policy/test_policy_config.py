"""The policy file and the configuration: defaults, overrides, and clear refusals."""

from __future__ import annotations

import sys
from datetime import date, time
from pathlib import Path

import pytest

from bot.infra.config import ConfigError, load_settings
from bot.policy.rules import DaySpan, Policy, PolicyError, load_policy, parse_policy
from bot.policy.statistics import PublishSchedule
from dialogs.grades import Grade

ACCEPTANCE_POLICY = Path(__file__).resolve().parents[4] / "shared" / "acceptance" / "tests" / "support.py"


def test_the_built_in_policy_is_the_contracts():
    p = load_policy(None)
    assert (p.timezone, p.reminder_after_hours, p.quiet_hours) == ("Asia/Shanghai", 24, (time(21), time(8)))
    assert p.default_grade is Grade.BASICALLY_SATISFIED and p.default_after == DaySpan(5, "working")
    assert p.work_order == {"dispatch": 2, "rectify": 10, "review": 3}
    assert list(p.reasons) == ["attitude", "efficiency", "process", "guide", "trips", "platform", "fees", "other"]


def test_a_full_policy_file_parses(tmp_path):
    f = tmp_path / "p.toml"
    f.write_text("""
timezone = "Asia/Urumqi"
reminder_after_hours = 2
quiet_hours = ["22:00", "07:30"]
default_grade = "satisfied"
default_after = { days = 7, unit = "natural" }
calendar_overrides = { holidays = ["2031-01-02"], workdays = ["2031-01-04"] }
[reasons]
slow = "太慢"
other = "其他"
""", encoding="utf-8")
    p = load_policy(f)
    assert p.tz.key == "Asia/Urumqi" and p.quiet_hours == (time(22), time(7, 30))
    assert p.default_after == DaySpan(7, "natural") and p.default_grade is Grade.SATISFIED
    assert p.holidays == {date(2031, 1, 2)} and p.workdays == {date(2031, 1, 4)}
    assert p.reasons == {"slow": "太慢", "other": "其他"}


@pytest.mark.parametrize(("doc", "names"), [
    ({"default_afer": {"days": 5}}, "default_afer"),
    ({"default_grade": "great"}, "default_grade"),
    ({"default_after": {"days": -1}}, "default_after.days"),
    ({"default_after": {"days": 5, "unit": "lunar"}}, "default_after.unit"),
    ({"quiet_hours": ["25:00"]}, "quiet_hours"),
    ({"timezone": "Mars/Olympus"}, "timezone"),
    ({"reasons": {}}, "reasons"),
    ({"calendar_overrides": {"holidays": ["2026-13-01"]}}, "calendar_overrides.holidays"),
    ({"calendar_overrides": {"holidays": ["2031-01-02"], "workdays": ["2031-01-02"]}}, "calendar_overrides"),
    ({"statistics": {"weights": {"score": 1, "fame": 2}}}, "statistics.weights"),
    ({"statistics": {"weights": {"score": -1}}}, "statistics.weights.score"),
    ({"statistics": {"weights": {"score": 0, "coverage": 0}}}, "statistics.weights"),
    ({"statistics": {"rank_min_cases": 1.5}}, "statistics.rank_min_cases"),
    ({"statistics": {"rank_by": "score"}}, "statistics"),
    ({"statistics": {"publish": {"after": {"days": 5}}}}, "statistics.publish"),
    ({"statistics": {"publish": {"every": "week"}}}, "statistics.publish.every"),
    ({"statistics": {"publish": {"every": "month", "after": {"days": 5, "unit": "lunar"}}}},
     "statistics.publish.after.unit"),
    ({"statistics": {"publish": {"every": "month", "after": {"days": 400}}}}, "statistics.publish.after.days"),
    ({"halls": {"H1": {"district": "D1"}}}, "halls.H1"),
    ({"halls": {"H1": {"name": "一号", "rating": "yes"}}}, "halls.H1.rating"),
    ({"halls": {"H1": {"name": "一号", "district": 440507}}}, "halls.H1.district"),
])
def test_a_wrong_policy_is_refused_naming_the_key(doc, names):
    with pytest.raises(PolicyError, match=names.replace(".", r"\.")):
        parse_policy(doc)


def test_publication_is_by_hand_unless_the_policy_sets_a_period_and_its_delay():
    assert Policy().statistics.publish is None
    quarterly = parse_policy({"statistics": {"publish": {"every": "quarter"}}}).statistics.publish
    assert quarterly == PublishSchedule("quarter", DaySpan(5, "working"))
    monthly = parse_policy({"statistics": {"publish": {"every": "month", "after": {"days": 20, "unit": "natural"}}}})
    assert monthly.statistics.publish == PublishSchedule("month", DaySpan(20, "natural"))


def test_statistics_weights_left_out_weigh_nothing_and_halls_default_to_rating():
    policy = parse_policy({"statistics": {"weights": {"score": 3, "participation": 1}},
                           "halls": {"H1": {"name": "一号大厅", "district": "D1"}}})
    assert policy.statistics.weights == {"score": 3.0, "rectification": 0.0, "coverage": 0.0, "participation": 1.0}
    assert policy.statistics.halls["H1"].rating is True and policy.statistics.halls["H1"].district == "D1"
    assert Policy().statistics.weights == {"score": 40.0, "rectification": 30.0, "coverage": 10.0,
                                           "participation": 20.0}


def test_a_missing_or_broken_policy_file_is_a_clear_error(tmp_path):
    with pytest.raises(PolicyError, match="does not exist"):
        load_policy(tmp_path / "nope.toml")
    bad = tmp_path / "bad.toml"
    bad.write_text("timezone = ", encoding="utf-8")
    with pytest.raises(PolicyError, match=r"bad\.toml"):
        load_policy(bad)


def test_the_acceptance_suites_policy_parses():
    if not ACCEPTANCE_POLICY.exists():
        pytest.skip("../shared/acceptance is not beside this checkout")
    sys.path.insert(0, str(ACCEPTANCE_POLICY.parent))
    try:
        from support import POLICY_TOML  # type: ignore[import-not-found]
    finally:
        sys.path.pop(0)
    import tomllib

    assert parse_policy(tomllib.loads(POLICY_TOML)) == Policy()


def test_quiet_hours_are_half_open_and_may_be_switched_off():
    p = Policy()
    assert p.in_quiet_hours(time(21)) and p.in_quiet_hours(time(7, 59)) and not p.in_quiet_hours(time(8))
    assert not Policy(quiet_hours=(time(0), time(0))).in_quiet_hours(time(3))


def test_settings_come_from_the_environment_over_the_file(tmp_path):
    (tmp_path / "haochaping.toml").write_text(
        'database_url = "sqlite+aiosqlite:///file.db"\nHAOCHAPING_API_TOKEN = "from-file"\nscheduler = false\n',
        encoding="utf-8")
    s = load_settings({"HAOCHAPING_API_TOKEN": "from-env", "HAOCHAPING_PUBLIC_URL": "https://x.gov.cn/"}, tmp_path)
    assert s.database_url == "sqlite+aiosqlite:///file.db" and s.api_token == "from-env"
    assert s.public_url == "https://x.gov.cn" and s.scheduler is False and not s.twilio_enabled


def test_the_embedded_defaults(tmp_path):
    s = load_settings({}, tmp_path)
    assert s.database_url == "sqlite+aiosqlite:///haochaping.db" and s.redis_url is None and s.api_token is None
    assert s.public_url == "http://127.0.0.1:8080" and s.scheduler is True
    assert (s.tick_interval, s.send_lease, s.send_timeout) == (5.0, 120.0, 15.0)


def test_the_timing_settings_are_seconds_and_bad_values_are_named(tmp_path):
    (tmp_path / "haochaping.toml").write_text("tick_interval = 0.5\nsend_lease = 30\n", encoding="utf-8")
    s = load_settings({"HAOCHAPING_SEND_TIMEOUT": "2.5"}, tmp_path)
    assert (s.tick_interval, s.send_lease, s.send_timeout) == (0.5, 30.0, 2.5)
    (tmp_path / "haochaping.toml").unlink()
    for bad in ("0", "-1", "soon", "nan", "1e9"):
        with pytest.raises(ConfigError, match="HAOCHAPING_SEND_LEASE"):
            load_settings({"HAOCHAPING_SEND_LEASE": bad}, tmp_path)
    with pytest.raises(ConfigError, match="shorter than one attempt"):  # 2 × 15 + 1 = 31 s at least
        load_settings({"HAOCHAPING_SEND_LEASE": "30"}, tmp_path)
    assert load_settings({"HAOCHAPING_SEND_LEASE": "2", "HAOCHAPING_SEND_TIMEOUT": "0.5"}, tmp_path).send_lease == 2


def test_an_unknown_key_in_the_file_is_refused(tmp_path):
    (tmp_path / "haochaping.toml").write_text('databse_url = "x"\n', encoding="utf-8")
    with pytest.raises(ConfigError, match="databse_url"):
        load_settings({}, tmp_path)
