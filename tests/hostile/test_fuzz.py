"""A generated corpus of malformed exports and project files (hypothesis).

Exports: whatever an hour's export members hold, a run either commits the hour with every
non-empty line accounted for (landed in raw or quarantined with a reason) or fails with a
one-line error having committed nothing, and it leaves no file outside the project.
Project files: whatever the file says, loading it gives a project or a `ConfigError` of
one-line problems, never another exception.
"""

from __future__ import annotations

import gzip
import json
import os
import tempfile
import uuid
from pathlib import Path
from typing import Any

import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from anchorflow.config import load_project
from anchorflow.dev.emulators.amplitude import AmplitudeEmulator, ExportStore
from anchorflow.dev.synth.amplitude import export_file_name
from anchorflow.errors import AnchorflowError, ConfigError
from tests.builders import API_KEY, ENV, SECRET_KEY, START, build_project, project_data
from tests.builders import amplitude_source as source_settings
from tests.conftest import NEXT_HOUR, available_at, run_pipeline, table_rows

pytestmark = [pytest.mark.hostile, pytest.mark.integration]

FUZZ = settings(
    max_examples=int(os.environ.get("ANCHORFLOW_FUZZ_EXAMPLES", "40")),
    deadline=None,
    derandomize="ANCHORFLOW_FUZZ_EXAMPLES" not in os.environ,  # CI: the same corpus every run
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)

# -- exports ------------------------------------------------------------------------------------


def _event(n: int, extra: dict[str, Any]) -> bytes:
    event = {"uuid": str(uuid.UUID(int=n + 1)), "event_type": "open", "user_id": f"u{n}", **extra}
    return json.dumps(event).encode()


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=20),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner),
    max_leaves=12,
)
odd_lines = st.one_of(
    st.builds(lambda v: json.dumps(v).encode(), json_values),  # arrays, scalars, objects
    st.binary(max_size=60).map(lambda b: b.replace(b"\n", b"")),  # bytes, invalid UTF-8
    st.text(max_size=60).map(lambda t: t.replace("\n", "").encode("utf-8", "surrogatepass")),
    st.integers(1, 3000).map(lambda n: b"[" * n + b"]" * n),  # deep nesting
    st.integers(1, 3000).map(lambda n: b'{"a":' * n),  # deep and cut
    st.sampled_from([b"NaN", b'{"amount": NaN}', b'{"x": 1e400}', b'{"uuid": "\\ud800"}', b"\r"]),
    st.sampled_from([b'{"uuid": "not-a-uuid"}', b'{"event_time": "yesterday"}', b"{}", b" "]),
)
line_kinds = st.one_of(
    st.builds(_event, st.integers(0, 10**6), st.dictionaries(st.text(max_size=8), json_values)),
    odd_lines,
)


@st.composite
def members(draw: st.DrawFn) -> tuple[bytes, int | None]:
    """One ZIP member's bytes and its count of non-empty lines (None: the member is broken)."""
    lines = draw(st.lists(line_kinds, max_size=25))
    body = b"\n".join(lines) + draw(st.sampled_from([b"", b"\n", b"\n\n"]))
    shape = draw(st.sampled_from(["gzip", "gzip", "gzip", "truncated", "garbage", "empty"]))
    if shape == "garbage":
        return draw(st.binary(min_size=1, max_size=200)), None
    if shape == "empty":  # a gzip of nothing, or a file of zero bytes: an empty member
        return draw(st.sampled_from([gzip.compress(b""), b""])), 0
    data = gzip.compress(body)
    if shape == "truncated":
        return data[: draw(st.integers(1, len(data) - 9))], None
    return data, sum(1 for line in body.split(b"\n") if line)


