"""Tests for dialogs.rating: the rating conversation as a pure state machine (see dialogs/rating.md)."""

from __future__ import annotations

import json
from dataclasses import replace
from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from dialogs import messages as m
from dialogs.grades import Grade
from dialogs.parse import has_words
from dialogs.rating import OTHER, Rules, State, Step, remind, step
from dialogs.types import AddText, CaseView, Context, Inbound, OptOut, Outcome, RecordRating, Reply

NOW = datetime(2026, 11, 21, 10, tzinfo=UTC)
PHONE = "+8613800138000"
G = Grade

CODES = ("attitude", "efficiency", "process", "guide", "trips", "platform", "fees", OTHER)
LABELS = ("服务态度差", "办事效率低", "办事流程繁琐", "办事指南不清楚", "多次跑动", "平台不好用", "收费不合理", "其他")
RULES = Rules(reasons=CODES, labels=LABELS)
NUMBERED = tuple(enumerate(CODES, start=1))

CASE = CaseView(
    id=41,
    case_no="GD-2026-000041",
    item_name="居民身份证换领",
    agency_name="汕头市公安局龙湖分局",
    completed_at=datetime(2026, 11, 20, 6, 30, tzinfo=UTC),
    link="https://hcp.example.cn/r/41?sig=abc",
)
NEXT_CASE = CaseView(
    id=42,
    case_no="GD-2026-000042",
    item_name="不动产登记",
    agency_name="汕头市自然资源局",
    completed_at=datetime(2026, 11, 20, 8, 0, tzinfo=UTC),
    link="https://hcp.example.cn/r/42?sig=def",
)


def msg(text: str, at: datetime = NOW) -> Inbound:
    return Inbound(channel="sms", address=PHONE, text=text, message_id="SM0001", received_at=at)


def open_ctx(case: CaseView = CASE, oldest: CaseView | None = None) -> Context:
    """A conversation is open for `case`."""
    return Context(case=case, oldest_unrated=oldest, unrated=1, known=True)


def at(s: Step, *, grade: Grade | None = None, reasons: tuple[str, ...] = (), misses: int = 0,
       expires_at: datetime | None = None, case_id: int = CASE.id) -> State:
    return State(case_id=case_id, step=s, expires_at=expires_at or NOW + RULES.ttl, grade=grade,
                 reasons=reasons, misses=misses)


def keys(out: Outcome) -> list[str]:
    return [r.key for r in out.replies]


def menu_for(case: CaseView, count: int = 1) -> Reply:
    return Reply(m.MENU, {"item": case.item_name, "completed_at": case.completed_at, "link": case.link,
                          "count": count})


# --- the reminder ------------------------------------------------------------------------------------


def test_remind_opens_the_grade_step() -> None:
    out = remind(CASE, RULES, NOW)
    assert out.state == State(case_id=CASE.id, step=Step.GRADE, expires_at=NOW + timedelta(hours=24))
    assert out.replies == (
        Reply(m.REMINDER, {"item": "居民身份证换领", "agency": "汕头市公安局龙湖分局",
                           "completed_at": CASE.completed_at, "link": CASE.link}),
    )
    assert out.effects == ()


def test_remind_uses_the_rules_ttl() -> None:
    rules = replace(RULES, ttl=timedelta(hours=2))
    out = remind(NEXT_CASE, rules, NOW)
    assert out.state is not None
    assert out.state.case_id == NEXT_CASE.id
    assert out.state.expires_at == NOW + timedelta(hours=2)
    assert out.replies[0].params["link"] == NEXT_CASE.link


# --- GRADE ----------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "text, grade",
    [
        pytest.param("1", G.VERY_SATISFIED, id="1"),
        pytest.param("2", G.SATISFIED, id="2"),
        pytest.param("3", G.BASICALLY_SATISFIED, id="3"),
        pytest.param("２", G.SATISFIED, id="fullwidth-2"),
        pytest.param("这次办事非常满意，谢谢！", G.VERY_SATISFIED, id="words-in-sentence"),
        pytest.param("基本滿意", G.BASICALLY_SATISFIED, id="traditional"),
        pytest.param("satisfied", G.SATISFIED, id="english"),
    ],
)
def test_good_grade_is_recorded_and_closes(text: str, grade: Grade) -> None:
    out = step(at(Step.GRADE), msg(text), open_ctx(), RULES, NOW)
    assert out.state is None
    assert out.effects == (RecordRating(CASE.id, grade),)
    assert out.effects[0].reasons == () and out.effects[0].text is None
    assert keys(out) == [m.THANKS]


