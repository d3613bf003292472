"""The settings of a `webhook` source: preset defaults, and one-line errors."""

from __future__ import annotations

from pathlib import Path

import pytest

from anchorflow.errors import ConfigError
from anchorflow.sources.webhook.config import WebhookConfig
from tests.serve.hooks import hooks_project

pytestmark = pytest.mark.unit


def test_presets_give_the_sender_id_and_the_array_of_events(tmp_path: Path) -> None:
    project = hooks_project(tmp_path)
    configs = {n: c for n, c in project.sources.items() if isinstance(c, WebhookConfig)}
    assert {n: (c.dedup_path, c.events) for n, c in configs.items()} == {
        "intercom": ("id", None),
        "wistia": ("uuid", "events"),
        "orders": ("delivery.id", None),
    }
    intercom = configs["intercom"]
    assert int(intercom.max_body) == 1 << 20
    assert intercom.group_commit.total_seconds() == 0.005
    assert intercom.tolerance.total_seconds() == 300
    assert "hook-secret" not in repr(intercom)


def test_an_unknown_preset_is_one_line_naming_the_key(tmp_path: Path) -> None:
    with pytest.raises(ConfigError) as error:
        hooks_project(tmp_path, orders={"preset": "github"})
    [problem] = error.value.problems
    assert "sources.orders.preset" in problem
    assert "hmac" in problem
