"""Running a project: the window commit, the order of the steps, and the façade over them.

- `window`: a window's records landed, typed, journaled and its cursor moved, in one commit;
- `removal`: replacing, rolling back and forgetting, composed from the steps' removals;
- `pipeline`: the façade (`Pipeline`) that orders the steps and returns typed results;
- `results`: those results, and their JSON form;
- `reading`: what a command that only reads checks instead of preparing the warehouse;
- `runlog`: every writing command's outcome in a file outside the warehouse.
"""

from __future__ import annotations

from anchorflow.run.pipeline import Pipeline, check_project
from anchorflow.run.results import RunSummary, Status, as_json

__all__ = ["Pipeline", "RunSummary", "Status", "as_json", "check_project"]