@pytest.mark.parametrize(
    "text, grade",
    [
        pytest.param("4", G.DISSATISFIED, id="4"),
        pytest.param("5", G.VERY_DISSATISFIED, id="5"),
        pytest.param("５", G.VERY_DISSATISFIED, id="fullwidth-5"),
        pytest.param("不满意", G.DISSATISFIED, id="dissatisfied-words"),
        pytest.param("非常不满意", G.VERY_DISSATISFIED, id="longest-word-wins"),
    ],
)
def test_bad_grade_asks_for_reasons_and_records_nothing(text: str, grade: Grade) -> None:
    out = step(at(Step.GRADE, misses=1), msg(text), open_ctx(), RULES, NOW)
    assert out.effects == ()
    assert out.state == State(case_id=CASE.id, step=Step.REASONS, expires_at=NOW + RULES.ttl, grade=grade)
    assert out.replies == (Reply(m.ASK_REASONS, {"reasons": NUMBERED}),)
    assert out.replies[0].params["reasons"][0] == (1, "attitude")
    assert out.replies[0].params["reasons"][-1] == (8, "other")


def test_ask_reasons_follows_the_rules_order() -> None:
    rules = Rules(reasons=("slow", OTHER, "rude"), labels=("慢", "其他", "态度差"))
    out = step(at(Step.GRADE), msg("5"), open_ctx(), rules, NOW)
    assert out.replies == (Reply(m.ASK_REASONS, {"reasons": ((1, "slow"), (2, OTHER), (3, "rude"))}),)


@pytest.mark.parametrize(
    "texts",
    [
        pytest.param(["好的", "嗯", "?"], id="chatter"),
        pytest.param(["", "   ", "\x00"], id="empty"),
        pytest.param(["1 2", "满意 4", "非常满意 不满意"], id="ambiguous"),
        pytest.param(["2026年", "6", "https://hcp.example.cn/r/4"], id="numbers-not-grades"),
        pytest.param(["stop it", "TD me", "不要退订"], id="not-opt-outs"),
    ],
)
def test_unreadable_grade_reprompts_twice_then_gives_the_link(texts: list[str]) -> None:
    state: State | None = at(Step.GRADE)
    expected = [
        Reply(m.REPROMPT, {"item": CASE.item_name}),
        Reply(m.REPROMPT, {"item": CASE.item_name}),
        Reply(m.USE_LINK, {"link": CASE.link}),
    ]
    for i, (text, reply) in enumerate(zip(texts, expected, strict=True), start=1):
        out = step(state, msg(text), open_ctx(), RULES, NOW)
        assert out.replies == (reply,), text
        assert out.effects == ()
        assert out.state is not None
        assert out.state.step is Step.GRADE
        assert out.state.misses == i
        assert out.state.case_id == CASE.id
        state = out.state
    # Still open: a readable grade after the link is recorded.
    out = step(state, msg("2"), open_ctx(), RULES, NOW)
    assert out.effects == (RecordRating(CASE.id, G.SATISFIED),)


def test_max_reprompts_comes_from_the_rules() -> None:
    rules = replace(RULES, max_reprompts=0)
    out = step(at(Step.GRADE), msg("?"), open_ctx(), rules, NOW)
    assert out.replies == (Reply(m.USE_LINK, {"link": CASE.link}),)


