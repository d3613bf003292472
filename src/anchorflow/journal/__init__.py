"""The journal: the `meta` schema, and the only code that reads or writes it.

Every stage records here what it finished, in the same transaction as its data; the journal is
the only coupling between stages. One module per concern:

- `schema`: the tables (`ensure_journal`) and their migrations;
- `loads`: `meta.loads`, one row per committed load of a source window;
- `cursors`: `meta.cursors`, where each source stream resumes (JSON, moved with the data);
- `runs`: `meta.runs`, every command and its outcome;
- `quarantine`: `meta.quarantine`, records set aside with the reason;
- `type_errors`: `meta.type_errors`, values that did not fit their column;
- `transfers`: `meta.transfers` (which loads each staging model has typed) and
  `meta.staging_mappings` (the mapping a staging table's rows were typed with);
- `field_stats`: `meta.field_stats`, per typed batch, model and field;
- `schema_events`: `meta.schema_events`, drift, with an outbox for its alerts;
- `alerts`: `meta.alerts`, every delivery;
- `anchor`: `meta.anchor_transfers`, `meta.anchor_ids`, `meta.anchor_keys` and
  `meta.anchor_tables`;
- `erasures`: `meta.erasures`, and scrubbing an erased person out of every journal text.

Other modules call these functions and never name a `meta` table.
"""

from __future__ import annotations

from anchorflow.journal.schema import ensure_journal, utcnow

__all__ = ["ensure_journal", "utcnow"]
