"""Synthetic MaestroQA grading data: the CSV files of its exports, deterministic from a seed.

A fixed roster of agents in groups (a team each, named after a country as in the reference
article's team → country mapping, and "All Agents"; every third agent has a second, helpdesk
id, so `agent_ids` lists two); every day, `graded_per_day` tickets graded by a handful of
graders, each with its total score, its section scores, its individual answers, maybe an
annotation and a CSAT rating. Columns follow MaestroQA's documented exports. Tables are built
with numpy and written by Arrow's CSV writer, so a million answers take seconds, not minutes.
"""

from __future__ import annotations

import io
from dataclasses import dataclass
from datetime import date, datetime, timedelta

import numpy as np
import pyarrow as pa
import pyarrow.csv as pa_csv

# The reference article's teams (its mart maps them to countries); every agent is also in
# "All Agents", as in MaestroQA.
TEAMS = ("UK Team", "Ru Team", "FR Team")
ALL_AGENTS = "All Agents"
GRADERS = ("grace.hopper@qa.example", "alan.turing@qa.example", "ada.lovelace@qa.example")
SECTIONS = ("Greeting", "Resolution", "Tone")
QUESTIONS_PER_SECTION = 2
RUBRIC = "Support rubric v3"


@dataclass(frozen=True)
class GradingSpec:
    seed: int = 7
    agents: int = 40
    graded_per_day: int = 60


@dataclass(frozen=True)
class Roster:
    agent_id: np.ndarray  # "agent-0001"
    agent_name: np.ndarray
    agent_email: np.ndarray
    group: np.ndarray  # index into TEAMS
    helpdesk_id: np.ndarray  # a second id ("zd-000001") for every third agent, else agent_id


def roster(spec: GradingSpec) -> Roster:
    n = np.arange(1, spec.agents + 1)
    ids = np.char.add("agent-", np.char.zfill(n.astype(str), 4))
    names = np.char.add("Agent ", n.astype(str))
    emails = np.char.add(np.char.add("agent", n.astype(str)), "@support.example")
    group = np.random.default_rng(spec.seed).integers(0, len(TEAMS), spec.agents)
    second = np.char.add("zd-", np.char.zfill(n.astype(str), 6))
    helpdesk = np.where((n - 1) % 3 == 0, second, ids)
    return Roster(ids, names, emails, group, helpdesk)


def groups_csv(spec: GradingSpec, include_unavailable: bool = True) -> bytes:
    """group_name, group_id, agent_name, agent_email, agent_ids (semicolon-separated: an agent
    has an id in each helpdesk it works in), available."""
    agents = roster(spec)
    both = np.char.add(np.char.add(agents.agent_id, ";"), agents.helpdesk_id)
    ids = np.where(agents.helpdesk_id != agents.agent_id, both, agents.agent_id)
    available = np.arange(spec.agents) % 10 != 9
    table = pa.table({
        "group_name": np.concatenate([np.array(TEAMS)[agents.group],
                                      np.full(spec.agents, ALL_AGENTS)]),
        "group_id": np.concatenate([np.char.add("grp-", agents.group.astype(str)),
                                    np.full(spec.agents, "grp-all")]),
        "agent_name": np.tile(agents.agent_name, 2),
        "agent_email": np.tile(agents.agent_email, 2),
        "agent_ids": np.tile(ids, 2),
        "available": np.tile(available, 2),
    })  # fmt: skip
    if not include_unavailable:
        table = table.filter(pa.array(np.tile(available, 2)))
    return to_csv(table)


def graded(spec: GradingSpec, first: date, last: date) -> pa.Table:
    """One row per graded ticket of the days `first`..`last` (inclusive)."""
    days = [first + timedelta(days=i) for i in range((last - first).days + 1)]
    return pa.concat_tables([_graded_day(spec, day) for day in days]) if days else _empty()


def _graded_day(spec: GradingSpec, day: date) -> pa.Table:
    rng = np.random.default_rng([spec.seed, day.toordinal()])
    count, agents = spec.graded_per_day, roster(spec)
    who = rng.integers(0, spec.agents, count)
    seconds = np.sort(rng.integers(0, 86_400, count))
    midnight = np.datetime64(datetime.combine(day, datetime.min.time()), "s")
    max_score = np.full(count, len(SECTIONS) * QUESTIONS_PER_SECTION * 5)
    return pa.table({
        "gradable_id": np.char.add(f"{day:%Y%m%d}-", np.arange(count).astype(str)),
        # Tickets of the helpdesk carry the agent's helpdesk id: the groups' agent_ids list both.
        "agent_id": np.where(rng.random(count) < 0.5, agents.helpdesk_id[who],
                             agents.agent_id[who]),
        "agent_name": agents.agent_name[who],
        "agent_email": agents.agent_email[who],
        "grader": np.array(GRADERS)[rng.integers(0, len(GRADERS), count)],
        "date_graded": np.char.add(
            np.datetime_as_string(midnight + seconds.astype("timedelta64[s]")), "Z"),
        "rubric_score": rng.integers(10, max_score + 1),
        "max_rubric_score": max_score,
        "rubric_name": np.full(count, RUBRIC),
    })  # fmt: skip