# --- REASONS ----------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "text, codes",
    [
        pytest.param("1 3", ("attitude", "process"), id="space"),
        pytest.param("1,3", ("attitude", "process"), id="comma"),
        pytest.param("1，3", ("attitude", "process"), id="fullwidth-comma"),
        pytest.param("１、３", ("attitude", "process"), id="fullwidth-digits"),
        pytest.param("13", ("attitude", "process"), id="run-together"),
        pytest.param("1和3", ("attitude", "process"), id="he"),
        pytest.param("3 1 3", ("process", "attitude"), id="order-kept-duplicates-collapse"),
        pytest.param("服务态度差", ("attitude",), id="label"),
    ],
)
@pytest.mark.parametrize("grade", [G.DISSATISFIED, G.VERY_DISSATISFIED], ids=["dissatisfied", "very"])
def test_reasons_record_the_rating(text: str, codes: tuple[str, ...], grade: Grade) -> None:
    out = step(at(Step.REASONS, grade=grade), msg(text), open_ctx(), RULES, NOW)
    assert out.effects == (RecordRating(CASE.id, grade, codes),)
    assert keys(out) == [m.THANKS_BAD]
    assert out.state == State(case_id=CASE.id, step=Step.MORE_TEXT, expires_at=NOW + timedelta(minutes=30),
                              grade=grade, reasons=codes)


@pytest.mark.parametrize("text", ["2 8", "2，其他", "其他、2"], ids=["digits", "digit-and-label", "label-first"])
def test_other_among_reasons_still_asks_for_the_persons_words(text: str) -> None:
    """As the API refuses 其他 without text (422), the dialog asks for the words before storing anything."""
    out = step(at(Step.REASONS, grade=G.DISSATISFIED), msg(text), open_ctx(), RULES, NOW)
    assert out.effects == ()
    assert keys(out) == [m.ASK_TEXT]
    assert out.state is not None and out.state.step is Step.TEXT
    assert set(out.state.reasons) == {"efficiency", OTHER}


@pytest.mark.parametrize(
    "text, codes, words",
    [
        pytest.param("1，窗口态度太差了", ("attitude",), "窗口态度太差了", id="number-then-words"),
        pytest.param("2、5\n跑了三趟还没办好", ("efficiency", "trips"), "跑了三趟还没办好",
                     id="numbers-line-then-words"),
        pytest.param("其他：排队排了一上午", (OTHER,), "排队排了一上午", id="other-with-its-words"),
    ],
)
def test_an_explanation_after_the_numbers_is_stored_with_them(text: str, codes: tuple[str, ...], words: str) -> None:
    out = step(at(Step.REASONS, grade=G.DISSATISFIED), msg(text), open_ctx(), RULES, NOW)
    assert out.effects == (RecordRating(CASE.id, G.DISSATISFIED, codes, words),)
    assert keys(out) == [m.THANKS_TEXT]
    assert out.state is None


def test_more_text_ttl_comes_from_the_rules() -> None:
    rules = replace(RULES, more_text_ttl=timedelta(minutes=5))
    out = step(at(Step.REASONS, grade=G.DISSATISFIED), msg("1"), open_ctx(), rules, NOW)
    assert out.state is not None
    assert out.state.expires_at == NOW + timedelta(minutes=5)


@pytest.mark.parametrize(
    "text", ["其他", "8", "８", "其他 8", " 其他。"], ids=["label", "digit", "fullwidth", "both", "padded"]
)
def test_only_other_asks_for_text_and_records_nothing(text: str) -> None:
    out = step(at(Step.REASONS, grade=G.VERY_DISSATISFIED), msg(text), open_ctx(), RULES, NOW)
    assert out.effects == ()
    assert keys(out) == [m.ASK_TEXT]
    assert out.state == State(case_id=CASE.id, step=Step.TEXT, expires_at=NOW + RULES.ttl,
                              grade=G.VERY_DISSATISFIED, reasons=(OTHER,))


@pytest.mark.parametrize(
    "text",
    ["0", "9", "1 9", "态度不好", "", "4 好慢"],
    ids=["zero", "nine", "one-out-of-range", "words", "empty", "mixed"],
)
def test_unreadable_reasons_reprompt_then_give_the_link(text: str) -> None:
    state: State | None = at(Step.REASONS, grade=G.DISSATISFIED)
    for i in (1, 2):
        out = step(state, msg(text), open_ctx(), RULES, NOW)
        assert out.effects == ()
        assert out.replies == (Reply(m.REPROMPT_REASONS, {"reasons": NUMBERED}),)
        assert out.state is not None
        assert (out.state.step, out.state.grade, out.state.misses) == (Step.REASONS, G.DISSATISFIED, i)
        state = out.state
    out = step(state, msg(text), open_ctx(), RULES, NOW)
    assert out.replies == (Reply(m.USE_LINK, {"link": CASE.link}),)
    assert out.effects == ()
    assert out.state is not None and out.state.step is Step.REASONS


