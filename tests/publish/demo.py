"""The demo project (examples/product_analytics) on the tests' small synthetic traffic: its
project file and marts as they are, loaded through the real pipeline from the emulator."""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from pathlib import Path

from anchorflow.config import Project, load_project
from anchorflow.dev.synth.costs import write_cost_files
from tests.anchor.pipeline_project import emulator_running
from tests.builders import ENV
from tests.conftest import START, available_at, run_demo_feeds

DEMO = Path(__file__).resolve().parents[2] / "examples" / "product_analytics"
HOURS = 26  # crosses midnight: two days of events, two cost files


def demo_project(root: Path, base_url: str, **extra: str) -> Project:
    """A copy of the demo project in `root` (without its warehouse or data), talking to the
    emulator at `base_url`, with the demo's cost files for two days."""
    made = ("*.duckdb*", ".env", ".data", ".anchorflow", ".postgres", "exports")  # by make demo
    shutil.copytree(DEMO, root, ignore=shutil.ignore_patterns(*made))
    if extra:
        with (root / "anchorflow.yml").open("a") as file:
            file.write("".join(f"\n{key}:\n{value}\n" for key, value in extra.items()))
    write_cost_files(root / ".data" / "costs", START, days=2)
    return load_project(root, env={**os.environ, **ENV, "AMPLITUDE_BASE_URL": base_url})


def load_demo(project: Project, hours: int = HOURS) -> None:
    run_demo_feeds(project, available_at(hours))


def loaded_demo(root: Path) -> Iterator[Project]:
    """The demo project loaded with `HOURS` hours; wrap with a module-scoped fixture."""
    with emulator_running() as emulator:
        project = demo_project(root, emulator.base_url)
        load_demo(project)
        yield project
