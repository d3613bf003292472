"""The fraud benchmark: `python -m bench.fraud [--quick] [--work DIR]`.

1. Throughput: labelled marketing traffic of about 1M and 10M rows (clicks + registrations +
   events; --quick: 1M only) is generated, loaded through the pipeline like any user's data
   (files → raw → staging → anchor, timed apart), then the whole rule catalogue runs over all
   of it in one `fraud run`: seconds and rows/s (target: 10M in ≤ 60 s on 2 cores).
2. Quality: the default mix over 5 seeds (--quick: 2): generated, loaded, the catalogue run,
   then `fraud evaluate` (with the re-run checksum): precision, recall and F1 at user and event
   level per seed, the mean, and the recall matrix rule × pattern of the first seed.

Writes bench/results/fraud.json. Generated traffic is kept under --work between runs (the same
seed writes the same bytes).
"""

from __future__ import annotations

import argparse
import json
import shutil
import tempfile
import time
from dataclasses import asdict
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import yaml
from rich.console import Console

from anchorflow.config import load_project
from anchorflow.dev.synth.marketing import MarketingSpec, write_marketing
from anchorflow.run import Pipeline
from bench.machine import machine

ROOT = Path(__file__).resolve().parents[2]
RESULTS = ROOT / "bench" / "results" / "fraud.json"
EXAMPLE = ROOT / "examples" / "fraud" / "anchorflow.yml"
START = datetime(2024, 3, 1, tzinfo=UTC)
console = Console(width=140)


def project_in(target: Path) -> Path:
    """The example project in `target`, its traffic under target/.data; rules run apart."""
    data = yaml.safe_load(EXAMPLE.read_text())
    data["fraud"]["on_run"] = False
    target.mkdir(parents=True, exist_ok=True)
    (target / "anchorflow.yml").write_text(yaml.safe_dump(data, sort_keys=False))
    return target


def prepared(work: Path, name: str, spec: MarketingSpec) -> tuple[Path, dict[str, Any]]:
    """Generate (or reuse) the traffic, load it into a fresh warehouse; the load's figures."""
    target = project_in(work / name)
    for stale in ("warehouse.duckdb", "warehouse.duckdb.wal", ".anchorflow"):
        path = target / stale
        shutil.rmtree(path) if path.is_dir() else path.unlink(missing_ok=True)
    started = time.perf_counter()
    files = write_marketing(target / ".data" / "marketing", target / ".data" / "truth", spec)
    generated = time.perf_counter() - started
    project = load_project(target / "anchorflow.yml")
    started = time.perf_counter()
    with Pipeline(project) as pipeline:
        pipeline.run()
    loaded = time.perf_counter() - started
    rows = sum(files.counts.get(k, 0) for k in ("clicks", "registrations", "events"))
    console.print(
        f"{name}: {rows:,} rows ({files.counts}), generated in {generated:.1f}s, "
        f"loaded (raw → staging → anchor) in {loaded:.1f}s",
        highlight=False,
    )
    return target, {"rows": rows, "counts": files.counts, "generate_seconds": generated,
                    "load_seconds": loaded}  # fmt: skip


def throughput(work: Path, name: str, clicks_per_day: int, days: int) -> dict[str, Any]:
    spec = MarketingSpec(seed=1, start=START, days=days, clicks_per_day=clicks_per_day)
    target, figures = prepared(work, name, spec)
    project = load_project(target / "anchorflow.yml")
    with Pipeline(project) as pipeline:
        started = time.perf_counter()
        result = pipeline.fraud()
        seconds = time.perf_counter() - started
    per_rule = {r.rule: round(r.seconds, 2) for r in result.runs}
    figures.update(
        catalogue_seconds=round(seconds, 2),
        rows_per_second=round(figures["rows"] / seconds),
        rules_run=len(result.runs),
        skipped=result.skipped,
        per_rule_seconds=per_rule,
    )
    console.print(
        f"{name}: the catalogue ({len(result.runs)} rules) in {seconds:.1f}s = "
        f"{figures['rows_per_second']:,} rows/s; slowest: "
        + ", ".join(f"{k} {v}s" for k, v in sorted(per_rule.items(), key=lambda kv: -kv[1])[:4]),
        highlight=False,
    )
    return figures


def quality(work: Path, seeds: list[int]) -> dict[str, Any]:
    from anchorflow.fraud.evaluate import format_evaluation

    per_seed = []
    first_matrix: Any = None
    for seed in seeds:
        spec = MarketingSpec(seed=seed, start=START)
        target, figures = prepared(work, f"quality_{seed}", spec)
        project = load_project(target / "anchorflow.yml")
        with Pipeline(project) as pipeline:
            pipeline.fraud()
            result = pipeline.fraud_evaluate(target / ".data" / "truth", rerun=True)
        evaluation = asdict(result.evaluation)
        if first_matrix is None:
            first_matrix = evaluation
            for line in format_evaluation(result.evaluation):
                console.print(line, highlight=False, markup=False)
        overall = evaluation["overall"]["user"], evaluation["overall"]["event"]
        per_seed.append({"seed": seed, "unchanged_on_rerun": result.unchanged,
                         "users": overall[0], "events": overall[1], **figures})  # fmt: skip
        console.print(
            f"seed {seed}: users precision {overall[0]['precision']:.3f} recall "
            f"{overall[0]['recall']:.3f}; events precision {overall[1]['precision']:.3f} "
            f"recall {overall[1]['recall']:.3f}; re-run unchanged: {result.unchanged}",
            highlight=False,
        )
    mean = {
        level: {m: round(sum(s[level][m] or 0 for s in per_seed) / len(per_seed), 4)
                for m in ("precision", "recall", "f1")}
        for level in ("users", "events")
    }  # fmt: skip
    console.print(f"mean over {len(seeds)} seeds: {mean}", highlight=False)
    return {"seeds": per_seed, "mean": mean, "first_seed": first_matrix}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="1M rows and 2 seeds only")
    parser.add_argument("--work", type=Path, default=None, help="keep generated data here")
    parser.add_argument("--seeds", type=int, default=5)
    parser.add_argument("--skip-throughput", action="store_true")
    parser.add_argument("--skip-quality", action="store_true")
    args = parser.parse_args()
    work = args.work or Path(tempfile.mkdtemp(prefix="anchorflow-fraud-bench-"))
    results: dict[str, Any] = {"machine": machine(), "command": "python -m bench.fraud"}
    if not args.skip_throughput:
        sizes = {"1M": 1} if args.quick else {"1M": 1, "10M": 10}
        results["throughput"] = {
            name: throughput(work, f"size_{name}", clicks_per_day=CLICKS_PER_MILLION * n, days=7)
            for name, n in sizes.items()
        }
    if not args.skip_quality:
        results["quality"] = quality(work, list(range(1, (2 if args.quick else args.seeds) + 1)))
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    existing = json.loads(RESULTS.read_text()) if RESULTS.exists() else {}
    existing.update(results)
    RESULTS.write_text(json.dumps(existing, indent=2, default=str) + "\n")
    console.print(f"results: {RESULTS}")


# Genuine clicks per day (over 7 days) that make about a million rows in all.
CLICKS_PER_MILLION = 24_700

if __name__ == "__main__":
    main()
