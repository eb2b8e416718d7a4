"""From a bad review to closure: the work order's lifecycle (Shantou art. 35–37, Hainan art. 13–15).

created → dispatch (L1) → dispatched → rectify (L2, with a note) → rectified → review (L1) → reviewed
→ callback → closed (satisfied / basically_satisfied); a dissatisfied callback sends it back to
`dispatched` at most `callback_reopen_limit` times, then closes it `unresolved`; the
`unreachable_after`-th unreachable callback closes it `unreachable`. Only a satisfied answer is a
rating (the case's latest, Hainan art. 15); a dissatisfied one changes no score and no figure. An appeal
may run beside the steps; upheld, it closes the work order `excluded`, excludes the review and counts a
strike against the rater, one per review however many work orders a batch or bundle rating opened
(Shandong art. 17).

Every change is one event in the work order's history, written in the same transaction as the
change; each step's deadline is counted in working days from the moment the previous step was
recorded. The transition table below is the only place that says which step may follow which.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime, timedelta
from typing import Any

from sqlmodel.ext.asyncio.session import AsyncSession

from bot.figures.reporting import queue as reporting
from bot.infra import audit
from bot.infra.refusals import Invalid, NotFound, NotNow, NotYours
from bot.infra.runtime import Runtime
from bot.policy import handling
from bot.policy.spans import DaySpan
from bot.work_orders import callback_sms, deadlines
from bot.work_orders.actors import SYSTEM, Actor, choice_field, text_field
from bot.work_orders.deadlines import Facts
from dialogs import registry
from dialogs.callback import CallbackState
from dialogs.grades import Grade
from store import cases as case_store
from store import contacts as contact_store
from store import conversations
from store import evaluations as evaluation_store
from store import work_orders as store
from store.models import Case, Evaluation, WorkOrder

# The last three are the deadlines beside the steps (issue 21), taken in bot/work_orders/deadlines.py.
ACTIONS = ("dispatch", "rectify", "review", "callback", "appeal", "decide-appeal", "request-extension",
           "decide-extension", "contact")
CALLBACK_RESULTS = ("satisfied", "basically_satisfied", "dissatisfied", "unreachable")
# action → (the status it is taken from, the status it leads to); callback and appeals are special.
STEPS: dict[str, tuple[str, str]] = {
    "dispatch": ("created", "dispatched"),
    "rectify": ("dispatched", "rectified"),
    "review": ("rectified", "reviewed"),
}
# The callback answers that are ratings (Hainan art. 15 records the rater's latest rating when satisfied);
# `dissatisfied` and `unreachable` are not.
CALLBACK_GRADE = {"satisfied": Grade.SATISFIED, "basically_satisfied": Grade.BASICALLY_SATISFIED}


# --- creation -------------------------------------------------------------------------------------


async def open_for(session: AsyncSession, rt: Runtime, case: Case, evaluation: Evaluation,
                   now: datetime) -> WorkOrder:
    """The one work order of a bad review (the unique evaluation_id keeps it one), the lead agency's. Whom it
    names follows the case's handling type (bot/policy/handling.py, Shantou art. 27–30, 32): the clerk when the
    reasons concern them (always in a hall consultation; never for 全程网办), and for a joint case the
    other agencies involved, which the work order lists from the case (one work order, one owner). A window
    visit's rating names the clerk of that visit, always: only they were rated."""
    assert evaluation.id is not None and case.id is not None
    if evaluation.visit_id is not None:  # a window visit's rating rates its clerk only (Shantou art. 22, 28)
        staff_id, staff_name = evaluation.staff_id, evaluation.staff_name
    elif handling.names_clerk(case.kind, case.staff_id, evaluation.reasons or [], rt.policy.clerk_reasons):
        staff_id, staff_name = case.staff_id, case.staff_name
    else:
        staff_id = staff_name = None
    wo = WorkOrder(
        case_id=case.id, evaluation_id=evaluation.id, agency_code=case.agency_code,
        agency_name=case.agency_name, staff_id=staff_id, staff_name=staff_name, grade=evaluation.grade,
        reasons=list(evaluation.reasons or []), status="created", due_at=step_due(rt, "created", now),
        created_at=now, updated_at=now)
    rt.metrics.work_orders.labels("created").inc()
    return await store.add(session, wo, SYSTEM.name, now)


