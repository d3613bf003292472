"""The project file, `anchorflow.yml`, as typed objects: loaded, interpolated and validated.

- `project`: the `Project` and its sections (warehouse, sources from the registry, marts, alerts);
- `staging`: the staging models (columns, selectors, explode, policies, thresholds, drift);
- `anchor`: the anchor model's declaration (knots, entities, attributes, ties);
- `loader`: YAML, `${VAR}` interpolation, and one line per problem.

Pure: nothing here opens a database or imports a later layer. Checks that need the engine (a
selector run on odd values) are `stage.checks`, run by `validate` and `run` through the warehouse.
"""

from __future__ import annotations

from anchorflow.config.loader import load_project, resolve_project_file
from anchorflow.config.project import PROJECT_FILE, STATE_DIR, Project

__all__ = ["PROJECT_FILE", "STATE_DIR", "Project", "load_project", "resolve_project_file"]
