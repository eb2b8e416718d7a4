"""When things are due, from the policy and the official calendar. Every function takes its instants."""

from __future__ import annotations

from datetime import datetime, timedelta

from bot.policy.rules import Policy
from bot.policy.spans import DaySpan
from bot.policy.workdays import WorkCalendar


class Timing:
    def __init__(self, policy: Policy, calendar: WorkCalendar) -> None:
        self.policy = policy
        self.calendar = calendar
        self.tz = policy.tz

    def quiet(self, instant: datetime) -> bool:
        return self.policy.in_quiet_hours(instant.astimezone(self.tz).time())

    def after_quiet(self, instant: datetime) -> datetime:
        """The instant itself, or the end of the quiet hours it falls in (reminders wait for it)."""
        if not self.quiet(instant):
            return instant
        local = instant.astimezone(self.tz)
        end = self.policy.quiet_hours[1]
        candidate = local.replace(hour=end.hour, minute=end.minute, second=0, microsecond=0)
        if candidate <= local:
            candidate = (local + timedelta(days=1)).replace(hour=end.hour, minute=end.minute,
                                                            second=0, microsecond=0)
        return candidate

    def reminder_at(self, completed_at: datetime) -> datetime:
        return self.after_quiet(completed_at + self.policy.reminder_after)

    def window_end(self, start: datetime, span: DaySpan) -> datetime:
        """00:00 local after the last counted day (the contract's day counting)."""
        return self.calendar.deadline(start, span.days, span.unit, self.tz)

    def open_at(self, end: datetime, now: datetime) -> bool:
        """Whether a window ending at `end` (a follow-up's, an appeal's, a complaint's) still takes what comes at
        `now`. One counted over a year the calendar does not know yet ended on a Monday-Friday guess, before the
        holidays the year will have: nobody is refused on that guess, so it stays open until the year is known
        and the deadline is recounted (bot/policy/workdays.py is_final; the scheduler likewise applies no such
        default)."""
        return now < end or not self.calendar.is_final(end, self.tz)

    def default_at(self, completed_at: datetime) -> datetime:
        return self.window_end(completed_at, self.policy.default_after)