def step_due(rt: Runtime, status: str, since: datetime) -> datetime | None:
    days = {"created": rt.policy.work_order["dispatch"], "dispatched": rt.policy.work_order["rectify"],
            "rectified": rt.policy.work_order["review"], "reviewed": rt.policy.callback.days}.get(status)
    return None if days is None else rt.timing.window_end(since, DaySpan(days, "working"))


# --- what may happen now ---------------------------------------------------------------------------


def appeal_closes(rt: Runtime, evaluation: Evaluation) -> datetime:
    return rt.timing.window_end(evaluation.created_at, rt.policy.appeal_window)


def allowed(rt: Runtime, wo: WorkOrder, evaluation: Evaluation, now: datetime, facts: Facts | None = None
            ) -> list[str]:
    """The actions the work order takes at `now`, whoever asks; with its history's `facts`
    (bot/work_orders/deadlines.py), also the contact and the extension beside the steps."""
    if wo.status == "closed":  # an appeal made in time is decided even when the steps ran ahead of it
        return ["decide-appeal"] if wo.appeal_status == "pending" else []
    out = [action for action, (src, _dst) in STEPS.items() if wo.status == src]
    if wo.status == "reviewed":
        out.append("callback")
    if wo.appeal_status is None and rt.timing.open_at(appeal_closes(rt, evaluation), now):
        out.append("appeal")
    if wo.appeal_status == "pending":
        out.append("decide-appeal")
    if facts is not None:
        out = deadlines.adjust(rt, wo, facts, out)
    return out


# --- acting ----------------------------------------------------------------------------------------


async def act(rt: Runtime, wo_id: int, action: str, body: dict[str, Any], actor: Actor,
              now: datetime, *, address: str | None = None) -> WorkOrder:
    """Take one action on a work order, in one transaction with its history event (and, for an appeal's
    decision, its audit row; `address`: the client's)."""
    if action not in ACTIONS:
        raise NotFound(f"no such action {action!r}; actions: {', '.join(ACTIONS)}")
    async with rt.db.write() as session:
        wo = await store.by_id(session, wo_id, lock=rt.db.locks_rows)
        if wo is None or not actor.sees(wo.agency_code):
            # Another jurisdiction's work order is refused without saying whether it exists.
            raise NotYours("not in your jurisdiction") if wo is not None else NotFound("no such work order")
        if not actor.may(action):
            raise NotYours(f"the role {actor.role!r} may not {action}")
        evaluation = await session.get(Evaluation, wo.evaluation_id)
        assert evaluation is not None
        facts = await deadlines.facts_of(session, wo)
        can = allowed(rt, wo, evaluation, now, facts)
        if action not in can:
            raise NotNow(f"{action} is not possible now (status {wo.status}"
                               f"{', appeal ' + wo.appeal_status if wo.appeal_status else ''})", allowed=can)
        if action in deadlines.ACTIONS:
            await deadlines.take(session, rt, wo, action, body, actor, now, facts)
        else:
            await _take(session, rt, wo, evaluation, action, body, actor, now, address)
        wo.updated_at = now
        session.add(wo)
        await session.flush()
        rt.metrics.work_orders.labels(action).inc()
        return wo


