"""One reader process: `python -m anchorflow.sources.redis.worker PROJECT SOURCE QUEUE`.

What `ReaderPool` starts, once per reader. SIGTERM and SIGINT stop it gracefully: the chunk in
hand is sealed, committed and published, then it exits 0. A known failure (Redis unreachable
for a minute, the reader fenced by another, a bad project file) is one line on stderr, exit 1.
"""

from __future__ import annotations

import logging
import signal
import sys
import threading
from pathlib import Path
from typing import TYPE_CHECKING

# Signals first: a stop asked for while the modules below load is not lost.
STOP = threading.Event()


def _request_stop(signum: int, frame: object) -> None:
    STOP.set()


if __name__ == "__main__":
    signal.signal(signal.SIGTERM, _request_stop)
    signal.signal(signal.SIGINT, _request_stop)

from anchorflow.config import load_project  # noqa: E402
from anchorflow.errors import AnchorflowError, ConfigError  # noqa: E402
from anchorflow.redact import RedactingFilter, redact  # noqa: E402
from anchorflow.sources.chunks import landing_dir  # noqa: E402

if TYPE_CHECKING:
    from anchorflow.sources.redis.config import RedisConfig


def redis_source(project_file: Path, source: str) -> tuple[Path, RedisConfig, Path]:
    """The project's root, the redis source's settings and its landing directory."""
    from anchorflow.sources.redis.config import RedisConfig

    project = load_project(project_file)
    config = project.sources.get(source)
    if not isinstance(config, RedisConfig):
        kinds = sorted(n for n, c in project.sources.items() if isinstance(c, RedisConfig))
        known = ", ".join(kinds) or "none"
        raise ConfigError([f"{project.file.name}: no redis source {source!r} ({known})"])
    project.require_env([source])
    return project.root, config, landing_dir(project.root, source, config.landing)


def run_reader(project_file: Path, source: str, queue: str, stop: threading.Event = STOP) -> int:
    from anchorflow.sources.redis.reader import Reader

    try:
        _, config, landing = redis_source(project_file, source)
        if queue not in config.queues:
            raise ConfigError([f"sources.{source}.queues: no queue {queue!r}"])
        Reader(source, config, queue, landing).run(stop)
    except AnchorflowError as error:
        first = (error.problems if isinstance(error, ConfigError) else [str(error)])[0]
        sys.stderr.write(f"error: {redact(first.splitlines()[0])}\n")
        return 1
    return 0


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    if len(args) != 3:
        sys.stderr.write("usage: python -m anchorflow.sources.redis.worker PROJECT SOURCE QUEUE\n")
        return 2
    handler = logging.StreamHandler(sys.stderr)
    handler.addFilter(RedactingFilter())
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)-8s %(message)s"))
    logging.basicConfig(level=logging.WARNING, handlers=[handler], force=True)
    return run_reader(Path(args[0]), args[1], args[2])


if __name__ == "__main__":
    sys.exit(main())
