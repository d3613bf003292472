"""Seconds the marts step of a run takes on a loaded warehouse (the demo's, after `make demo`)
when nothing new was loaded: every mart rebuilt whole, as every run did before marts were built
only when due, against the marts that are due (none).

    .venv/bin/python -m bench.marts --project examples/product_analytics
"""

from __future__ import annotations

import argparse
import time

from anchorflow.config import load_project
from anchorflow.run import Pipeline


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--project", default="examples/product_analytics")
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    project = load_project(args.project, defer_source_env=True)
    with Pipeline(project) as pipeline:
        step, warehouse = pipeline.marts_step, pipeline.warehouse
        step.run(warehouse)  # whatever is due now, so that the runs below have nothing new
        for label, force in (("every mart rebuilt whole", True), ("only the due marts", False)):
            for _ in range(args.repeat):
                started = time.perf_counter()
                built = step.run(warehouse, force=force)
                seconds = time.perf_counter() - started
                print(f"{label}: {seconds:.2f}s ({len(built)} built)")


if __name__ == "__main__":
    main()
