"""The anchor model (6NF with history), built from staging by insert-only, set-based SQL.

Its declaration is `config.anchor` (the `anchor:` section of the project file).

- `plan`: the declaration resolved against the staging models (tables, roles, types);
- `ddl`: tables from the declaration, additive changes only;
- `load`: entities, knots, then attributes and ties, idempotent and order-independent;
- `target_sql`: the SQL of one attribute or tie (its observations, conflicts, history insert);
- `check`: the integrity checks of an attribute or tie after its insert;
- `views`: `<Entity>_latest`, `<Entity>_as_of(ts)` and `<Entity>_history`;
- `query`: a query builder that joins only what is asked for;
- `erase`: removing loads, and an entity by key;
- `describe`: the one-page description of the model;
- `step`: the anchor step (prepare, pending, run, remove).
"""