# --- TEXT (only 其他 chosen) ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    "text, stored",
    [
        pytest.param("窗口人员态度不好", "窗口人员态度不好", id="chinese"),
        pytest.param("  等了3个小时！ \n", "等了3个小时！", id="trimmed"),
        pytest.param("too slow", "too slow", id="english"),
        pytest.param("5", None, id="digit-is-not-text"),
    ],
)
def test_text_after_other(text: str, stored: str | None) -> None:
    state = at(Step.TEXT, grade=G.DISSATISFIED, reasons=(OTHER,))
    out = step(state, msg(text), open_ctx(), RULES, NOW)
    if stored is None:
        assert out.effects == ()
        assert keys(out) == [m.ASK_TEXT]
        assert out.state is not None and out.state.step is Step.TEXT
    else:
        assert out.effects == (RecordRating(CASE.id, G.DISSATISFIED, (OTHER,), stored),)
        assert keys(out) == [m.THANKS_TEXT]
        assert out.state is None


@pytest.mark.parametrize("text", ["123", "。。。", "!!", "", "   ", "1, 3"], ids=["digits", "ideographic-stops",
                                                                              "bangs", "empty", "blanks", "numbers"])
def test_no_words_at_text_asks_again(text: str) -> None:
    state = at(Step.TEXT, grade=G.VERY_DISSATISFIED, reasons=(OTHER,))
    out = step(state, msg(text), open_ctx(), RULES, NOW)
    assert out.effects == ()
    assert out.replies == (Reply(m.ASK_TEXT),)
    assert out.state is not None
    assert (out.state.step, out.state.grade, out.state.reasons, out.state.misses) == (
        Step.TEXT, G.VERY_DISSATISFIED, (OTHER,), 1)


def test_other_then_words_full_conversation() -> None:
    out = remind(CASE, RULES, NOW)
    replies: list[str] = []
    effects: list[object] = []
    for text in ["5", "其他", "。。。", "材料被退回三次，没有一次性告知"]:
        out = step(out.state, msg(text), open_ctx(), RULES, NOW)
        replies += keys(out)
        effects += out.effects
    assert replies == [m.ASK_REASONS, m.ASK_TEXT, m.ASK_TEXT, m.THANKS_TEXT]
    assert effects == [RecordRating(CASE.id, G.VERY_DISSATISFIED, (OTHER,), "材料被退回三次，没有一次性告知")]
    assert out.state is None


# --- MORE_TEXT -------------------------------------------------------------------------------------------


def test_more_text_words_are_added() -> None:
    state = at(Step.MORE_TEXT, grade=G.DISSATISFIED, reasons=("attitude",), expires_at=NOW + timedelta(minutes=30))
    out = step(state, msg("  窗口人员一直在玩手机 "), open_ctx(), RULES, NOW)
    assert out.effects == (AddText(CASE.id, "窗口人员一直在玩手机"),)
    assert keys(out) == [m.THANKS_TEXT]
    assert out.state is None


@pytest.mark.parametrize("text", ["2", "４", "1 3", "。"], ids=["digit", "fullwidth-digit", "numbers", "punctuation"])
def test_more_text_bare_digit_is_a_new_message(text: str) -> None:
    state = at(Step.MORE_TEXT, grade=G.DISSATISFIED, reasons=("attitude",), expires_at=NOW + timedelta(minutes=30))
    ctx = Context(case=CASE, oldest_unrated=NEXT_CASE, unrated=3, known=True)
    out = step(state, msg(text), ctx, RULES, NOW)
    assert out.effects == ()
    assert out.replies == (menu_for(NEXT_CASE, 3),)
    assert out.state == State(case_id=NEXT_CASE.id, step=Step.GRADE, expires_at=NOW + RULES.ttl)


