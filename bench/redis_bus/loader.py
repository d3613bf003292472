"""The loader of the benchmark: `python -m bench.redis_bus.loader PROJECT_DIR SOURCE [EVERY]`.

What `anchorflow load SOURCE --every 1s` runs (`LoadLoop`), plus one JSON line on stdout after
each run (wall time, rows, the run's seconds): the benchmark learns
when raw holds every event without opening the warehouse (one writer: the loader).
SIGTERM stops it after the run in flight.
"""

from __future__ import annotations

import json
import signal
import sys
import threading
import time
from pathlib import Path

from anchorflow.run.loop import LoadLoop
from anchorflow.run.results import RunSummary


def main() -> None:
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    project, source = Path(sys.argv[1]), sys.argv[2]
    every = float(sys.argv[3]) if len(sys.argv) > 3 else 1.0

    def report(summary: RunSummary) -> None:
        line = {"at": time.time(), "rows": summary.rows, "windows": len(summary.windows),
                "seconds": round(summary.seconds, 3)}  # fmt: skip
        print(json.dumps(line), flush=True)

    LoadLoop(project, [source], every, on_run=report).run_forever(stop)


if __name__ == "__main__":
    main()
