"""`anchorflow init`: a new project that validates and explains itself."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

from anchorflow.errors import ConfigError
from anchorflow.project_types import format_hour

PROJECT_TEMPLATE = """\
# anchorflow project: every key is in docs/project-file.md.
name: {name}

warehouse:
  engine: duckdb
  path: warehouse.duckdb          # relative to this file

sources:
  amplitude:
    kind: amplitude
    base_url: ${{AMPLITUDE_BASE_URL:-https://amplitude.com}}   # EU: https://analytics.eu.amplitude.com
    api_key: ${{AMPLITUDE_API_KEY}}
    secret_key: ${{AMPLITUDE_SECRET_KEY}}
    start: {start}            # first hour to load, UTC, YYYYMMDDTHH
{end}    availability_delay: 2h
    hours_per_request: 6

staging:
  events:
    source: amplitude
    unique_key: event_uuid
    columns:
      event_uuid: {{path: uuid, type: UUID}}
      event_type: VARCHAR
      event_time: TIMESTAMP
      user_id: VARCHAR
      device_id: VARCHAR
      platform: VARCHAR
      country: VARCHAR
      event_properties: JSON

marts:
  path: models
"""

MART_TEMPLATE = """\
-- Daily active users by platform.
SELECT CAST(event_time AS DATE) AS day, platform,
       COUNT(DISTINCT COALESCE(user_id, device_id)) AS active_users
FROM staging.events
GROUP BY ALL
ORDER BY day, platform
"""

ENV_TEMPLATE = """\
# The variables anchorflow.yml reads. Copy this file to .env (it stays out of git) and fill it
# in; a variable exported in the environment (a scheduler's secret store) wins over .env.
# Only the commands that load (`run`, `backfill`) need the keys.
AMPLITUDE_API_KEY=
AMPLITUDE_SECRET_KEY=
# Amplitude's EU data center: https://analytics.eu.amplitude.com
AMPLITUDE_BASE_URL=https://amplitude.com
"""


GITIGNORE_TEMPLATE = """\
# anchorflow: the warehouse, its state (downloads in flight hold raw data), secrets, exports
.anchorflow/
*.duckdb
*.duckdb.wal
*.duckdb.compacting*
*.duckdb.writer.lock
.env
exports/
"""


END_LINE = "    end: {end}              # last hour to load (inclusive): a replay stops there\n"
NO_END_LINE = (
    "    # end: YYYYMMDDTHH            # last hour to load (inclusive), to replay a past export\n"
)
# Without --start, a project loads the last week: enough to see data, quick to load.
DEFAULT_DAYS = 7


def scaffold_project(
    directory: Path,
    start: datetime | None = None,
    end: datetime | None = None,
    today: datetime | None = None,
) -> list[Path]:
    """Write a new project into `directory`; its Amplitude source loads from `start` (default:
    midnight UTC a week before `today`) up to `end` (inclusive; default: no end)."""
    target = directory / "anchorflow.yml"
    if target.exists():
        raise ConfigError([f"{target}: a project already exists here; nothing was changed"])
    if start is None:
        midnight = (today or datetime.now(UTC).replace(tzinfo=None)).replace(
            hour=0, minute=0, second=0, microsecond=0
        )
        start = midnight - timedelta(days=DEFAULT_DAYS)
    if end is not None and end < start:
        raise ConfigError(
            [f"init: --end {format_hour(end)} is before --start {format_hour(start)}"]
        )
    name = directory.resolve().name.replace("-", "_")
    if not name.isidentifier():
        name = "analytics"
    end_line = END_LINE.format(end=format_hour(end)) if end is not None else NO_END_LINE
    files = {
        target: PROJECT_TEMPLATE.format(name=name, start=format_hour(start), end=end_line),
        directory / "models" / "daily_active_users.sql": MART_TEMPLATE,
        directory / ".env.example": ENV_TEMPLATE,
        directory / ".gitignore": GITIGNORE_TEMPLATE,
    }
    for path, text in files.items():
        path.parent.mkdir(parents=True, exist_ok=True)
        if not path.exists():
            path.write_text(text)
    return list(files)