async def _take(session: AsyncSession, rt: Runtime, wo: WorkOrder, evaluation: Evaluation, action: str,
                body: dict[str, Any], actor: Actor, now: datetime, address: str | None = None) -> None:
    if action in STEPS:
        note = text_field(body, "note", required=action == "rectify")
        await _move(session, rt, wo, STEPS[action][1], action, actor, now, note=note)
        if action == "review":
            await _start_callback(session, rt, wo, now)
    elif action == "callback":
        result = choice_field(body, "result", CALLBACK_RESULTS)
        await callback(session, rt, wo, result, actor, now, note=text_field(body, "note", required=False))
    elif action == "appeal":
        reason = text_field(body, "reason", required=True)
        wo.appeal_status, wo.appeal_reason, wo.appeal_by, wo.appeal_at = "pending", reason, actor.name, now
        await store.log(session, wo, "appeal", actor.name, wo.status, wo.status, now, note=reason)
    elif action == "decide-appeal":
        upheld = body.get("upheld")
        if not isinstance(upheld, bool):
            raise Invalid("upheld: expected true or false",
                          errors=[{"field": "upheld", "message": "expected true or false"}])
        note = text_field(body, "note", required=False)
        await audit.record(session, now, actor.name, audit.APPEAL, target=("work_order", wo.id), address=address,
                           details={"upheld": upheld, "note": note, "agency_code": wo.agency_code,
                                    "evaluation_id": wo.evaluation_id, "role": actor.role})
        await _decide_appeal(session, rt, wo, evaluation, upheld, actor, now, note)


def _asks_callback_of(state: object, wo: WorkOrder) -> bool:
    return isinstance(state, CallbackState) and state.work_order_id == wo.id


async def _move(session: AsyncSession, rt: Runtime, wo: WorkOrder, to: str, action: str, actor: Actor,
                now: datetime, *, note: str | None = None, outcome: str | None = None,
                data: dict[str, Any] | None = None) -> None:
    """A change of status: the next deadline counts from now; a closed work order has none."""
    before = wo.status
    wo.status = to
    wo.overdue = False
    if to in ("closed", "dispatched"):  # the callback step is over (or never came): stop asking by SMS
        await conversations.close_where(
            session, wo.case_id, lambda data: _asks_callback_of(registry.read(data), wo), now)
    if to == "closed":
        wo.outcome, wo.closed_at, wo.due_at, wo.call_at, wo.agent_queue = outcome, now, None, None, False
    else:
        wo.due_at = step_due(rt, to, now)
    await store.log(session, wo, action, actor.name, before, to, now, note=note,
                    data={**(data or {}), **({"outcome": outcome} if outcome else {})} or None)


async def callback(session: AsyncSession, rt: Runtime, wo: WorkOrder, result: str, actor: Actor, now: datetime,
                   *, note: str | None = None) -> None:
    """A callback result, from an agent, a text reply or a keypad: the same rules whoever brings it."""
    data: dict[str, Any] = {"result": result}
    if result == "unreachable":
        wo.unreachable += 1
        data["unreachable"] = wo.unreachable
        if wo.unreachable >= rt.policy.callback.unreachable_after:
            await _move(session, rt, wo, "closed", "callback", actor, now, note=note, outcome="unreachable",
                        data=data)
            await _report_change(session, rt, wo, now)
        else:
            await store.log(session, wo, "callback", actor.name, wo.status, wo.status, now, note=note, data=data)
        return
    if result in CALLBACK_GRADE:
        # Satisfied: "记录群众最新的评价数据" (Hainan art. 15): the answer becomes the case's latest rating,
        # beside the original review, and the work order is done.
        await _record_callback_rating(session, rt, wo, CALLBACK_GRADE[result], note, now)
        await _move(session, rt, wo, "closed", "callback", actor, now, note=note, outcome=result, data=data)
    # Still unsatisfied: back to the agency (复核最多1次), then closed unresolved. The answer is no rating:
    # the review stands as it was, and with it the case's score, its bad review and the rectified figures;
    # the answer and its note live in the work order's history.
    elif wo.reopened < rt.policy.callback_reopen_limit:
        wo.reopened += 1
        wo.unreachable, wo.calls, wo.call_at, wo.call_sid, wo.agent_queue = 0, 0, None, None, False
        data["reopened"] = wo.reopened
        await _move(session, rt, wo, "dispatched", "reopen", actor, now, note=note, data=data)
    else:
        await _move(session, rt, wo, "closed", "callback", actor, now, note=note, outcome="unresolved", data=data)
    await _report_change(session, rt, wo, now)


