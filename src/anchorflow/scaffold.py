"""`anchorflow init`: a new project that validates and explains itself."""

from __future__ import annotations

from pathlib import Path

from anchorflow.errors import ConfigError

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
    start: 20240101T00            # first hour to load, UTC, YYYYMMDDTHH
    availability_delay: 2h
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
# Secrets for anchorflow.yml; export them (or use your scheduler's secret store).
AMPLITUDE_API_KEY=
AMPLITUDE_SECRET_KEY=
"""


GITIGNORE_TEMPLATE = """\
# anchorflow: the warehouse, its state (downloads in flight hold raw data) and secrets
.anchorflow/
*.duckdb
*.duckdb.wal
*.duckdb.compacting*
*.duckdb.writer.lock
.env
"""


def scaffold_project(directory: Path) -> list[Path]:
    target = directory / "anchorflow.yml"
    if target.exists():
        raise ConfigError([f"{target}: a project already exists here; nothing was changed"])
    name = directory.resolve().name.replace("-", "_")
    if not name.isidentifier():
        name = "analytics"
    files = {
        target: PROJECT_TEMPLATE.format(name=name),
        directory / "models" / "daily_active_users.sql": MART_TEMPLATE,
        directory / ".env.example": ENV_TEMPLATE,
        directory / ".gitignore": GITIGNORE_TEMPLATE,
    }
    for path, text in files.items():
        path.parent.mkdir(parents=True, exist_ok=True)
        if not path.exists():
            path.write_text(text)
    return list(files)
