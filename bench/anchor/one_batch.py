"""Peak memory of ONE `load_anchor` call over N events, per `anchor.memory_limit` setting.

    python -m bench.anchor.one_batch EVENTS BASE_DIR SETTING [SETTING ...]

BASE_DIR gets a project with EVENTS events in staging (`bench.anchor`'s workload; reused when it
is there); each SETTING anchors a copy of it in a fresh process (`bench.anchor`'s `anchor`:
seconds, peak memory from wait4, CPU seconds, the largest resident sizes by statement), one
line each. A SETTING is `anchor.memory_limit` (`none`, or a size such as `3GB`), optionally
followed by `/` and `anchor.group_rows` (a number, or `none`: one group), e.g. `none/none`,
and by `/` and `anchor.group_memory_limit` (`none` or a size), e.g. `none/4000000/none`;
without them, the defaults.
"""

from __future__ import annotations

import argparse
import shutil
import sys
from pathlib import Path

import yaml

from bench.anchor import workload
from bench.anchor.__main__ import anchor, copy_project, generate


def main() -> None:
    events, base, settings = int(sys.argv[1]), Path(sys.argv[2]), sys.argv[3:]
    if not (base / "warehouse.duckdb").exists():
        print(generate(base, [workload.history(events, 1_000_000)]), flush=True)
    for setting in settings:
        root = base.parent / f"{base.name}-{setting.replace('/', '-')}"
        shutil.rmtree(root, ignore_errors=True)
        copy_project(base, root)
        config = yaml.safe_load((root / "anchorflow.yml").read_text())
        memory, _, rest = setting.partition("/")
        groups, _, group_memory = rest.partition("/")
        section = config.setdefault("anchor", {})
        section["memory_limit"] = None if memory == "none" else memory
        if groups:
            section["group_rows"] = None if groups == "none" else int(groups)
        if group_memory:
            section["group_memory_limit"] = None if group_memory == "none" else group_memory
        (root / "anchorflow.yml").write_text(yaml.safe_dump(config))
        run = anchor(root, 1, argparse.Namespace(tries=1, idle=0.0))
        shown = ("seconds", "peak_mb", "cpu_seconds", "observed_per_s", "rss_mb_by_statement")
        print(setting, {k: run.get(k) for k in shown}, flush=True)
        shutil.rmtree(root)


if __name__ == "__main__":
    main()