@FUZZ
@given(st.lists(members(), min_size=1, max_size=4))
def test_a_malformed_export_is_loaded_line_for_line_or_refused_whole(
    parts: list[tuple[bytes, int | None]],
) -> None:
    hour = START
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        exports = root / "exports"
        exports.mkdir()
        for part, (data, _) in enumerate(parts):
            (exports / export_file_name(187520, hour, part)).write_bytes(data)
        store = ExportStore.from_directory(exports, START, START.replace(hour=START.hour + 1))
        with AmplitudeEmulator(store, API_KEY, SECRET_KEY) as emulator:
            project = build_project(
                root / "project",
                sources={"amplitude": source_settings(emulator.base_url, retry={"attempts": 2})},
            )
            broken = any(lines is None for _, lines in parts)
            elsewhere = root / "tmp"  # the system's temp directory while the run runs
            elsewhere.mkdir()
            saved, tempfile.tempdir = tempfile.tempdir, str(elsewhere)
            try:
                run_pipeline(project, available_at(1))
            except AnchorflowError as error:
                assert not any(elsewhere.iterdir()), "the run left files outside the project"
                assert broken, f"a well-formed export was refused: {error}"
                assert "\n" not in str(error).strip(), str(error)
                assert "Traceback" not in str(error)
                committed = table_rows(
                    project.warehouse_path,
                    "SELECT count(*) FROM meta.loads WHERE status = 'committed'",
                )
                assert committed == [(0,)]
                assert table_rows(
                    project.warehouse_path, "SELECT count(*) FROM raw.amplitude_events"
                ) == [(0,)]
                return
            finally:
                tempfile.tempdir = saved
        assert not any(elsewhere.iterdir()), "the run left files outside the project"
        assert not broken, "a broken gzip member was committed"
        expected = sum(lines or 0 for _, lines in parts)
        landed = table_rows(project.warehouse_path, "SELECT count(*) FROM raw.amplitude_events")
        refused = table_rows(
            project.warehouse_path,
            "SELECT count(*), count(*) FILTER (WHERE reason IS NULL OR reason = '') "
            "FROM meta.quarantine WHERE model IS NULL",
        )
        assert landed[0][0] + refused[0][0] == expected
        assert refused[0][1] == 0, "a quarantined line without a reason"
        assert table_rows(project.warehouse_path, NEXT_HOUR)[0][0] == START.replace(
            hour=START.hour + 1
        )


# -- project files ------------------------------------------------------------------------------

BASE = project_data(sources={"amplitude": source_settings()})
names = st.one_of(
    st.from_regex(r"[A-Za-z_][A-Za-z0-9_]{0,10}", fullmatch=True),
    st.text(max_size=12),
    st.sampled_from(["id", "load_id", "select", "Events", "events", "a b", "x;drop", "🙂", ""]),
)
scalars = st.one_of(
    st.none(), st.booleans(), st.integers(-(10**20), 10**20), st.floats(), st.text(max_size=30),
    st.sampled_from(["VARCHAR); DROP TABLE x; --", "DECIMAL(40,2)", "DECIMAL(3,5)", "UUID",
                     "${MISSING}", "${AMPLITUDE_API_KEY}", "1h", "-5s", "20240301T05", "$.a[0]"]),
)  # fmt: skip


def _paths(value: Any, prefix: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    found = [prefix]
    if isinstance(value, dict):
        for key, inner in value.items():
            found += _paths(inner, (*prefix, key))
    elif isinstance(value, list):
        for i, inner in enumerate(value):
            found += _paths(inner, (*prefix, i))
    return found


@st.composite
def mutated_projects(draw: st.DrawFn) -> Any:
    """The test project with a few of its values replaced, keys dropped or added."""
    data = json.loads(json.dumps(BASE))
    for _ in range(draw(st.integers(1, 4))):
        path = draw(st.sampled_from(_paths(data)))
        if not path:
            continue
        *head, last = path
        parent = data
        for key in head:
            parent = parent[key]
        action = draw(st.sampled_from(["replace", "drop", "add", "rename"]))
        if action == "replace":
            parent[last] = draw(scalars | st.lists(scalars, max_size=3) | st.just({}))
        elif action == "drop":
            del parent[last]
        elif action == "add" and isinstance(parent, dict):
            parent[draw(names)] = draw(scalars)
        elif action == "rename" and isinstance(parent, dict):
            parent[draw(names)] = parent.pop(last)
    return data


def _load(root: Path, text: str) -> None:
    (root / "anchorflow.yml").write_text(text, encoding="utf-8")
    try:
        load_project(root, env={**ENV, "AMPLITUDE_API_KEY": API_KEY})
    except ConfigError as error:
        assert error.problems, "a ConfigError without a problem"
        for problem in error.problems:
            assert problem.strip() and "\n" not in problem.strip(), repr(problem)
            assert "Traceback" not in problem


@FUZZ
@given(mutated_projects())
def test_a_mutated_project_file_loads_or_says_what_is_wrong(data: Any) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        _load(Path(tmp), yaml.safe_dump(data, allow_unicode=True))


@FUZZ
@given(st.text(max_size=300))
def test_any_text_as_a_project_file_loads_or_says_what_is_wrong(text: str) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        _load(Path(tmp), text)


def test_a_value_from_the_environment_is_named_not_quoted_in_a_config_error() -> None:
    """A secret put in the wrong field (or reused in one that checks its format) must not be
    printed by the problem that field raises: the problem names the variable."""
    with tempfile.TemporaryDirectory() as tmp:
        data = json.loads(json.dumps(BASE))
        data["sources"]["amplitude"]["timeout"] = "${AMPLITUDE_SECRET_KEY}"
        (Path(tmp) / "anchorflow.yml").write_text(yaml.safe_dump(data))
        with pytest.raises(ConfigError) as caught:
            load_project(Path(tmp), env=ENV)
        assert SECRET_KEY not in str(caught.value)
        assert "${AMPLITUDE_SECRET_KEY}" in str(caught.value)