async def _report_change(session: AsyncSession, rt: Runtime, wo: WorkOrder, now: datetime) -> None:
    """The callback's answer is a new version of the bad review it answers (reported upward); the
    callback's own Evaluation row is not a rating of its own."""
    original = await session.get(Evaluation, wo.evaluation_id)
    assert original is not None
    await reporting.changed(session, rt, original, now, wo)


async def _record_callback_rating(session: AsyncSession, rt: Runtime, wo: WorkOrder, grade: Grade,
                                  note: str | None, now: datetime) -> None:
    """A satisfied answer is the rater's latest rating of the case (Hainan art. 15), so it scores; it is
    not one of the case's "one rating and one follow-up" (bot/rating/ratings.py leaves `via: callback` out)."""
    # origin_id: the review it answers, so that an appeal upheld later excludes the answer with it. The answer
    # to a window visit's rating is that visit's latest rating of its clerk, not a rating of the case.
    answered = await session.get(Evaluation, wo.evaluation_id)
    visit = answered if answered is not None and answered.visit_id is not None else None
    session.add(Evaluation(case_id=wo.case_id, grade=grade.value, score=grade.score, reasons=[], text=note,
                           channel="callback", via="callback", origin_id=wo.evaluation_id, status="valid",
                           visit_id=visit.visit_id if visit else None, staff_id=visit.staff_id if visit else None,
                           staff_name=visit.staff_name if visit else None, created_at=now))
    await conversations.close_for_case(session, wo.case_id, now)
    rt.metrics.ratings.labels("callback", grade.value).inc()


async def _start_callback(session: AsyncSession, rt: Runtime, wo: WorkOrder, now: datetime) -> None:
    """The callback step begins: an automated call is scheduled when the policy says so and the rater
    has a phone; otherwise (or after the calls) a 12345 agent calls."""
    by = rt.policy.callback.by
    case = await case_store.by_id(session, wo.case_id)
    phone = case.phone_contact_id if case else None
    placer = rt.policy.callback.placed_by
    if "call" in by and phone and (placer == "dialer" or rt.settings.twilio_enabled):
        wo.call_at = next_call_slot(rt, now)
        wo.agent_queue = False
    else:
        wo.agent_queue = True
    if "sms" in by and phone and case is not None:
        await callback_sms.ask(session, rt, wo, case, now)


def next_call_slot(rt: Runtime, at: datetime) -> datetime:
    """`at`, or the next start of the calling hours when `at` is outside them."""
    start, end = rt.policy.callback.call_hours
    tz = rt.policy.tz
    local = at.astimezone(tz)
    if start <= local.time() < end:
        return at
    day = local.date() if local.time() < start else local.date() + timedelta(days=1)
    return datetime.combine(day, start, tzinfo=tz)


async def _decide_appeal(session: AsyncSession, rt: Runtime, wo: WorkOrder, evaluation: Evaluation,
                         upheld: bool, actor: Actor, now: datetime, note: str | None) -> None:
    wo.appeal_status = "upheld" if upheld else "rejected"
    wo.appeal_decided_at = now
    data = {"upheld": upheld}
    if not upheld:
        await store.log(session, wo, "decide-appeal", actor.name, wo.status, wo.status, now, note=note, data=data)
        return
    evaluation.status = "excluded"
    session.add(evaluation)
    # The batch's one review was copied to each case of the batch: false for one, false for all.
    copies = await evaluation_store.exclude_derived(session, evaluation, via="batch")
    # The steps may have run ahead of the decision: the callback's answers to a false review fall with it
    # (not reported upward: the review's own new version carries the exclusion).
    await evaluation_store.exclude_derived(session, evaluation, via="callback")
    await _move(session, rt, wo, "closed", "decide-appeal", actor, now, note=note, outcome="excluded", data=data)
    await reporting.changed(session, rt, evaluation, now, wo)  # each exclusion a new version upward
    for copy in copies:
        await reporting.changed(session, rt, copy, now)
    await _strike(session, rt, wo, evaluation, now)


