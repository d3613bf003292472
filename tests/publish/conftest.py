"""The demo project loaded once for every test of this folder (they only read it)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from anchorflow.config import Project
from tests.publish.demo import loaded_demo


@pytest.fixture(scope="package")
def demo(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Project]:
    yield from loaded_demo(tmp_path_factory.mktemp("publish") / "demo")
