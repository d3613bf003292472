"""What the CLI prints: values from the warehouse are text, never rich markup."""

from __future__ import annotations

import io
from datetime import datetime

import pytest
from rich.console import Console

from anchorflow.console import print_status
from anchorflow.journal.runs import RunInfo
from anchorflow.run import Status

pytestmark = pytest.mark.unit


def test_status_prints_error_details_with_brackets_verbatim() -> None:
    out = io.StringIO()
    failed = RunInfo(1, "run", "failed", datetime(2024, 3, 1), "column [x] not found [/x]")
    status = Status(sources=[], loads=[], runs=[failed], quarantined=0)
    print_status(Console(file=out, width=200), status)
    assert "column [x] not found [/x]" in out.getvalue()
