"""Schedule rules (LISA's SchedulingConfig) and the start/stop computation across midnight and DST."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest
from pydantic import ValidationError

from lisa_domain.schedule import (
    Boundary,
    ScheduleAction,
    in_window,
    last_action,
    next_action,
    parse_schedule,
    windows,
)
from lisa_domain.schema import CreateModelRequest
from tests.support.lisa_payloads import VLLM_MODEL


def recurring(start: str, stop: str, timezone: str = "UTC") -> dict[str, Any]:
    return {
        "scheduleType": "RECURRING",
        "recurringSchedule": {"startTime": start, "stopTime": stop},
        "timezone": timezone,
    }


def at(text: str) -> datetime:
    return datetime.fromisoformat(text).astimezone(UTC)


def problem(value: Any) -> tuple[str, str]:
    """The one validation problem of ``value``: (field path, message)."""
    with pytest.raises(ValidationError) as caught:
        parse_schedule(value)
    (error,) = caught.value.errors()
    return ".".join(str(part) for part in error["loc"]), str(error["msg"])


# ---- rules ---------------------------------------------------------------------------------------
@pytest.mark.parametrize("value", ["7:5", "24:00", "12:60", "noon", "", "12:00:00", " 9:00"])
def test_times_must_be_hh_mm(value: str) -> None:
    where, message = problem(recurring(value, "23:00"))
    assert where == "RECURRING.recurringSchedule.startTime" and "pattern" in message
    where, _ = problem(recurring("01:00", value))
    assert where == "RECURRING.recurringSchedule.stopTime"


@pytest.mark.parametrize(("start", "stop"), [("09:00", "10:59"), ("09:00", "09:00"), ("23:00", "00:59")])
def test_stop_must_be_at_least_two_hours_after_start(start: str, stop: str) -> None:
    where, message = problem(recurring(start, stop))
    assert where == "RECURRING.recurringSchedule"
    assert "stopTime: must be at least 2 hours after startTime" in message


@pytest.mark.parametrize(
    ("start", "stop"),
    [("09:00", "11:00"), ("23:00", "01:00"), ("22:30", "21:30"), ("10:00", "09:00"), ("7:00", "19:00")],
)
def test_windows_of_two_hours_or_more_are_accepted_even_across_midnight(start: str, stop: str) -> None:
    schedule = parse_schedule(recurring(start, stop))
    assert schedule.scheduleType == "RECURRING"


def test_daily_needs_at_least_one_day() -> None:
    where, message = problem({"scheduleType": "DAILY", "dailySchedule": {}})
    assert where == "DAILY.dailySchedule" and "at least one day" in message
    where, _ = problem(
        {"scheduleType": "DAILY", "dailySchedule": {"funday": {"startTime": "09:00", "stopTime": "17:00"}}}
    )
    assert where == "DAILY.dailySchedule.funday"


def test_timezone_must_be_an_iana_name() -> None:
    for zone in ("Mars/Olympus", "../../etc/passwd", "", "UTC+2"):
        where, message = problem(recurring("09:00", "17:00", zone))
        assert where == "RECURRING.timezone" and "IANA" in message
    assert (
        parse_schedule({k: v for k, v in recurring("09:00", "17:00").items() if k != "timezone"}).timezone
        == "UTC"
    )


def test_type_and_fields_must_match() -> None:
    _, message = problem(
        {"scheduleType": "WEEKLY", "recurringSchedule": {"startTime": "09:00", "stopTime": "17:00"}}
    )
    assert "scheduleType" in message and "'DAILY', 'RECURRING'" in message
    with pytest.raises(ValidationError) as caught:
        parse_schedule(
            {
                "scheduleType": "RECURRING",
                "dailySchedule": {"monday": {"startTime": "09:00", "stopTime": "17:00"}},
            }
        )
    assert {".".join(map(str, e["loc"])) for e in caught.value.errors()} == {
        "RECURRING.recurringSchedule",
        "RECURRING.dailySchedule",
    }


def test_lisa_reported_fields_are_accepted_and_dropped() -> None:
    value = recurring("09:00", "17:00") | {
        "scheduleEnabled": True,
        "lastScheduleFailed": False,
        "nextScheduledAction": {"action": "START", "scheduledTime": "x"},
        "scheduledActionArns": [],
    }
    dumped = parse_schedule(value).model_dump(mode="json")
    assert dumped == {
        "timezone": "UTC",
        "scheduleType": "RECURRING",
        "recurringSchedule": {"startTime": "09:00", "stopTime": "17:00"},
    }


def test_a_create_payload_carries_its_schedule_in_autoscaling_config() -> None:
    body = dict(VLLM_MODEL)
    body["autoScalingConfig"] = dict(
        body["autoScalingConfig"], scheduling=recurring("08:00", "18:00", "Europe/Berlin")
    )
    request = CreateModelRequest.model_validate(body)
    assert request.autoScalingConfig is not None and request.autoScalingConfig.scheduling is not None
    assert request.autoScalingConfig.scheduling.timezone == "Europe/Berlin"
    body["autoScalingConfig"]["scheduling"] = recurring("08:00", "09:00")
    with pytest.raises(ValidationError, match="stopTime"):
        CreateModelRequest.model_validate(body)


# ---- next and last action ------------------------------------------------------------------------
def test_next_action_inside_and_outside_a_window() -> None:
    schedule = parse_schedule(recurring("09:00", "17:00"))
    assert next_action(schedule, at("2026-03-02T08:00:00+00:00")) == Boundary(
        ScheduleAction.START, at("2026-03-02T09:00:00+00:00")
    )
    assert next_action(schedule, at("2026-03-02T09:00:00+00:00")) == Boundary(
        ScheduleAction.STOP, at("2026-03-02T17:00:00+00:00")
    )
    assert last_action(schedule, at("2026-03-02T09:00:00+00:00")) == Boundary(
        ScheduleAction.START, at("2026-03-02T09:00:00+00:00")
    )
    assert last_action(schedule, at("2026-03-02T18:00:00+00:00")) == Boundary(
        ScheduleAction.STOP, at("2026-03-02T17:00:00+00:00")
    )
    assert in_window(schedule, at("2026-03-02T12:00:00+00:00")) and not in_window(
        schedule, at("2026-03-02T17:00:00+00:00")
    )


def test_a_window_across_midnight_ends_the_next_day() -> None:
    schedule = parse_schedule(recurring("22:00", "02:00", "America/New_York"))
    now = at("2026-03-03T23:30:00-05:00")
    assert in_window(schedule, now)
    assert next_action(schedule, now) == Boundary(ScheduleAction.STOP, at("2026-03-04T02:00:00-05:00"))
    assert last_action(schedule, now) == Boundary(ScheduleAction.START, at("2026-03-03T22:00:00-05:00"))
    assert next_action(schedule, at("2026-03-04T01:00:00-05:00")).at == at("2026-03-04T02:00:00-05:00")  # type: ignore[union-attr]


def test_daily_schedule_uses_the_weekday_and_skips_days_without_one() -> None:
    schedule = parse_schedule(
        {
            "scheduleType": "DAILY",
            "dailySchedule": {
                "monday": {"startTime": "08:00", "stopTime": "18:00"},
                "friday": {"startTime": "10:00", "stopTime": "14:00"},
            },
        }
    )
    tuesday = at("2026-03-03T07:00:00+00:00")  # 2026-03-02 is a Monday
    assert next_action(schedule, tuesday) == Boundary(ScheduleAction.START, at("2026-03-06T10:00:00+00:00"))
    assert next_action(schedule, at("2026-03-06T15:00:00+00:00")) == Boundary(
        ScheduleAction.START, at("2026-03-09T08:00:00+00:00")
    )


def test_overlapping_windows_merge_into_one() -> None:
    schedule = parse_schedule(
        {
            "scheduleType": "DAILY",
            "dailySchedule": {
                "monday": {"startTime": "22:00", "stopTime": "06:00"},
                "tuesday": {"startTime": "05:00", "stopTime": "09:00"},
            },
        }
    )
    now = at("2026-03-03T05:30:00+00:00")
    assert next_action(schedule, now) == Boundary(ScheduleAction.STOP, at("2026-03-03T09:00:00+00:00"))
    assert [
        (w.start.hour, w.stop.hour)
        for w in windows(schedule, now)
        if w.start.date().isoformat() == "2026-03-02"
    ] == [(22, 9)]


def test_spring_forward_keeps_local_times_and_a_time_in_the_gap_happens_after_it() -> None:
    # New York, 2026-03-08: 02:00 EST becomes 03:00 EDT.
    schedule = parse_schedule(recurring("09:00", "17:00", "America/New_York"))
    assert next_action(schedule, at("2026-03-07T18:00:00-05:00")).at == at("2026-03-08T09:00:00-04:00")  # type: ignore[union-attr]
    assert next_action(schedule, at("2026-03-08T12:00:00-04:00")).at == at("2026-03-08T17:00:00-04:00")  # type: ignore[union-attr]
    in_gap = parse_schedule(recurring("02:30", "08:00", "America/New_York"))
    assert next_action(in_gap, at("2026-03-08T01:00:00-05:00")).at == at("2026-03-08T03:30:00-04:00")  # type: ignore[union-attr]


def test_fall_back_uses_the_first_of_the_repeated_hour() -> None:
    # New York, 2026-11-01: 02:00 EDT becomes 01:00 EST; 01:30 happens twice.
    schedule = parse_schedule(recurring("01:30", "06:00", "America/New_York"))
    assert next_action(schedule, at("2026-11-01T00:00:00-04:00")).at == at("2026-11-01T01:30:00-04:00")  # type: ignore[union-attr]
    day = parse_schedule(recurring("09:00", "17:00", "Europe/Berlin"))  # Berlin falls back 2026-10-25
    assert next_action(day, at("2026-10-25T00:00:00+02:00")).at == at("2026-10-25T09:00:00+01:00")  # type: ignore[union-attr]
    assert next_action(day, at("2026-10-24T10:00:00+02:00")).at == at("2026-10-24T17:00:00+02:00")  # type: ignore[union-attr]
