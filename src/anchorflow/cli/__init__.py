"""The `anchorflow` command: parses arguments, calls the façade, prints with rich.

No logic lives here that the web app would also need; known errors become one red line and
exit code 1. Each module registers its commands on `app` when imported, in the order `--help`
lists them: setting up and loading, then the anchor model and publishing, then trying it out.
"""

import importlib

from anchorflow.cli.base import app, guarded, main

for _commands in (
    "ingest",
    "intake",
    "model",
    "marts",
    "fraud",
    "metrics",
    "dashboards",
    "serve",
    "compile",
    "dev",
):
    importlib.import_module(f"anchorflow.cli.{_commands}")

__all__ = ["app", "guarded", "main"]
