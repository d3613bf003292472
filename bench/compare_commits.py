"""Two commits side by side, in one run: does a change make the hot paths slower?

    python -m bench.compare_commits BASE NEW [--pairs 10] [--what ingest,anchor]

Checks both commits out into temporary worktrees and runs each measurement alternately, BASE
then NEW, `--pairs` times, so that a machine whose speed drifts slows both alike; prints every
pair and the median of the pairwise ratios NEW/BASE. Each run is a fresh process of the
commit's own code and benchmark (`PYTHONPATH=<worktree>/src`, the worktree as working
directory), with this environment's packages.

- `ingest`: bench/amplitude_ingest's `anchorflow` contender on the 1M size (20 hours of the
  cached export files, HTTP from the emulator → raw + staging): events/s, higher is better.
- `anchor`: a 2M-event anchor load (`bench.anchor.run anchor DIR --parallel 4`) over a
  workload each commit generates with its own code, copied fresh for every run: seconds, lower
  is better.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
EXPORT = ROOT / "bench" / "data" / "amplitude_50k"
TIMEOUT = 900
ANCHOR_ROWS = 2_000_000

# Run inside a worktree: the `anchorflow` contender of bench/amplitude_ingest on 20 hours.
INGEST = """
import json, sys, tempfile
from datetime import timedelta
from pathlib import Path
sys.path.insert(0, ".")
from bench.amplitude_ingest import __main__ as amp
try:
    from anchorflow.dev.emulators.amplitude import AmplitudeEmulator, ExportStore
except ImportError:  # commits before dev/
    from anchorflow.emulators.amplitude import AmplitudeEmulator, ExportStore
data, hours = Path(sys.argv[1]), amp.SIZES["1M"]
store = ExportStore.from_directory(data, amp.START, amp.START + timedelta(hours=hours))
files = sorted(data.glob("*.json.gz"))
with tempfile.TemporaryDirectory() as tmp, AmplitudeEmulator(store, "bench", "bench") as em:
    print(json.dumps(amp.run_child("anchorflow", amp.arguments(
        "anchorflow", hours, files, em.base_url, Path(tmp)))))
"""

# Run inside a worktree: the commit's own 2M-event anchor workload.
WORKLOAD = """
import sys
sys.path.insert(0, ".")
from pathlib import Path
from bench.anchor import __main__ as bench, workload
rows = int(sys.argv[2])
bench.generate(Path(sys.argv[1]), [workload.history(rows, max(1, rows // 10))])
"""


def python(worktree: Path, *args: str) -> dict[str, Any]:
    """One fresh process of the worktree's code; its last output line, as JSON."""
    env = {**os.environ, "PYTHONPATH": str(worktree / "src")}
    done = subprocess.run(
        [sys.executable, *args], cwd=worktree, env=env, capture_output=True, text=True,
        timeout=TIMEOUT,
    )  # fmt: skip
    if done.returncode != 0:
        raise RuntimeError(f"{worktree.name}: {done.stderr[-2000:]}")
    result: dict[str, Any] = json.loads(done.stdout.strip().splitlines()[-1])
    return result


def ingest(worktree: Path, work: Path) -> float:
    result = python(worktree, "-c", INGEST, str(EXPORT))
    if "error" in result:
        raise RuntimeError(f"{worktree.name}: {result['error']}")
    return float(result["events"]) / float(result["seconds"])


def anchor(worktree: Path, work: Path) -> float:
    workload = work / f"workload-{worktree.name}"
    if not workload.exists():
        python(worktree, "-c", WORKLOAD + "print('{}')", str(workload), str(ANCHOR_ROWS))
    run = work / "run"
    shutil.rmtree(run, ignore_errors=True)
    shutil.copytree(workload, run)
    result = python(worktree, "-m", "bench.anchor.run", "anchor", str(run), "--parallel", "4")
    return float(result["seconds"])


MEASUREMENTS: dict[str, tuple[Callable[[Path, Path], float], str]] = {
    "ingest": (ingest, "events/s"),
    "anchor": (anchor, "seconds"),
}


def compare(base: str, new: str, pairs: int, what: list[str]) -> dict[str, Any]:
    results: dict[str, Any] = {"base": base, "new": new, "pairs": pairs}
    with tempfile.TemporaryDirectory(prefix="anchorflow-compare-") as tmp:
        work = Path(tmp)
        trees = {label: work / label for label in ("base", "new")}
        for label, commit in (("base", base), ("new", new)):
            subprocess.run(["git", "-C", str(ROOT), "worktree", "add", "--detach", "-q",
                            str(trees[label]), commit], check=True)  # fmt: skip
        try:
            for name in what:
                measure, unit = MEASUREMENTS[name]
                rows = []
                for pair in range(1, pairs + 1):
                    b, n = measure(trees["base"], work), measure(trees["new"], work)
                    rows.append({"pair": pair, "base": b, "new": n, "ratio": n / b})
                    print(f"{name} pair {pair}: base {b:,.2f} new {n:,.2f} {unit} "
                          f"(new/base {n / b:.3f})", flush=True)  # fmt: skip
                ratios = [r["ratio"] for r in rows]
                results[name] = {"unit": unit, "runs": rows,
                                 "median_ratio": statistics.median(ratios),
                                 "min_ratio": min(ratios), "max_ratio": max(ratios)}  # fmt: skip
                print(
                    f"{name}: median new/base {statistics.median(ratios):.3f} "
                    f"(min {min(ratios):.3f}, max {max(ratios):.3f}) in {unit}",
                    flush=True,
                )
        finally:
            for tree in trees.values():
                subprocess.run(["git", "-C", str(ROOT), "worktree", "remove", "--force",
                                str(tree)], check=False)  # fmt: skip
    return results


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("base", help="the commit to compare against")
    parser.add_argument("new", help="the commit measured")
    parser.add_argument("--pairs", type=int, default=10)
    parser.add_argument("--what", default="ingest,anchor", help="ingest, anchor, or both")
    options = parser.parse_args()
    if not any(EXPORT.glob("*.json.gz")):
        raise SystemExit(f"no export files in {EXPORT}: run `make bench-quick` once first")
    compare(options.base, options.new, options.pairs, options.what.split(","))


if __name__ == "__main__":
    main()
