"""fraud.evaluate on tiny hand-built flags and truth: every figure below is computed by hand."""

from __future__ import annotations

import dataclasses
import json
from datetime import datetime
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from anchorflow.fraud.evaluate import ANY, Evaluation, Scores, evaluate, format_evaluation

pytestmark = pytest.mark.unit

AT = datetime(2026, 11, 2, 12)
USER_FLAGS = pa.schema([("user_id", pa.string()), ("rule", pa.string()),
                        ("rule_run_id", pa.string()), ("severity", pa.string()),
                        ("shadow", pa.bool_()), ("flagged_at", pa.timestamp("us"))])  # fmt: skip
EVENT_FLAGS = pa.schema([("event_id", pa.string()), ("event_kind", pa.string()),
                         ("user_id", pa.string()), ("rule", pa.string()),
                         ("rule_run_id", pa.string()), ("shadow", pa.bool_()),
                         ("event_time", pa.timestamp("us"))])  # fmt: skip


@pytest.fixture
def truth(tmp_path: Path) -> Path:
    """u1, u2: pattern a (plain, evasive); u3: pattern b; u4 cgnat, u5 plain genuine, u6 vpn.
    Clicks c1, c2 of the click-only pattern ip_velocity; e1 of u1, e2 of u3, e3 of u5."""
    pq.write_table(pa.table({
        "user_id": ["u1", "u2", "u3", "u4", "u5", "u6"],
        "fraud": [True, True, True, False, False, False],
        "pattern": ["a", "a", "b", None, None, None],
        "variant": ["plain", "evasive", "plain", None, None, None],
        "negative": [None, None, None, "cgnat", None, "vpn"],
    }), tmp_path / "users.parquet")  # fmt: skip
    pq.write_table(pa.table({
        "event_id": ["c1", "c2", "e1", "e2", "e3"],
        "event_kind": ["click", "click", "event", "event", "event"],
        "user_id": [None, None, "u1", "u3", "u5"],
        "fraud": [True, True, True, True, False],
        "pattern": ["ip_velocity", "ip_velocity", "a", "b", None],
        "variant": ["plain", "evasive", "plain", "plain", None],
    }), tmp_path / "events.parquet")  # fmt: skip
    return tmp_path


def user_flags(rows: list[tuple[str, str, bool]]) -> pa.Table:
    return pa.Table.from_pylist(
        [{"user_id": u, "rule": r, "rule_run_id": f"run_{r}", "severity": "high", "shadow": s,
          "flagged_at": AT} for u, r, s in rows], schema=USER_FLAGS)  # fmt: skip


def event_flags(rows: list[tuple[str, str, str | None, str, bool]]) -> pa.Table:
    keys = ("event_id", "event_kind", "user_id", "rule")
    rows_ = [{**dict(zip(keys, row[:4], strict=True)), "rule_run_id": f"run_{row[3]}",
              "shadow": row[4], "event_time": AT} for row in rows]  # fmt: skip
    return pa.Table.from_pylist(rows_, schema=EVENT_FLAGS)


@pytest.fixture
def evaluation(truth: Path) -> Evaluation:
    # rule a flags u1 (twice, as two runs would) and the cgnat u4; rule b, in shadow mode,
    # flags u3 and u2; ip_velocity flags click c1; rule a also flags e1 and genuine e3.
    users = user_flags([("u1", "a", False), ("u1", "a", False), ("u4", "a", False),
                        ("u3", "b", True), ("u2", "b", True)])  # fmt: skip
    events = event_flags(
        [
            ("c1", "click", None, "ip_velocity", False),
            ("e1", "event", "u1", "a", False),
            ("e3", "event", "u5", "a", False),
        ]
    )
    return evaluate(users, events, truth)


def by_rule(e: Evaluation) -> dict[str, dict[str, Scores]]:
    return {r.rule: {"user": r.user, "event": r.event} for r in [e.overall, *e.rules]}


