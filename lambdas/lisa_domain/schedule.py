"""Model schedules (LISA's ``SchedulingConfig``): the rules, and when a model should start or stop.

Pure: no AWS, no clock (every function takes ``now``). A schedule is a set of windows in local
time: ``RECURRING`` has one ``{startTime, stopTime}`` for every day, ``DAILY`` one per weekday (at
least one day). A window whose stop time is earlier than its start time ends the next day; every
window lasts at least two hours. Local times become instants with ``zoneinfo``: a start or stop in
a daylight-saving gap happens at the same wall-clock offset after the gap (02:30 on a spring-forward
night is 03:30), and one in the repeated hour of a fall-back night happens at its first occurrence.

Windows that overlap (Monday 22:00-06:00 and Tuesday 05:00-09:00) are merged, so the boundaries of
the merged windows are exactly the moments the model should start (``START``) or stop (``STOP``).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from enum import StrEnum
from typing import Annotated, Any, Literal
from zoneinfo import ZoneInfo

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    StringConstraints,
    TypeAdapter,
    field_validator,
    model_validator,
)

#: HH:MM, 00:00-23:59 (LISA accepts one-digit hours too: "7:30").
TIME_PATTERN = r"^([01]?[0-9]|2[0-3]):[0-5][0-9]$"
MIN_WINDOW = timedelta(hours=2)
WEEKDAYS = ("monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday")
#: Days of windows looked at on each side of ``now`` (a week plus the window that crosses midnight).
_HORIZON_DAYS = 9

ClockTime = Annotated[str, StringConstraints(pattern=TIME_PATTERN), Field(description="HH:MM (24-hour)")]

#: Fields LISA keeps in the scheduling object to report its state. A LISA client may send them back
#: (they are in every schedule it read); they are accepted and ignored: the state is the server's.
_REPORTED_FIELDS = (
    "scheduleEnabled",
    "lastScheduleUpdate",
    "scheduledActionArns",
    "scheduleConfigured",
    "lastScheduleFailed",
    "nextScheduledAction",
    "lastScheduleFailure",
)


class ScheduleAction(StrEnum):
    START = "START"
    STOP = "STOP"


def _clock(value: str) -> time:
    hours, minutes = value.split(":")
    return time(int(hours), int(minutes))


def window_length(start: str, stop: str) -> timedelta:
    """How long a window from ``start`` to ``stop`` (HH:MM) lasts; a stop before the start is the next day."""
    begin, end = _clock(start), _clock(stop)
    minutes = (end.hour * 60 + end.minute) - (begin.hour * 60 + begin.minute)
    return timedelta(minutes=minutes if minutes > 0 else minutes + 24 * 60)


class _ScheduleModel(BaseModel):
    model_config = ConfigDict(extra="forbid")


class DaySchedule(_ScheduleModel):
    """One window: start at ``startTime``, stop at ``stopTime`` (the next day when earlier)."""

    startTime: ClockTime
    stopTime: ClockTime

    @model_validator(mode="after")
    def _long_enough(self) -> DaySchedule:
        if self.startTime != self.stopTime and window_length(self.startTime, self.stopTime) >= MIN_WINDOW:
            return self
        raise ValueError(
            f"stopTime: must be at least 2 hours after startTime ({self.startTime}; "
            "a stopTime earlier than startTime is on the next day)"
        )


class WeeklySchedule(_ScheduleModel):
    """A window per weekday (at least one day); a day without one has no start."""

    monday: DaySchedule | None = None
    tuesday: DaySchedule | None = None
    wednesday: DaySchedule | None = None
    thursday: DaySchedule | None = None
    friday: DaySchedule | None = None
    saturday: DaySchedule | None = None
    sunday: DaySchedule | None = None

    @model_validator(mode="after")
    def _at_least_one_day(self) -> WeeklySchedule:
        if not any(getattr(self, day) for day in WEEKDAYS):
            raise ValueError("dailySchedule: at least one day (monday ... sunday) needs a schedule")
        return self


class _BaseSchedulingConfig(_ScheduleModel):
    timezone: str = Field(default="UTC", description="IANA time zone name of the times, e.g. Europe/Berlin")

    # LISA's reported state, accepted and dropped (see _REPORTED_FIELDS).
    scheduleEnabled: Any = Field(default=None, exclude=True)
    lastScheduleUpdate: Any = Field(default=None, exclude=True)
    scheduledActionArns: Any = Field(default=None, exclude=True)
    scheduleConfigured: Any = Field(default=None, exclude=True)
    lastScheduleFailed: Any = Field(default=None, exclude=True)
    nextScheduledAction: Any = Field(default=None, exclude=True)
    lastScheduleFailure: Any = Field(default=None, exclude=True)

    @field_validator("timezone")
    @classmethod
    def _iana_zone(cls, value: str) -> str:
        try:
            ZoneInfo(value)
        except Exception as error:
            raise ValueError(
                f"timezone: '{value[:64]}' is not an IANA time zone name (e.g. UTC, America/New_York)"
            ) from error
        return value


class DailySchedulingConfig(_BaseSchedulingConfig):
    """``DAILY``: a window per weekday."""

    scheduleType: Literal["DAILY"]
    dailySchedule: WeeklySchedule


class RecurringSchedulingConfig(_BaseSchedulingConfig):
    """``RECURRING``: the same window every day."""

    scheduleType: Literal["RECURRING"]
    recurringSchedule: DaySchedule


SchedulingConfig = Annotated[
    DailySchedulingConfig | RecurringSchedulingConfig, Field(discriminator="scheduleType")
]
_ADAPTER: TypeAdapter[DailySchedulingConfig | RecurringSchedulingConfig] = TypeAdapter(SchedulingConfig)


@dataclass(frozen=True)
class Window:
    """When the model should run: ``[start, stop)``, both in UTC."""

    start: datetime
    stop: datetime


@dataclass(frozen=True)
class Boundary:
    """A moment the model should change: ``START`` at a window's start, ``STOP`` at its end (UTC)."""

    action: ScheduleAction
    at: datetime

    def json(self) -> dict[str, str]:
        """LISA's ``nextScheduledAction`` shape."""
        return {"action": self.action.value, "scheduledTime": self.at.isoformat().replace("+00:00", "Z")}