def test_more_text_bare_digit_with_nothing_left_to_rate() -> None:
    state = at(Step.MORE_TEXT, grade=G.DISSATISFIED, reasons=("attitude",), expires_at=NOW + timedelta(minutes=30))
    ctx = Context(case=CASE, oldest_unrated=None, unrated=0, known=True)
    out = step(state, msg("2"), ctx, RULES, NOW)
    assert out == Outcome(None, (Reply(m.NOTHING_TO_RATE),), ())


# --- without a conversation -------------------------------------------------------------------------


@pytest.mark.parametrize("text", ["1", "4", "非常满意", "你好", ""], ids=["good-digit", "bad-digit", "words", "hello",
                                                                      "empty"])
@pytest.mark.parametrize("unrated, count", [(0, 1), (1, 1), (3, 3)], ids=["unrated-0", "unrated-1", "unrated-3"])
def test_no_conversation_sends_the_menu_and_is_not_a_grade(text: str, unrated: int, count: int) -> None:
    ctx = Context(case=None, oldest_unrated=NEXT_CASE, unrated=unrated, known=True)
    out = step(None, msg(text), ctx, RULES, NOW)
    assert out.effects == ()
    assert out.replies == (menu_for(NEXT_CASE, count),)
    assert out.state == State(case_id=NEXT_CASE.id, step=Step.GRADE, expires_at=NOW + RULES.ttl)


@pytest.mark.parametrize(
    "known, key", [(True, m.NOTHING_TO_RATE), (False, m.UNKNOWN_SENDER)], ids=["known", "unknown"]
)
@pytest.mark.parametrize("text", ["1", "满意", "hi"], ids=["digit", "word", "hello"])
def test_no_conversation_and_nothing_to_rate(known: bool, key: str, text: str) -> None:
    ctx = Context(case=None, oldest_unrated=None, unrated=0, known=known)
    out = step(None, msg(text), ctx, RULES, NOW)
    assert out == Outcome(None, (Reply(key),), ())


@pytest.mark.parametrize(
    "state, ctx",
    [
        pytest.param(at(Step.GRADE, expires_at=NOW), open_ctx(oldest=NEXT_CASE), id="grade-expires-now"),
        pytest.param(at(Step.GRADE, expires_at=NOW - timedelta(seconds=1)), open_ctx(oldest=NEXT_CASE),
                     id="grade-expired"),
        pytest.param(at(Step.REASONS, grade=G.DISSATISFIED, expires_at=NOW - timedelta(hours=1)),
                     open_ctx(oldest=NEXT_CASE), id="reasons-expired"),
        pytest.param(at(Step.TEXT, grade=G.DISSATISFIED, reasons=(OTHER,), expires_at=NOW - timedelta(hours=1)),
                     open_ctx(oldest=NEXT_CASE), id="text-expired"),
        pytest.param(at(Step.GRADE), Context(case=None, oldest_unrated=NEXT_CASE, unrated=1, known=True),
                     id="ctx-case-none"),
        pytest.param(at(Step.GRADE), Context(case=NEXT_CASE, oldest_unrated=NEXT_CASE, unrated=1, known=True),
                     id="ctx-case-different"),
        pytest.param(at(Step.REASONS, grade=G.VERY_DISSATISFIED),
                     Context(case=NEXT_CASE, oldest_unrated=NEXT_CASE, unrated=1, known=True),
                     id="reasons-ctx-case-different"),
    ],
)
def test_stale_conversation_is_no_conversation(state: State, ctx: Context) -> None:
    out = step(state, msg("1"), ctx, RULES, NOW)
    assert out.effects == ()
    assert out.replies == (menu_for(NEXT_CASE),)
    assert out.state == State(case_id=NEXT_CASE.id, step=Step.GRADE, expires_at=NOW + RULES.ttl)


def test_expired_conversation_without_anything_to_rate() -> None:
    state = at(Step.GRADE, expires_at=NOW - timedelta(minutes=1))
    ctx = Context(case=CASE, oldest_unrated=None, unrated=0, known=True)
    assert step(state, msg("1"), ctx, RULES, NOW) == Outcome(None, (Reply(m.NOTHING_TO_RATE),), ())


