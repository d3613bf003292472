"""The `metrics:` section read: one line per problem naming its key, when the file is read;
what only the engine can tell (a column of a mart or an anchor view), when `validate` binds
every metric on the scratch warehouse."""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import pytest

from anchorflow.errors import ConfigError
from anchorflow.run.pipeline import check_project
from tests.metrics.cases import METRICS, shop_project

pytestmark = pytest.mark.unit


def problems(
    tmp_path: Path, change: dict[str, Any], marts: dict[str, str] | None = None
) -> list[str]:
    metrics = copy.deepcopy(METRICS)
    for path, value in change.items():
        *parents, last = path.split(".")
        node = metrics
        for part in parents:
            node = node.setdefault(part, {})
        node[last] = value
    with pytest.raises(ConfigError) as error:
        shop_project(tmp_path / "p", metrics_override=metrics)
    return error.value.problems


@pytest.mark.parametrize(
    ("change", "expected"),
    [
        ({"metrics.revenue": {"measure": "events.revenu"}},
         "anchorflow.yml: metrics.metrics.revenue.measure: model events has no measure 'revenu' "
         "(did you mean 'revenue'?)"),
        ({"metrics.conversion": {"ratio": ["buyers", "visitors"]}},
         "anchorflow.yml: metrics.metrics.conversion.ratio: unknown metric 'visitors'"),
        ({"models.events.joins.account.model": "acounts"},
         "anchorflow.yml: metrics.models.events.joins.account.model: unknown model 'acounts' "
         "(did you mean 'accounts'?)"),
        ({"models.accounts.joins": {"back": {"model": "events", "relationship": "one_to_one",
                                              "on": {"user_id": "user_id"}}}},
         "anchorflow.yml: metrics.models: their joins form a cycle: events → accounts → events"),
        ({"models.events.measures.events": {"agg": "median"}},
         "anchorflow.yml: metrics.models.events.measures.events.agg: Input should be 'count'"),
        ({"models.events.measures.events": {"agg": "sum"}},
         "anchorflow.yml: metrics.models.events.measures.events: agg sum needs column: or sql:"),
        ({"models.events.dimensions.kind": {"sql": "(SELECT 1)"}},
         "anchorflow.yml: metrics.models.events.dimensions.kind: expected an expression "
         "over the table's columns, not a query"),
        ({"models.events.time.grains": ["fortnight"]},
         "anchorflow.yml: metrics.models.events.time.grains.0: Input should be 'hour'"),
        ({"models.events.model": "event"},
         "anchorflow.yml: metrics.models.events.model: unknown staging model 'event' "
         "(did you mean 'events'?)"),
        ({"models.events.dimensions.country": "contry"},
         "anchorflow.yml: metrics.models.events.dimensions.country: staging.events has no column "
         "'contry' (did you mean 'country'?)"),
        ({"models.events.joins.account.on": {"user_id": "userid"}},
         "anchorflow.yml: metrics.models.events.joins.account.on.user_id: staging.accounts has "
         "no column 'userid'"),
        ({"models.accounts.model": None, "models.accounts.table": "marts.acounts"},
         "anchorflow.yml: metrics.models.accounts.table: the project makes no marts.acounts"),
        ({"models.accounts": {"table": "raw.accounts"}},
         "anchorflow.yml: metrics.models.accounts: table: expected <schema>.<table> in "
         "staging, anchor, marts, got 'raw.accounts'"),
        ({"alerts": {"drop": {"metric": "revenu", "change": {"by": "-30%"}}}},
         "anchorflow.yml: metrics.alerts.drop.metric: unknown metric 'revenu'"),
        ({"alerts": {"drop": {"metric": "revenue", "change": {"by": "a lot"}}}},
         "anchorflow.yml: metrics.alerts.drop.change.by: expected a percentage such as -30%"),
        ({"alerts": {"hourly": {"metric": "purchases", "grain": "hour", "above": 1}}},
         "anchorflow.yml: metrics.alerts.hourly.grain: model purchases (of metric purchases) "
         "has no grain 'hour' (grains: day, week, month)"),
        ({"alerts": {"total": {"metric": "accounts", "above": 1}}},
         "anchorflow.yml: metrics.alerts.total.grain: model accounts (of metric accounts) has "
         "no grain 'day' (grains: none: it has no time:)"),
        ({"alerts": {"drop": {"metric": "revenue", "above": 1, "below": 0}}},
         "anchorflow.yml: metrics.alerts.drop: give the alert one condition"),
    ],
)  # fmt: skip
def test_a_bad_reference_is_one_line_naming_its_key(
    tmp_path: Path, change: dict[str, Any], expected: str
) -> None:
    found = problems(tmp_path, change)
    assert len(found) == 1, found
    assert found[0].startswith(expected) or expected in found[0], found


def test_validate_binds_every_metric_and_alert(tmp_path: Path) -> None:
    metrics = copy.deepcopy(METRICS)
    metrics["models"]["accounts"] = {
        "table": "anchor.User_latest", "dimensions": {"plan": "plann"},
        "measures": {"accounts": {"agg": "count"}},
    }  # fmt: skip
    metrics["alerts"] = {
        "drop": {"metric": "revenue", "grain": "day", "below": 1, "where": ["country = = DE"]},
    }
    anchor = {"entities": {"User": {"key": "user_id", "sources": ["events"],
                                    "changed_at": "event_time",
                                    "attributes": {"platform": {"model": "events"}}}}}  # fmt: skip
    project = shop_project(tmp_path / "p", metrics_override=metrics, anchor=anchor)
    with pytest.raises(ConfigError) as error:
        check_project(project)
    found = error.value.problems
    assert len(found) == 2, found
    assert found[0].startswith(
        "anchorflow.yml: metrics.models.accounts.dimensions.plan: Binder Error: "
    )
    assert "plann" in found[0]  # the metrics of the models that reach it are not bound again
    assert found[1].startswith("anchorflow.yml: metrics.alerts.drop.where: filter 'country = = DE'")
