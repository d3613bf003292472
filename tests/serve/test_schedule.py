"""`schedule:` on a source: cron text checked when the project is read, the next due minute,
and the runner of `anchorflow serve`, whose missed ticks coalesce into one run."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import pytest

from anchorflow.config import load_project
from anchorflow.cron import Cron, CronError
from anchorflow.errors import ConfigError
from anchorflow.serve.runs import Runner
from anchorflow.serve.server import open_warehouse
from tests.builders import project_data, write_project
from tests.serve.files_project import files_project
from tests.serve.hooks import wait_for


def at(hour: int, minute: int, day: int = 1) -> datetime:
    return datetime(2026, 12, day, hour, minute, tzinfo=UTC)


@pytest.mark.unit
@pytest.mark.parametrize(
    ("text", "after", "due"),
    [
        ("*/15 * * * *", at(10, 7), at(10, 15)),
        ("*/15 * * * *", at(10, 15), at(10, 30)),  # strictly after
        ("0 * * * *", at(10, 0), at(11, 0)),
        ("30 2 * * *", at(10, 0), at(2, 30, day=2)),
        ("0 3 * * mon", at(10, 0), at(3, 0, day=7)),  # 2026-12-07 is a Monday
        ("0 3 * * 7", at(10, 0), at(3, 0, day=6)),  # 7 is Sunday, as 0
        ("0 0 1,15 * 5", at(10, 0), at(0, 0, day=4)),  # both day fields: either one
        ("5-10/5 8 * dec *", at(8, 6), at(8, 10)),
        ("0 0 1 jan *", at(10, 0), datetime(2027, 1, 1, tzinfo=UTC)),
    ],
)
def test_the_next_due_minute(text: str, after: datetime, due: datetime) -> None:
    assert Cron.parse(text).next_after(after) == due


@pytest.mark.unit
@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("* * * *", "has 4 fields; expected 5"),
        ("60 * * * *", "minute 60 is outside 0-59"),
        ("* 24 * * *", "hour 24 is outside 0-23"),
        ("* * * 13 *", "month 13 is outside 1-12"),
        ("*/0 * * * *", "minute step '0' is not a positive number"),
        ("10-5 * * * *", "minute range '10-5' runs backwards"),
        ("* * * * funday", "day of week 'funday' is not a number in 0-7"),
        ("0 0 31 2 *", "is never due"),
    ],
)
def test_a_bad_schedule_is_one_line(text: str, message: str) -> None:
    with pytest.raises(CronError, match=message):
        Cron.parse(text)


@pytest.mark.unit
def test_a_bad_schedule_is_refused_when_the_project_is_read(tmp_path: Path) -> None:
    data = project_data(sources={"drops": {"kind": "files", "path": "landing/*",
                                           "schedule": "*/5 * * *"}}, staging={})  # fmt: skip
    write_project(tmp_path, data)
    with pytest.raises(ConfigError) as raised:
        load_project(tmp_path, env={})
    (line,) = [line for line in str(raised.value).splitlines() if "schedule" in line]
    assert "sources.drops.schedule" in line and "has 4 fields; expected 5" in line


@pytest.mark.integration
def test_missed_ticks_make_one_run_and_the_next_tick_is_after_now(
    engine: str, tmp_path: Path
) -> None:
    project = files_project(tmp_path, files=3, schedule="*/5 * * * *")
    now = [at(10, 2)]
    owner = open_warehouse(project)
    runner = Runner(project, owner.warehouse, clock=lambda: now[0])
    try:
        (schedule,) = runner.schedules()
        assert schedule.next_at == at(10, 5)
        runner.start()
        now[0] = at(10, 31)  # six ticks passed (10:05 ... 10:30) while nothing ran
        runner.wake()
        wait_for(lambda: bool(runner.history))
        (run,) = runner.history
        assert (run.reason, run.sources, run.status, run.rows) == ("schedule", ("drops",), "ok", 60)
        assert runner.schedules()[0].next_at == at(10, 35)
        assert runner.pending == [] and runner.running is None
    finally:
        runner.stop()
        owner.close()
    assert len(runner.history) == 1


@pytest.mark.integration
def test_asks_while_a_run_is_in_flight_coalesce(engine: str, tmp_path: Path) -> None:
    project = files_project(tmp_path, files=2)
    owner = open_warehouse(project)
    runner = Runner(project, owner.warehouse)
    try:
        with runner._wake:  # the thread cannot take the asks until all of them are in
            runner.start()
            for _ in range(5):
                runner.request(["drops"])
            assert runner.pending == ["drops"]
        wait_for(lambda: bool(runner.history) and not runner.pending and runner.running is None)
        with pytest.raises(ConfigError, match="no source 'nowhere'"):
            runner.request(["nowhere"])
    finally:
        runner.stop()
        owner.close()
    assert [(r.reason, r.status) for r in runner.history] == [("manual", "ok")]