def test_just_before_expiry_is_still_open() -> None:
    state = at(Step.GRADE, expires_at=NOW + timedelta(microseconds=1))
    out = step(state, msg("1"), open_ctx(oldest=NEXT_CASE), RULES, NOW)
    assert out.effects == (RecordRating(CASE.id, G.VERY_SATISFIED),)


# --- opt-out -------------------------------------------------------------------------------------------

_STATES = [
    pytest.param(None, id="no-state"),
    pytest.param(at(Step.GRADE), id="grade"),
    pytest.param(at(Step.GRADE, misses=3), id="grade-after-link"),
    pytest.param(at(Step.REASONS, grade=G.DISSATISFIED), id="reasons"),
    pytest.param(at(Step.TEXT, grade=G.DISSATISFIED, reasons=(OTHER,)), id="text"),
    pytest.param(at(Step.MORE_TEXT, grade=G.DISSATISFIED, reasons=("fees",)), id="more-text"),
    pytest.param(at(Step.GRADE, expires_at=NOW - timedelta(days=1)), id="expired"),
]


@pytest.mark.parametrize("state", _STATES)
@pytest.mark.parametrize("text", ["退订", "TD", "td", "STOP", "stop", "取消", "ＴＤ", " 退订！ "],
                         ids=["tuiding", "TD", "td", "STOP", "stop", "quxiao", "fullwidth-TD", "padded"])
def test_opt_out_in_any_state(state: State | None, text: str) -> None:
    out = step(state, msg(text), open_ctx(oldest=NEXT_CASE), RULES, NOW)
    assert out == Outcome(None, (Reply(m.OPTED_OUT),), (OptOut(),))


def test_opt_out_without_known_sender() -> None:
    ctx = Context(case=None, oldest_unrated=None, unrated=0, known=False)
    assert step(None, msg("STOP"), ctx, RULES, NOW) == Outcome(None, (Reply(m.OPTED_OUT),), (OptOut(),))


@pytest.mark.parametrize("state", _STATES[1:5])
def test_stop_it_is_not_an_opt_out(state: State) -> None:
    out = step(state, msg("stop it"), open_ctx(oldest=NEXT_CASE), RULES, NOW)
    assert not any(isinstance(e, OptOut) for e in out.effects)
    assert m.OPTED_OUT not in keys(out)


# --- State JSON ----------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "state",
    [
        pytest.param(at(Step.GRADE), id="grade"),
        pytest.param(at(Step.GRADE, misses=2), id="grade-misses"),
        pytest.param(at(Step.REASONS, grade=G.VERY_DISSATISFIED, misses=1), id="reasons"),
        pytest.param(at(Step.TEXT, grade=G.DISSATISFIED, reasons=(OTHER,)), id="text"),
        pytest.param(at(Step.MORE_TEXT, grade=G.DISSATISFIED, reasons=("attitude", "fees")), id="more-text"),
        pytest.param(State(7, Step.GRADE, datetime(2026, 11, 21, 18, 0, 0, 123456, tzinfo=UTC)), id="microseconds"),
    ],
)
def test_state_round_trips_through_json(state: State) -> None:
    data = json.loads(json.dumps(state.to_json()))
    back = State.from_json(data)
    assert back == state
    assert back.expires_at.utcoffset() == state.expires_at.utcoffset()
    assert isinstance(back.step, Step)
    assert back.grade is None or isinstance(back.grade, Grade)
    assert isinstance(back.reasons, tuple)


def test_state_json_is_plain() -> None:
    data = at(Step.REASONS, grade=G.DISSATISFIED).to_json()
    assert data == {"dialog": "rating", "case_id": CASE.id, "step": "reasons",
                    "expires_at": "2026-11-22T10:00:00+00:00", "grade": "dissatisfied", "reasons": [], "misses": 0}


_STATES_ST = st.builds(
    State,
    case_id=st.integers(1, 2**53),
    step=st.sampled_from(Step),
    expires_at=st.datetimes(timezones=st.just(UTC)),
    grade=st.none() | st.sampled_from(Grade),
    reasons=st.lists(st.sampled_from(CODES), unique=True).map(tuple),
    misses=st.integers(0, 100),
)