def _empty() -> pa.Table:
    return _graded_day(GradingSpec(graded_per_day=0), date(2000, 1, 1))


def total_scores(table: pa.Table) -> bytes:
    return to_csv(table)


def section_scores(table: pa.Table, seed: int) -> bytes:
    repeat = len(SECTIONS)
    rows = np.repeat(np.arange(table.num_rows), repeat)
    rng = np.random.default_rng([seed, table.num_rows, 1])
    return to_csv(pa.table({
        "gradable_id": table.column("gradable_id").take(rows),
        "agent_id": table.column("agent_id").take(rows),
        "section_name": np.tile(np.array(SECTIONS), table.num_rows),
        "section_score": rng.integers(0, QUESTIONS_PER_SECTION * 5 + 1, len(rows)),
        "max_section_score": np.full(len(rows), QUESTIONS_PER_SECTION * 5),
        "date_graded": table.column("date_graded").take(rows),
    }))  # fmt: skip


def individual_answers(table: pa.Table, seed: int, per_ticket: int | None = None) -> bytes:
    """One row per answered question: `per_ticket` questions per graded ticket."""
    repeat = per_ticket or len(SECTIONS) * QUESTIONS_PER_SECTION
    rows = np.repeat(np.arange(table.num_rows), repeat)
    question = np.tile(np.arange(repeat), table.num_rows)
    rng = np.random.default_rng([seed, table.num_rows, 2])
    return to_csv(pa.table({
        "gradable_id": table.column("gradable_id").take(rows),
        "agent_id": table.column("agent_id").take(rows),
        "grader": table.column("grader").take(rows),
        "section_name": np.array(SECTIONS)[question % len(SECTIONS)],
        "question_id": np.char.add("q", question.astype(str)),
        "answer": rng.integers(0, 6, len(rows)),
        "max_answer": np.full(len(rows), 5),
        "date_graded": table.column("date_graded").take(rows),
    }))  # fmt: skip


def annotations_csv(table: pa.Table) -> bytes:
    chosen = pa.array(np.arange(table.num_rows) % 7 == 0)
    some = table.filter(chosen)
    return to_csv(pa.table({
        "gradable_id": some.column("gradable_id"),
        "grader": some.column("grader"),
        "annotation": pa.array(np.full(some.num_rows, "Could have offered a refund, \"politely\"")),
        "date_graded": some.column("date_graded"),
    }))  # fmt: skip


def csat(table: pa.Table, seed: int) -> bytes:
    rng = np.random.default_rng([seed, table.num_rows, 3])
    return to_csv(pa.table({
        "gradable_id": table.column("gradable_id"),
        "agent_id": table.column("agent_id"),
        "csat_score": rng.integers(1, 6, table.num_rows),
        "date_graded": table.column("date_graded"),
    }))  # fmt: skip


def audit_log(spec: GradingSpec, first: date, last: date) -> bytes:
    table = graded(spec, first, last)
    return to_csv(pa.table({
        "date": table.column("date_graded"),
        "user": table.column("grader"),
        "action": pa.array(np.full(table.num_rows, "grade.submitted")),
        "target": table.column("gradable_id"),
    }))  # fmt: skip


def raw_export_files(spec: GradingSpec, first: date, last: date) -> dict[str, bytes]:
    """The files of a raw export without `singleFileExport`: one CSV per kind."""
    table = graded(spec, first, last)
    return {
        "individual_answers.csv": individual_answers(table, spec.seed),
        "section_scores.csv": section_scores(table, spec.seed),
        "total_scores.csv": total_scores(table),
        "annotations.csv": annotations_csv(table),
        "csat.csv": csat(table, spec.seed),
    }


def to_csv(table: pa.Table) -> bytes:
    out = io.BytesIO()
    pa_csv.write_csv(table, out, pa_csv.WriteOptions(quoting_style="needed"))
    return out.getvalue()