def _day_schedule(config: DailySchedulingConfig | RecurringSchedulingConfig, day: date) -> DaySchedule | None:
    if isinstance(config, RecurringSchedulingConfig):
        return config.recurringSchedule
    schedule: DaySchedule | None = getattr(config.dailySchedule, WEEKDAYS[day.weekday()])
    return schedule


def _instant(day: date, clock: str, zone: ZoneInfo) -> datetime:
    """The UTC instant of a local wall-clock time (see the module docstring for DST gaps and folds)."""
    local = datetime.combine(day, _clock(clock), tzinfo=zone)
    return local.astimezone(UTC)


def windows(config: DailySchedulingConfig | RecurringSchedulingConfig, now: datetime) -> list[Window]:
    """The merged windows starting within ``_HORIZON_DAYS`` days of ``now``, in order."""
    zone = ZoneInfo(config.timezone)
    today = now.astimezone(zone).date()
    raw: list[Window] = []
    for offset in range(-_HORIZON_DAYS, _HORIZON_DAYS + 1):
        day = today + timedelta(days=offset)
        schedule = _day_schedule(config, day)
        if schedule is None:
            continue
        stop_day = day if _clock(schedule.stopTime) > _clock(schedule.startTime) else day + timedelta(days=1)
        start, stop = _instant(day, schedule.startTime, zone), _instant(stop_day, schedule.stopTime, zone)
        if stop > start:
            raw.append(Window(start, stop))
    merged: list[Window] = []
    for window in sorted(raw, key=lambda w: w.start):
        if merged and window.start <= merged[-1].stop:
            merged[-1] = Window(merged[-1].start, max(merged[-1].stop, window.stop))
        else:
            merged.append(window)
    return merged


def _boundaries(config: DailySchedulingConfig | RecurringSchedulingConfig, now: datetime) -> list[Boundary]:
    found: list[Boundary] = []
    for window in windows(config, now):
        found += [Boundary(ScheduleAction.START, window.start), Boundary(ScheduleAction.STOP, window.stop)]
    return found


def in_window(config: DailySchedulingConfig | RecurringSchedulingConfig, now: datetime) -> bool:
    """Whether the model should be running at ``now``."""
    return any(window.start <= now < window.stop for window in windows(config, now))


def next_action(config: DailySchedulingConfig | RecurringSchedulingConfig, now: datetime) -> Boundary | None:
    """The first start or stop after ``now`` (None only for a schedule with no window at all)."""
    return next((b for b in _boundaries(config, now) if b.at > now), None)


def last_action(config: DailySchedulingConfig | RecurringSchedulingConfig, now: datetime) -> Boundary | None:
    """The latest start or stop at or before ``now``: what the model should have done last."""
    return next((b for b in reversed(_boundaries(config, now)) if b.at <= now), None)


def parse_schedule(value: Any) -> DailySchedulingConfig | RecurringSchedulingConfig:
    """A stored or requested schedule, validated (pydantic's ValidationError on a bad one)."""
    return _ADAPTER.validate_python(value)