@given(_STATES_ST)
def test_any_state_round_trips_through_json(state: State) -> None:
    assert State.from_json(json.loads(json.dumps(state.to_json()))) == state


# --- bugs seen through the dialog --------------------------------------------------------------------


def test_grade_step_survives_a_turkish_i() -> None:
    out = step(at(Step.GRADE), msg("satısfıed"), open_ctx(), RULES, NOW)
    assert out.state is not None or out.effects


# --- properties: any sequence of messages --------------------------------------------------------------

_TEXTS = st.one_of(
    st.sampled_from([
        "1", "2", "3", "4", "5", "４", "非常不满意", "满意", "1 3", "13", "8", "其他", "9", "0", "",
        "窗口人员态度不好", "。。。", "退订", "TD", "stop it", "2026年", "1 2", "服务态度差、其他",
    ]),
    st.text(max_size=40),
)
_GAPS = st.sampled_from([timedelta(0), timedelta(seconds=5), timedelta(minutes=31), timedelta(hours=25)])


@settings(max_examples=300)
@given(st.lists(st.tuples(_TEXTS, _GAPS), max_size=12), st.sampled_from([RULES, replace(RULES, max_reprompts=0)]))
def test_any_message_sequence_is_safe(messages: list[tuple[str, timedelta]], rules: Rules) -> None:
    out = remind(CASE, rules, NOW)
    state = out.state
    now = NOW
    ratings: list[RecordRating] = []
    for text, gap in messages:
        now += gap
        rated = bool(ratings)
        # What the application would know: the open conversation's case, and whether the case is still unrated.
        ctx = Context(
            case=CASE if state is not None and state.case_id == CASE.id else None,
            oldest_unrated=None if rated else CASE,
            unrated=0 if rated else 1,
            known=True,
        )
        out = step(state, msg(text, now), ctx, rules, now)
        for reply in out.replies:
            assert reply.key in m.ALL
        for effect in out.effects:
            assert isinstance(effect, RecordRating | AddText | OptOut)
            if isinstance(effect, RecordRating):
                assert effect.case_id == CASE.id
                assert set(effect.reasons) <= set(rules.reasons)
                if effect.grade.is_bad:
                    assert effect.reasons or (effect.text and has_words(effect.text))
                else:
                    assert effect.reasons == () and effect.text is None
                ratings.append(effect)
            elif isinstance(effect, AddText):
                assert ratings, "text added before any rating was stored"
                assert effect.case_id == CASE.id
                assert has_words(effect.text)
        assert len(out.replies) == 1
        assert len(ratings) <= 1
        if out.state is not None:
            assert out.state.expires_at > now
            assert out.state.grade is not None or out.state.step is Step.GRADE
        # The application stores the state as JSON between messages.
        state = State.from_json(json.loads(json.dumps(out.state.to_json()))) if out.state else None


# --- a barred rater (Hainan art. 19) ---------------------------------------------------------------------


@pytest.mark.parametrize("state", [None, at(Step.GRADE), at(Step.REASONS, grade=G.DISSATISFIED)])
@pytest.mark.parametrize("text", ["1", "5", "你好", "列表"])
def test_a_barred_rater_is_told_until_when_and_nothing_is_stored(state: State | None, text: str) -> None:
    until = NOW + timedelta(days=30)
    ctx = replace(open_ctx(), oldest_unrated=CASE, barred_until=until)

    out = step(state, msg(text), ctx, RULES, NOW)

    assert out == Outcome(None, (Reply(m.BARRED, {"until": until}),))


def test_a_barred_rater_may_still_opt_out_and_a_bar_ends() -> None:
    barred = replace(open_ctx(), barred_until=NOW + timedelta(days=1))
    over = replace(open_ctx(), barred_until=NOW)

    assert step(at(Step.GRADE), msg("退订"), barred, RULES, NOW).effects == (OptOut(),)
    assert step(at(Step.GRADE), msg("2"), over, RULES, NOW).effects == (RecordRating(CASE.id, G.SATISFIED),)
