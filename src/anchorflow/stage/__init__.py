"""Typed staging from raw, generated from the project's mapping.

- `sql`: the typing SQL of a model (selector, nested paths, exploded arrays, casts, PII hashing);
- `batch`: one batch of loads typed into one model, with the bad-value policy;
- `stats`: field statistics per batch, over a deterministic sample;
- `drift`: schema events from the statistics, and their alerts;
- `runner`: the transfer log and the thresholds that decide when a model's staging runs;
- `tables`: the staging tables, created and extended from the mapping;
- `checks`: what the engine must confirm about a mapping before anything loads;
- `step`: the stage step (pending, run, remove);
- `erase`: staging rows that carry an erased person's key;
- `suggest`: a mapping suggested from the records a stream landed.
"""

from __future__ import annotations

from anchorflow.stage.batch import BadValues, Staged
from anchorflow.stage.runner import ModelRun, pending_loads
from anchorflow.stage.step import StageStep
from anchorflow.stage.tables import ensure_staging_table, prepare_tables

__all__ = [
    "BadValues",
    "ModelRun",
    "StageStep",
    "Staged",
    "ensure_staging_table",
    "pending_loads",
    "prepare_tables",
]
