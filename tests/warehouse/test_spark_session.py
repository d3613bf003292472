"""The Spark session a project's warehouse runs on: the project's Spark settings (`conf`) reach
it, and in local mode the driver gets more than Spark's default 1g of memory."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
import yaml

from anchorflow.config import load_project
from anchorflow.warehouse import connect
from anchorflow.warehouse.spark.session import local_driver_memory


@pytest.mark.unit
def test_the_local_drivers_memory_is_a_quarter_of_the_machine_within_bounds() -> None:
    found = re.fullmatch(r"(\d+)g", local_driver_memory())
    assert found is not None and 1 <= int(found.group(1)) <= 8


@pytest.mark.integration
def test_the_projects_spark_settings_reach_its_session(engine: str, tmp_path: Path) -> None:
    if engine != "spark":
        pytest.skip("Spark's settings")
    (tmp_path / "anchorflow.yml").write_text(yaml.safe_dump({
        "name": "conf", "warehouse": {"engine": "spark", "master": "local[2]",
                                      "conf": {"spark.sql.shuffle.partitions": 3}},
    }))  # fmt: skip
    with connect(load_project(tmp_path)) as configured:
        assert configured.spark.conf.get("spark.sql.shuffle.partitions") == "3"  # type: ignore[attr-defined]
        assert configured.scalar("SELECT 1 + 1") == 2
        other = tmp_path / "other"
        other.mkdir()
        (other / "anchorflow.yml").write_text(
            yaml.safe_dump({"name": "plain", "warehouse": {"engine": "spark"}})
        )
        with connect(load_project(other)) as plain:  # a session of its own
            assert plain.spark.conf.get("spark.sql.shuffle.partitions") == "1"  # type: ignore[attr-defined]
