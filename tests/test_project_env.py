"""Where a project's `${VAR}`s come from: the environment first, then the `.env` beside the project
file; and loading without a source's secrets for the commands that never contact it."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml

from anchorflow.config import load_project
from anchorflow.errors import ConfigError
from tests.builders import amplitude_source, project_data
from tests.conftest import API_KEY, SECRET_KEY

pytestmark = pytest.mark.unit

UNSET_LINES = [
    "anchorflow.yml: sources.amplitude.api_key: environment variable AMPLITUDE_API_KEY is not set",
    "anchorflow.yml: sources.amplitude.secret_key: environment variable AMPLITUDE_SECRET_KEY is "
    "not set",
]


def write(root: Path, **top: Any) -> Path:
    root.mkdir(parents=True)
    (root / "anchorflow.yml").write_text(yaml.safe_dump(project_data(**top), sort_keys=False))
    return root


@pytest.fixture
def no_secrets(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("AMPLITUDE_API_KEY")
    monkeypatch.delenv("AMPLITUDE_SECRET_KEY")


@pytest.mark.usefixtures("no_secrets")
def test_the_dot_env_beside_the_project_file_supplies_variables(tmp_path: Path) -> None:
    root = write(tmp_path / "p")
    (root / ".env").write_text(f"# the team's keys\nAMPLITUDE_API_KEY={API_KEY}\n"
                               f"export AMPLITUDE_SECRET_KEY='{SECRET_KEY}'\n")  # fmt: skip
    source = load_project(root).sources["amplitude"]
    assert source.api_key.get_secret_value() == API_KEY
    assert source.secret_key.get_secret_value() == SECRET_KEY


def test_the_environment_wins_over_the_dot_env(tmp_path: Path) -> None:
    root = write(tmp_path / "p")
    (root / ".env").write_text("AMPLITUDE_API_KEY=from-the-file\nAMPLITUDE_SECRET_KEY=file-2\n")
    source = load_project(root).sources["amplitude"]
    assert source.api_key.get_secret_value() == API_KEY  # exported by the conftest
    assert source.secret_key.get_secret_value() == SECRET_KEY


@pytest.mark.usefixtures("no_secrets")
def test_only_the_project_directory_s_dot_env_is_read(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    root = write(tmp_path / "p")
    (tmp_path / ".env").write_text(f"AMPLITUDE_API_KEY={API_KEY}\n")  # the parent's: not read
    (root / ".env").write_text(f"AMPLITUDE_SECRET_KEY={SECRET_KEY}\n")
    monkeypatch.chdir(tmp_path)
    with pytest.raises(ConfigError) as raised:
        load_project(root)
    assert raised.value.problems == UNSET_LINES[:1]


@pytest.mark.usefixtures("no_secrets")
def test_deferred_source_variables_are_recorded_and_refused_where_the_source_is_contacted(
    tmp_path: Path,
) -> None:
    root = write(tmp_path / "p")
    with pytest.raises(ConfigError) as raised:
        load_project(root)
    assert raised.value.problems == UNSET_LINES

    project = load_project(root, defer_source_env=True)
    source = project.sources["amplitude"]
    assert source.unset_env == (
        ("sources.amplitude.api_key", "AMPLITUDE_API_KEY"),
        ("sources.amplitude.secret_key", "AMPLITUDE_SECRET_KEY"),
    )
    assert source.api_key.get_secret_value() == ""  # nothing that could be sent or leak
    with pytest.raises(ConfigError) as refused:
        project.require_env(["amplitude"])
    assert refused.value.problems == UNSET_LINES
    project.require_env([])  # no source contacted: nothing needed


def test_with_every_variable_set_nothing_is_deferred(tmp_path: Path) -> None:
    project = load_project(write(tmp_path / "p"), defer_source_env=True)
    assert project.unset_env() == []
    project.require_env(["amplitude"])


@pytest.mark.usefixtures("no_secrets")
def test_a_deferred_variable_that_breaks_a_setting_is_named_not_the_empty_value(
    tmp_path: Path,
) -> None:
    source = amplitude_source(base_url="${AF_TEST_NO_SUCH_URL}")
    root = write(tmp_path / "p", sources={"amplitude": source})
    with pytest.raises(ConfigError) as raised:
        load_project(root, defer_source_env=True)
    assert raised.value.problems == [
        "anchorflow.yml: sources.amplitude.base_url: environment variable AF_TEST_NO_SUCH_URL "
        "is not set"
    ]


@pytest.mark.usefixtures("no_secrets")
def test_a_variable_outside_the_sources_is_still_required(tmp_path: Path) -> None:
    root = write(tmp_path / "p", pii_salt="${AF_TEST_NO_SUCH_SALT}")
    with pytest.raises(ConfigError) as raised:
        load_project(root, defer_source_env=True)
    assert raised.value.problems == [
        "anchorflow.yml: pii_salt: environment variable AF_TEST_NO_SUCH_SALT is not set"
    ]


@pytest.mark.usefixtures("no_secrets")
def test_a_source_variable_set_but_empty_is_refused_like_a_missing_one(tmp_path: Path) -> None:
    """`.env` copied from `.env.example` and not filled in: no request with empty keys."""
    root = write(tmp_path / "p")
    (root / ".env").write_text(f"AMPLITUDE_API_KEY=\nAMPLITUDE_SECRET_KEY={SECRET_KEY}\n")
    empty = [
        "anchorflow.yml: sources.amplitude.api_key: environment variable AMPLITUDE_API_KEY is "
        "set but empty"
    ]
    with pytest.raises(ConfigError) as raised:
        load_project(root)
    assert raised.value.problems == empty

    project = load_project(root, defer_source_env=True)
    assert project.unset_env() == [("sources.amplitude.api_key", "AMPLITUDE_API_KEY")]
    with pytest.raises(ConfigError) as refused:
        project.require_env(["amplitude"])
    assert refused.value.problems == empty


@pytest.mark.usefixtures("no_secrets")
def test_an_empty_variable_that_breaks_a_source_setting_is_named(tmp_path: Path) -> None:
    source = amplitude_source(base_url="${AF_TEST_URL}")
    root = write(tmp_path / "p", sources={"amplitude": source})
    with pytest.raises(ConfigError) as raised:
        load_project(root, env={"AF_TEST_URL": ""}, defer_source_env=True)
    assert raised.value.problems[0] == (
        "anchorflow.yml: sources.amplitude.base_url: environment variable AF_TEST_URL is set but "
        "empty"
    )
