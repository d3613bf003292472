"""The anchor model (6NF with history), built from staging by insert-only, set-based SQL.

- `spec`: the `anchor:` section of the project file;
- `ddl`: tables from the declaration, additive changes only;
- `load`: entities, knots, then attributes and ties, idempotent and order-independent;
- `views`: `<Entity>_latest`, `<Entity>_as_of(ts)` and `<Entity>_history`;
- `query`: a query builder that joins only what is asked for;
- `erase`: `rollback` of a load and `forget` of an entity;
- `describe`: the one-page description of the model.

Modules import `anchorflow.project`, which imports `spec`: import them directly, not from here.
"""
