"""The `async_export` kind with the MaestroQA preset, end to end over loopback HTTP against the
MaestroQA emulator: request, poll, download, land in raw; resume after a crash; faults."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest

from anchorflow.config import Project
from anchorflow.dev.emulators.maestroqa import Fault, MaestroQAEmulator
from anchorflow.dev.synth.maestroqa import GradingSpec
from anchorflow.errors import SourceError
from anchorflow.run import Pipeline
from tests.builders import build_project
from tests.conftest import env_without_crash, run_pipeline, table_rows
from tests.receiver import Receiver, running_receiver

pytestmark = pytest.mark.integration
receiver = pytest.fixture(running_receiver)

TOKEN = "mqa-token-5f3c9e1d"
ENV = {"MAESTROQA_API_TOKEN": TOKEN, "QA_TENANT": "tenant-9f8e7d"}
SPEC = GradingSpec(seed=11, agents=12, graded_per_day=25)
NOW = datetime(2024, 3, 4, 6)  # days 03-01 .. 03-03 are due (03-03 ended 6h ago)
ANCHORFLOW = Path(sys.executable).with_name("anchorflow")


@pytest.fixture
def maestroqa() -> Iterator[MaestroQAEmulator]:
    with MaestroQAEmulator(TOKEN, SPEC, polls_to_complete=3) as running:
        yield running


def qa_source(base_url: str, **overrides: Any) -> dict[str, Any]:
    source: dict[str, Any] = {
        "kind": "async_export",
        "preset": "maestroqa",
        "base_url": base_url,
        "token": "${MAESTROQA_API_TOKEN}",
        "start": "2024-03-01",
        "poll": {"interval": "10ms", "max_interval": "50ms", "timeout": "20s"},
        "retry": {"attempts": 4, "base_delay": "10ms", "max_delay": "50ms"},
        "timeout": "10s",
    }
    source.update(overrides)
    return source


def qa_project(root: Path, base_url: str, **overrides: Any) -> Project:
    return build_project(root, sources={"qa": qa_source(base_url, **overrides)}, staging={},
                         env=ENV)  # fmt: skip


def rows(project: Project, sql: str) -> list[tuple[Any, ...]]:
    return table_rows(project, sql)


def test_groups_then_daily_total_scores_land_as_json_objects_keyed_by_header(
    tmp_path: Path, maestroqa: MaestroQAEmulator
) -> None:
    project = qa_project(tmp_path / "p", maestroqa.base_url)
    run_pipeline(project, NOW)
    # One groups snapshot, then one export per due day, each polled until complete.
    paths = [c.path.removeprefix("/api/v1") for c in maestroqa.calls if c.method == "POST"]
    assert paths == ["/request-groups-export"] + ["/request-raw-export"] * 3
    bodies = [c.body for c in maestroqa.requests_of("/request-raw-export")]
    assert bodies[0] == {"startDate": "2024-03-01T00:00:00Z", "endDate": "2024-03-02T00:00:00Z",
                         "singleFileExport": "total_scores"}  # fmt: skip
    assert rows(project, "SELECT count(*) FROM raw.qa_total_scores") == [(75,)]
    assert rows(project, "SELECT count(*) FROM raw.qa_groups") == [(24,)]  # a team, and "All"
    first = rows(project, "SELECT record->>'gradable_id', record->>'agent_id', "
                 "record->>'max_rubric_score', origin FROM raw.qa_total_scores "
                 "ORDER BY load_id, line_no LIMIT 1")  # fmt: skip
    assert first == [("20240301-0", first[0][1], "30", "total_scores_2024-03-01.csv")]
    ids = rows(project, "SELECT DISTINCT record->>'agent_ids' FROM raw.qa_groups "
               "WHERE record->>'agent_name' = 'Agent 1'")  # fmt: skip
    assert ids == [("agent-0001;zd-000001",)]
    cursors = dict(rows(project, "SELECT stream, cursor FROM meta.cursors"))
    assert cursors == {"total_scores": '{"next":"2024-03-04T00:00:00"}',
                       "groups": '{"last":"2024-03-04"}'}  # fmt: skip
    # A second run the same day has nothing to do: no export is requested again.
    run_pipeline(project, NOW)
    assert len([c for c in maestroqa.calls if c.method == "POST"]) == 4


def test_scores_are_typed_by_a_staging_model(tmp_path: Path, maestroqa: MaestroQAEmulator) -> None:
    scores = {
        "source": "qa",
        "stream": "total_scores",
        "unique_key": "gradable_id",
        "columns": {"gradable_id": "VARCHAR", "agent_id": "VARCHAR",
                    "date_graded": "TIMESTAMP", "rubric_score": "INTEGER",
                    "max_rubric_score": "INTEGER"},
    }  # fmt: skip
    source = qa_source(maestroqa.base_url, streams={"total_scores": {}})
    project = build_project(tmp_path / "p", sources={"qa": source},
                            staging={"scores": scores}, env=ENV)  # fmt: skip
    run_pipeline(project, NOW)
    typed = rows(project, "SELECT count(*), count(DISTINCT date_graded::DATE), "
                 "sum(rubric_score), bool_and(rubric_score <= max_rubric_score) "
                 "FROM staging.scores")  # fmt: skip
    raw_sum = rows(project, "SELECT sum((record->>'rubric_score')::INTEGER) "
                   "FROM raw.qa_total_scores")  # fmt: skip
    assert typed == [(75, 3, raw_sum[0][0], True)]


def test_a_download_past_its_deadline_is_retried_then_fails_clearly(
    tmp_path: Path, maestroqa: MaestroQAEmulator
) -> None:
    maestroqa.faults.append(Fault("slow", times=2, seconds=30.0))
    project = qa_project(tmp_path / "p", maestroqa.base_url, streams={"total_scores": {}},
                         deadline="2s", retry={"attempts": 2, "base_delay": "10ms"})  # fmt: skip
    with pytest.raises(SourceError, match=r"download .* still failing after 2 attempts .*deadline"):
        run_pipeline(project, datetime(2024, 3, 2, 6))
    assert rows(project, "SELECT count(*) FROM raw.qa_total_scores") == [(0,)]
    # The export stays pending in the cursor: the next run downloads it without a new request.
    maestroqa.faults.clear()
    run_pipeline(project, datetime(2024, 3, 2, 6))
    assert len(maestroqa.requests_of("/request-raw-export")) == 1
    assert rows(project, "SELECT count(*) FROM raw.qa_total_scores") == [(25,)]


def test_a_crash_while_the_export_is_prepared_resumes_polling_the_same_export(
    tmp_path: Path, maestroqa: MaestroQAEmulator
) -> None:
    project = qa_project(tmp_path / "p", maestroqa.base_url, streams={"total_scores": {}})
    now = datetime(2024, 3, 2, 6).strftime("%Y%m%dT%H")  # one day due
    env = {**env_without_crash(), **ENV}
    command = [str(ANCHORFLOW), "run", "--project", str(project.root), "--now", now]
    crashed = subprocess.run(command, env={**env, "ANCHORFLOW_CRASH_AT": "async_export_requested"},
                             capture_output=True, text=True, timeout=120)  # fmt: skip
    assert crashed.returncode == 86, crashed.stderr
    assert len(maestroqa.requests_of("/request-raw-export")) == 1
    pending = rows(project, "SELECT cursor->>'$.pending.\"2024-03-01\".export_id' "
                   "FROM meta.cursors")  # fmt: skip
    assert pending == [("exp-11-00001",)]
    rerun = subprocess.run(command, env=env, capture_output=True, text=True, timeout=120)
    assert rerun.returncode == 0, rerun.stderr
    assert len(maestroqa.requests_of("/request-raw-export")) == 1  # polled, not requested again
    assert rows(project, "SELECT count(*) FROM raw.qa_total_scores") == [(25,)]
    assert rows(project, "SELECT cursor FROM meta.cursors") == [('{"next":"2024-03-02T00:00:00"}',)]


def test_an_errored_export_is_requested_again_then_fails_naming_the_window(
    tmp_path: Path, maestroqa: MaestroQAEmulator
) -> None:
    maestroqa.faults.append(Fault("errored", times=1))
    project = qa_project(tmp_path / "p", maestroqa.base_url, streams={"total_scores": {}},
                         errored_attempts=2)  # fmt: skip
    run_pipeline(project, datetime(2024, 3, 2, 6))
    assert len(maestroqa.requests_of("/request-raw-export")) == 2  # errored once, then fine
    assert rows(project, "SELECT count(*) FROM raw.qa_total_scores") == [(25,)]

    maestroqa.faults.append(Fault("errored", times=5))
    with pytest.raises(SourceError, match=r"total_scores 2024-03-02 ended 'errored', 2 time"):
        run_pipeline(project, datetime(2024, 3, 3, 6))
    assert len(maestroqa.requests_of("/request-raw-export")) == 4
    # Nothing of the day landed, the cursor stays there with no pending export left.
    assert rows(project, "SELECT count(*) FROM raw.qa_total_scores") == [(25,)]
    assert rows(project, "SELECT cursor FROM meta.cursors") == [('{"next":"2024-03-02T00:00:00"}',)]


def test_429_is_retried_after_the_servers_retry_after(
    tmp_path: Path, maestroqa: MaestroQAEmulator
) -> None:
    maestroqa.faults += [Fault("rate_limit", times=3, seconds=0.05), Fault("server_error")]
    retry = {"attempts": 5, "base_delay": "10ms", "max_delay": "50ms"}
    project = qa_project(tmp_path / "p", maestroqa.base_url, streams={"total_scores": {}},
                         retry=retry)  # fmt: skip
    run_pipeline(project, datetime(2024, 3, 2, 6))
    statuses = [c.status for c in maestroqa.calls]
    assert statuses[:4] == [429, 429, 429, 503]
    assert rows(project, "SELECT count(*) FROM raw.qa_total_scores") == [(25,)]


def test_an_expired_link_is_exchanged_for_a_fresh_one(
    tmp_path: Path, maestroqa: MaestroQAEmulator
) -> None:
    maestroqa.faults.append(Fault("expired", times=2))
    project = qa_project(tmp_path / "p", maestroqa.base_url, streams={"total_scores": {}})
    run_pipeline(project, datetime(2024, 3, 2, 6))
    downloads = [c for c in maestroqa.calls if c.path.startswith("/files/")]
    assert [c.status for c in downloads] == [403, 403, 200]
    assert rows(project, "SELECT count(*) FROM raw.qa_total_scores") == [(25,)]
    assert maestroqa.exports["exp-11-00001"].links == 3  # each re-poll handed out a new link


def test_a_link_that_keeps_expiring_fails_with_the_window_named(
    tmp_path: Path, maestroqa: MaestroQAEmulator
) -> None:
    maestroqa.faults.append(Fault("expired", times=10))
    project = qa_project(tmp_path / "p", maestroqa.base_url, streams={"total_scores": {}},
                         download_attempts=2)  # fmt: skip
    with pytest.raises(SourceError, match=r"link of total_scores 2024-03-01 expired 2 time"):
        run_pipeline(project, datetime(2024, 3, 2, 6))
    assert rows(project, "SELECT count(*) FROM raw.qa_total_scores") == [(0,)]


def test_a_zip_of_all_files_lands_every_csv_with_its_member_as_origin(
    tmp_path: Path, maestroqa: MaestroQAEmulator
) -> None:
    project = qa_project(tmp_path / "p", maestroqa.base_url, streams={"raw": {}})
    run_pipeline(project, datetime(2024, 3, 2, 6))
    counts = rows(project, "SELECT origin, count(*) FROM raw.qa_raw GROUP BY ALL ORDER BY ALL")
    assert counts == [("annotations.csv", 4), ("csat.csv", 25), ("individual_answers.csv", 150),
                      ("section_scores.csv", 75), ("total_scores.csv", 25)]  # fmt: skip
    quoted = rows(project, "SELECT DISTINCT record->>'annotation' FROM raw.qa_raw "
                  "WHERE origin = 'annotations.csv'")  # fmt: skip
    assert quoted == [('Could have offered a refund, "politely"',)]
    assert rows(project, "SELECT count(DISTINCT load_id) FROM raw.qa_raw") == [(1,)]


def test_a_stream_runs_after_the_streams_it_names(
    tmp_path: Path, maestroqa: MaestroQAEmulator
) -> None:
    streams = {"total_scores": {"after": ["csat"]}, "csat": {"after": ["groups"]}, "groups": {}}
    project = qa_project(tmp_path / "p", maestroqa.base_url, streams=streams)
    assert project.sources["qa"].streams == ["groups", "csat", "total_scores"]
    run_pipeline(project, datetime(2024, 3, 2, 6))
    bodies = [c.body.get("singleFileExport", c.path.rsplit("/", 1)[-1])
              for c in maestroqa.calls if c.method == "POST"]  # fmt: skip
    assert bodies == ["request-groups-export", "csat", "total_scores"]


def test_a_cycle_of_streams_is_a_config_error(tmp_path: Path) -> None:
    streams = {"total_scores": {"after": ["csat"]}, "csat": {"after": ["total_scores"]}}
    with pytest.raises(Exception, match=r"cycle: (csat|total_scores) → .* → "):
        qa_project(tmp_path / "p", "http://127.0.0.1:9/api/v1", streams=streams)


def test_the_token_never_appears_in_errors(tmp_path: Path, maestroqa: MaestroQAEmulator) -> None:
    project = build_project(tmp_path / "p", sources={"qa": qa_source(maestroqa.base_url)},
                            staging={}, env={"MAESTROQA_API_TOKEN": TOKEN + "-wrong"})  # fmt: skip
    command = [str(ANCHORFLOW), "run", "--project", str(project.root), "--now", "20240302T06"]
    env = {**env_without_crash(), "MAESTROQA_API_TOKEN": TOKEN + "-wrong"}
    failed = subprocess.run(command, env=env, capture_output=True, text=True, timeout=120)
    assert failed.returncode != 0
    assert "refused the credentials (HTTP 401" in failed.stdout + failed.stderr
    assert TOKEN not in failed.stdout + failed.stderr
    logs = "".join(p.read_text() for p in project.root.rglob("*.log*") if p.is_file())
    assert TOKEN not in logs


def test_a_backfill_of_days_requests_them_again_and_leaves_the_snapshot_alone(
    tmp_path: Path, maestroqa: MaestroQAEmulator
) -> None:
    project = qa_project(tmp_path / "p", maestroqa.base_url)
    run_pipeline(project, NOW)
    with Pipeline(project, now=NOW) as pipeline:
        summary = pipeline.backfill("qa", "2024-03-02", "2024-03-02")
    assert [(w.stream, w.window_key, w.replaced) for w in summary.windows] == [
        ("total_scores", "2024-03-02", 1)]  # fmt: skip
    assert len(maestroqa.requests_of("/request-groups-export")) == 1
    assert rows(project, "SELECT count(*) FROM raw.qa_total_scores") == [(75,)]
    assert rows(project, "SELECT stream, cursor FROM meta.cursors ORDER BY 1") == [
        ("groups", '{"last":"2024-03-04"}'),
        ("total_scores", '{"next":"2024-03-04T00:00:00"}'),
    ]


def test_a_pending_export_the_api_forgot_is_requested_anew(
    tmp_path: Path, maestroqa: MaestroQAEmulator
) -> None:
    project = qa_project(tmp_path / "p", maestroqa.base_url, streams={"total_scores": {}})
    env = {**env_without_crash(), **ENV}
    command = [str(ANCHORFLOW), "run", "--project", str(project.root), "--now", "20240302T06"]
    crashed = subprocess.run(command, env={**env, "ANCHORFLOW_CRASH_AT": "async_export_requested"},
                             capture_output=True, text=True, timeout=120)  # fmt: skip
    assert crashed.returncode == 86, crashed.stderr
    maestroqa.exports.clear()  # the API lets go of exports nobody fetched
    rerun = subprocess.run(command, env=env, capture_output=True, text=True, timeout=120)
    assert rerun.returncode == 0, rerun.stderr
    assert next(c.status for c in maestroqa.calls if "get-export-data" in c.path) == 404
    assert len(maestroqa.requests_of("/request-raw-export")) == 2
    assert rows(project, "SELECT count(*) FROM raw.qa_total_scores") == [(25,)]


def test_a_secret_header_is_redacted_like_the_token(tmp_path: Path) -> None:
    from anchorflow import redact

    qa_project(tmp_path / "p", "http://127.0.0.1:9/api/v1",
               headers={"x-tenant-key": "${QA_TENANT}"})  # fmt: skip
    said = redact.redact("tenant tenant-9f8e7d, token mqa-token-5f3c9e1d")
    assert said == "tenant ***, token ***"


def test_an_export_that_keeps_erroring_sends_a_slack_alert_naming_it(
    tmp_path: Path, maestroqa: MaestroQAEmulator, receiver: Receiver
) -> None:
    maestroqa.faults.append(Fault("errored", times=5))
    source = qa_source(maestroqa.base_url, streams={"total_scores": {}}, errored_attempts=2)
    project = build_project(tmp_path / "p", sources={"qa": source}, staging={}, env=ENV,
                            alerts=[{"kind": "slack", "url": receiver.url}])  # fmt: skip
    with pytest.raises(SourceError):
        run_pipeline(project, datetime(2024, 3, 2, 6))
    (alert,) = receiver.bodies
    assert alert["text"].startswith("*test*: `anchorflow run` failed")
    assert "export of total_scores 2024-03-01 ended 'errored', 2 time(s)" in alert["text"]
    assert TOKEN not in alert["text"]


def test_the_example_project_explodes_agent_ids_and_builds_the_wide_mart(
    tmp_path: Path, maestroqa: MaestroQAEmulator
) -> None:
    import shutil

    from anchorflow.config import load_project

    root = tmp_path / "maestroqa"
    shutil.copytree(Path(__file__).parents[2] / "examples" / "maestroqa", root)
    env = {**ENV, "MAESTROQA_BASE_URL": maestroqa.base_url}
    project = load_project(root, env=env)
    run_pipeline(project, NOW)
    # 12 agents, every third with two ids, each in a team and in "All Agents".
    assert rows(project, "SELECT count(*), count(DISTINCT agent_id) FROM staging.agent_groups") \
        == [(32, 16)]  # fmt: skip
    both = rows(project, "SELECT list(agent_id ORDER BY id_index) FROM staging.agent_groups "
                "WHERE agent_name = 'Agent 1' AND group_name = 'All Agents'")  # fmt: skip
    assert both == [(["agent-0001", "zd-000001"],)]
    # Every ticket twice (its team, All Agents), whichever of its agent's ids it carries.
    per_country = rows(project, "SELECT country, count(*) FROM marts.grading GROUP BY 1 "
                       "ORDER BY 1")  # fmt: skip
    assert dict(per_country)["All"] == 75
    assert sum(n for c, n in per_country if c != "All") == 75
    assert rows(project, "SELECT count(*) FROM marts.grading WHERE country IS NULL") == [(0,)]
