"""Named points where crash-recovery tests kill the process (ANCHORFLOW_CRASH_AT=<point>)."""

from __future__ import annotations

import os

CRASH_ENV = "ANCHORFLOW_CRASH_AT"


def crash_point(name: str) -> None:
    """Kill the process here when ANCHORFLOW_CRASH_AT names this point."""
    if os.environ.get(CRASH_ENV) == name:
        os._exit(86)
