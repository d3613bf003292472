"""Fraud detection: a catalogue of SQL rules over clicks, registrations and events.

- `rules`: the rule files (a header, one SELECT) and the built-in catalogue;
- `inputs`: the three inputs as the project maps them, prepended to a rule as CTEs;
- `step`: runs each rule over whole UTC days with a deterministic `rule_run_id`;
- `results`: `fraud.rule_<slug>`, `fraud_user`, `fraud_event`, merged with anti-joins;
- `report`: the report views per country × campaign × sub-campaign;
- `evaluate`, `check`: precision and recall against labelled traffic, and the re-run checksum;
- `erase`: `forget` of a person in `fraud.*`.
"""