async def _strike(session: AsyncSession, rt: Runtime, wo: WorkOrder, evaluation: Evaluation, now: datetime) -> None:
    """A review judged false counts against each address of the rater, and `false_reviews` of them made
    within `within_days` bar the rater for `barred_days` from now (Shandong art. 17: 同一评价主体一年内作出的
    评价3次(含)以上被核实为误评或恶意差评的 … 自列入名单之日起一年内不得进行评价).

    The rule counts reviews: a batch or bundle (一件事) rating given at once is one, however many of the
    work orders it opened, at however many agencies, are upheld one by one. And it counts the reviews a
    rater *made* within a year, so a strike is dated by the review, not by the decision: an appeal decided
    late neither ages it nor makes it new, and the window slides over the dates of the reviews.

    And it counts a rater (同一评价主体), not an address: a person rating by SMS on one case and by WeChat on
    another, whose phone and openid some case holds together, is one rater (store/contacts.py same_person), and
    a bar covers every address of theirs."""
    case = await case_store.by_id(session, wo.case_id)
    review = await evaluation_store.review_of(session, evaluation)
    assert case is not None and review.id is not None
    rules = rt.policy.blacklist
    window = timedelta(days=rules["within_days"])
    own = {i for i in (case.phone_contact_id, case.wechat_contact_id, case.mp_contact_id) if i}
    person = sorted(await contact_store.same_person(session, own))
    if rt.db.locks_rows:  # in id order: two decisions about one rater's addresses take their locks in one order
        for contact_id in person:
            await contact_store.lock(session, contact_id)
    fresh = [await store.add_strike(session, contact_id, review.id, review.created_at) for contact_id in sorted(own)]
    if not any(fresh):
        return  # this review is counted already: another work order of its batch or bundle
    made = await store.strikes_made(session, person, review.created_at - window, review.created_at + window)
    count = most_within(made, review.created_at, window)
    if rules["false_reviews"] and count >= rules["false_reviews"]:
        until = now + timedelta(days=rules["barred_days"])
        for contact_id in person:
            await contact_store.bar(session, contact_id, until)
        await store.log(session, wo, "blacklist", SYSTEM.name, wo.status, wo.status, now,
                        data={"strikes": count, "barred_until": until.isoformat(), "addresses": len(person)})


def most_within(made: Sequence[datetime], at: datetime, window: timedelta) -> int:
    """The most reviews, among those made at the instants `made`, that one `window` (edges included) holds
    together with the review made `at`: the sliding year of Shandong art. 17. A window without `at` was
    counted when the last of its reviews to be struck was."""
    starts = [d for d in made if at - window <= d <= at]
    return max((sum(1 for d in made if start <= d <= start + window) for start in starts), default=0)


# --- timed duties ----------------------------------------------------------------------------------

BATCH = 500


async def mark_overdue(rt: Runtime, now: datetime, *, waiting: Sequence[tuple[datetime, datetime]] = ()) -> int:
    """Mark every open work order whose step's deadline has come (inclusive), each once per step; not those in
    `waiting` (counted over a year of the calendar nobody described, bot/policy/workdays.py waiting_spans)."""
    marked = 0
    while True:
        async with rt.db.write() as session:
            due = await store.newly_overdue(session, now, BATCH, skip_locked=rt.db.locks_rows, waiting=waiting)
            for wo in due:
                wo.overdue = True
                wo.overdue_steps += 1
                session.add(wo)
                await store.log(session, wo, "overdue", SYSTEM.name, wo.status, wo.status, now,
                                data={"due_at": wo.due_at.isoformat() if wo.due_at else None})
            marked += len(due)
            rt.metrics.work_orders.labels("overdue").inc(len(due))
        if len(due) < BATCH:
            return marked
