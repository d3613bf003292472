"""Cron schedules (`schedule: "*/15 * * * *"` on a source): the five classic fields, parsed
once, and the next time they name. Pure: no clock of its own, no I/O.

Fields: minute (0-59), hour (0-23), day of month (1-31), month (1-12 or jan-dec), day of week
(0-7 or sun-sat; 0 and 7 are Sunday). Each is `*`, a number, a range `a-b`, a step `*/n` or
`a-b/n`, or a comma list of those. As in cron, when both day fields are restricted a day
matching either one is due. Times are UTC.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

FIELDS = (("minute", 0, 59), ("hour", 0, 23), ("day of month", 1, 31), ("month", 1, 12),
          ("day of week", 0, 7))  # fmt: skip
MONTHS = ["jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec"]
DAYS = ["sun", "mon", "tue", "wed", "thu", "fri", "sat"]
SEARCH_DAYS = 366 * 8  # a schedule due on Feb 29th of a Monday waits up to 28 years: refused


class CronError(ValueError):
    """A schedule that is not five valid cron fields (one line)."""


def _value(text: str, name: str, low: int, high: int) -> int:
    names = MONTHS if name == "month" else DAYS if name == "day of week" else []
    lowered = text.lower()
    if lowered in names:
        return names.index(lowered) + (1 if name == "month" else 0)
    if not text.isdigit():
        raise CronError(f"{name} {text!r} is not a number in {low}-{high}")
    number = int(text)
    if not low <= number <= high:
        raise CronError(f"{name} {number} is outside {low}-{high}")
    return number


def _field(text: str, name: str, low: int, high: int) -> frozenset[int]:
    values: set[int] = set()
    for part in text.split(","):
        spec, _, step_text = part.partition("/")
        step = 1
        if step_text:
            if not step_text.isdigit() or int(step_text) == 0:
                raise CronError(f"{name} step {step_text!r} is not a positive number")
            step = int(step_text)
        if spec == "*":
            start, end = low, high
        elif "-" in spec:
            first, _, last = spec.partition("-")
            start, end = _value(first, name, low, high), _value(last, name, low, high)
            if start > end:
                raise CronError(f"{name} range {spec!r} runs backwards")
        else:
            start = end = _value(spec, name, low, high)
            if step_text:
                end = high
        values.update(range(start, end + 1, step))
    return frozenset(values)


@dataclass(frozen=True)
class Cron:
    text: str
    minutes: frozenset[int]
    hours: frozenset[int]
    days: frozenset[int]
    months: frozenset[int]
    weekdays: frozenset[int]  # 0 = Sunday
    any_day: bool  # day of month is `*`
    any_weekday: bool  # day of week is `*`

    @classmethod
    def parse(cls, text: str) -> Cron:
        parts = text.split()
        if len(parts) != 5:
            raise CronError(
                f"{text!r} has {len(parts)} fields; expected 5: minute hour day-of-month month "
                "day-of-week (e.g. '0 * * * *': every hour)"
            )
        sets = [_field(p, *spec) for p, spec in zip(parts, FIELDS, strict=True)]
        weekdays = frozenset(d % 7 for d in sets[4])
        cron = cls(text, sets[0], sets[1], sets[2], sets[3], weekdays,
                   parts[2] == "*", parts[4] == "*")  # fmt: skip
        cron.next_after(datetime(2000, 1, 1))  # never due: refused now, not at the first tick
        return cron

    def _day_due(self, day: datetime) -> bool:
        if day.month not in self.months:
            return False
        by_date = day.day in self.days
        by_weekday = (day.isoweekday() % 7) in self.weekdays
        if self.any_day or self.any_weekday:
            return by_date and by_weekday
        return by_date or by_weekday

    def next_after(self, moment: datetime) -> datetime:
        """The first due minute strictly after `moment` (same tzinfo as `moment`)."""
        start = moment.replace(second=0, microsecond=0) + timedelta(minutes=1)
        day = start.replace(hour=0, minute=0)
        for offset in range(SEARCH_DAYS):
            current = day + timedelta(days=offset)
            if not self._day_due(current):
                continue
            for hour in sorted(self.hours):
                for minute in sorted(self.minutes):
                    at = current.replace(hour=hour, minute=minute)
                    if at >= start:
                        return at
        raise CronError(f"{self.text!r} is never due")