def test_scores_per_rule_and_overall(evaluation: Evaluation) -> None:
    s = by_rule(evaluation)
    assert s["a"]["user"] == Scores(2, 1, 1, 1, 0.5, 0.5, 0.5)
    assert s["b"]["user"] == Scores(2, 2, 0, 0, 1.0, 1.0, 1.0)  # precision against all fraud
    # overall: rule b is in shadow mode, so only u1 and u4 count
    overall = s[ANY]["user"]
    assert dataclasses.astuple(overall)[:5] == (
        2,
        1,
        1,
        2,
        0.5,
    ) and overall.recall == pytest.approx(1 / 3)
    assert overall.f1 == pytest.approx(0.4)
    assert s["ip_velocity"]["event"] == Scores(1, 1, 0, 1, 1.0, 0.5, pytest.approx(2 / 3))
    assert s["a"]["event"] == Scores(2, 1, 1, 0, 0.5, 1.0, pytest.approx(2 / 3))
    overall_events = s[ANY]["event"]
    assert dataclasses.astuple(overall_events)[:4] == (3, 2, 1, 2)
    assert overall_events.precision == pytest.approx(2 / 3) and overall_events.recall == 0.5
    assert overall_events.f1 == pytest.approx(4 / 7)
    assert [r.rule for r in evaluation.rules if r.shadow] == ["b"]
    assert (evaluation.fraud_users, evaluation.genuine_users) == (3, 3)
    assert (evaluation.fraud_events, evaluation.genuine_events) == (4, 1)


def test_division_by_zero_gives_none(evaluation: Evaluation) -> None:
    s = by_rule(evaluation)
    assert s["ip_velocity"]["user"] == Scores(0, 0, 0, None, None, None, None)  # no such users
    assert s["b"]["event"] == Scores(0, 0, 0, 1, None, 0.0, None)  # flagged no event of b


def test_recall_matrix_by_pattern_and_variant(evaluation: Evaluation) -> None:
    cells = {(c.rule, c.pattern, c.variant): (c.level, c.total, c.flagged, c.recall)
             for c in evaluation.recall_matrix}  # fmt: skip
    assert len(cells) == 4 * 5  # rules (any, a, b, ip_velocity) × pattern variants
    assert cells[("a", "a", "plain")] == ("user", 1, 1, 1.0)
    assert cells[("a", "a", "evasive")] == ("user", 1, 0, 0.0)
    assert cells[("b", "a", "evasive")] == ("user", 1, 1, 1.0)
    assert cells[("b", "b", "plain")] == ("user", 1, 1, 1.0)
    assert cells[(ANY, "b", "plain")] == ("user", 1, 0, 0.0)  # b flags it only in shadow
    assert cells[("ip_velocity", "ip_velocity", "plain")] == ("event", 1, 1, 1.0)
    assert cells[("ip_velocity", "ip_velocity", "evasive")] == ("event", 1, 0, 0.0)
    assert cells[(ANY, "ip_velocity", "plain")] == ("event", 1, 1, 1.0)


def test_false_positive_rate_on_hard_negatives(evaluation: Evaluation) -> None:
    rates = {(n.rule, n.group): (n.users, n.flagged, n.rate) for n in evaluation.negatives}
    assert rates[(ANY, "cgnat")] == (1, 1, 1.0)
    assert rates[(ANY, "vpn")] == (1, 0, 0.0)
    assert rates[(ANY, "genuine")][:2] == (3, 1)
    assert rates[(ANY, "genuine")][2] == pytest.approx(1 / 3)
    assert rates[("b", "cgnat")] == (1, 0, 0.0)


def test_no_flags_at_all(truth: Path) -> None:
    e = evaluate(user_flags([]), event_flags([]), truth)
    assert e.overall.user == Scores(0, 0, 0, 3, None, 0.0, None)
    assert e.rules == [] and all(c.flagged == 0 for c in e.recall_matrix)


def test_serialisable_and_printable(evaluation: Evaluation) -> None:
    text = json.dumps(dataclasses.asdict(evaluation))
    assert '"rule": "a"' in text
    lines = format_evaluation(evaluation)
    assert any(line.split()[:2] == ["user", "a"] and line.split()[-3:] == ["0.500"] * 3
               for line in lines)  # fmt: skip
    assert any(line.startswith("cgnat") and line.endswith("rate 1.000") for line in lines)
