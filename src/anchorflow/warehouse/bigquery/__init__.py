"""BigQuery: SQL written by `anchorflow compile`, never run here (no adapter)."""
