"""The settings of an `async_export` source: an API that prepares an export in the background.

```yaml
sources:
  qa:
    kind: async_export
    preset: maestroqa                 # MaestroQA's endpoints, statuses and streams as defaults
    token: ${MAESTROQA_API_TOKEN}     # sent in the preset's `apitoken` header
    start: 2024-03-01                 # the first day to export (the watermark starts there)
    window: 1d                        # one export per day
    streams:                          # each lands in raw.qa_<stream>
      groups: {}                      # a snapshot of the agents' groups, once a day
      total_scores: {after: [groups]} # requested once groups has loaded
    poll: {interval: 5s, max_interval: 1m, timeout: 2h}
```
Without a preset, every endpoint is set on the source: `base_url`, `status` (path, id
parameter, status values, result URL field) and per stream `request: {path, body}` (a body's
`"{start}"` and `"{end}"` are the window's bounds in `date_format`) and `format`.
"""

from __future__ import annotations

import re
from datetime import date, timedelta
from typing import Any, Literal

from pydantic import Field, SecretStr, field_validator, model_validator

from anchorflow.project_types import Duration, Identifier, Retry, Strict
from anchorflow.sources.async_export.presets import merged
from anchorflow.sources.base import SourceConfig
from anchorflow.sources.files.config import CsvOptions


class ExportRequest(Strict):
    """How a stream's export is asked for: `POST {base_url}{path}` with a JSON body."""

    method: Literal["POST", "GET"] = "POST"
    path: str = Field(pattern=r"^/")
    body: dict[str, Any] = Field(default_factory=dict)


class StatusEndpoint(Strict):
    """How an export's status is asked for, and what its answers mean."""

    path: str = Field(pattern=r"^/")
    id_param: str = Field(default="id", min_length=1, description="the query parameter")
    field: str = Field(default="status", min_length=1)
    url_field: str = Field(default="url", min_length=1, description="the result's download URL")
    requested: list[str] = ["requested"]
    in_progress: list[str] = ["in_progress"]
    complete: list[str] = ["complete"]
    errored: list[str] = ["errored"]


class PollOptions(Strict):
    interval: Duration = Field(default=timedelta(seconds=5), description="the first wait")
    backoff: float = Field(default=1.5, ge=1.0, le=10.0, description="each wait grows by this")
    max_interval: Duration = timedelta(minutes=1)
    timeout: Duration = Field(
        default=timedelta(hours=2), description="the longest one export may take to complete"
    )

    @field_validator("interval", "max_interval", "timeout")
    @classmethod
    def _positive(cls, value: timedelta) -> timedelta:
        if value <= timedelta(0):
            raise ValueError("expected a duration longer than 0s")
        return value


class StreamSpec(Strict):
    """One export of the source, landed in its own raw table."""

    request: ExportRequest
    format: Literal["csv", "zip", "ndjson"] = "csv"
    after: list[Identifier] = Field(
        default_factory=list, description="streams that must load first, in this run"
    )
    snapshot: bool = Field(
        default=False, description="an export of the current state (no dates): one per day"
    )
    list_columns: dict[str, str] = Field(
        default_factory=dict,
        description="CSV columns holding lists, with their separator (agent_ids: ';'): each "
        "lands as a JSON array, which a staging model can explode",
    )

    @field_validator("list_columns")
    @classmethod
    def _separators(cls, value: dict[str, str]) -> dict[str, str]:
        for column, separator in value.items():
            if not separator:
                raise ValueError(f"{column}: expected a separator such as ';'")
        return value


class AsyncExportConfig(SourceConfig):
    kind: Literal["async_export"]
    preset: Literal["maestroqa"] | None = None
    base_url: str
    token: SecretStr | None = Field(default=None, description="sent in `token_header`")
    token_header: str = "Authorization"
    token_prefix: str = Field(default="", description="before the token, e.g. `Bearer `")
    headers: dict[str, SecretStr] = Field(default_factory=dict)
    export_id_field: str = Field(default="id", min_length=1)
    status: StatusEndpoint
    streams_: dict[Identifier, StreamSpec] = Field(alias="streams", min_length=1)
    start: date = Field(description="the first day exported: the watermark starts there")
    window: Duration = Field(default=timedelta(days=1), description="the span of one export")
    delay: Duration = Field(
        default=timedelta(hours=1), description="a window is due this long after it ends"
    )
    date_format: str = "%Y-%m-%dT%H:%M:%SZ"
    csv: CsvOptions = CsvOptions()
    poll: PollOptions = PollOptions()
    retry: Retry = Retry()
    errored_attempts: int = Field(
        default=3, ge=1, le=20, description="exports requested for a window that keeps erroring"
    )
    download_attempts: int = Field(
        default=3, ge=1, le=20, description="downloads of a window (an expired link re-polls)"
    )
    timeout: Duration = Field(default=timedelta(seconds=60), description="any one read")
    deadline: Duration = Field(
        default=timedelta(minutes=30), description="the longest one request or download takes"
    )

    @model_validator(mode="before")
    @classmethod
    def _preset(cls, data: Any) -> Any:
        return merged(data) if isinstance(data, dict) else data

    @field_validator("base_url")
    @classmethod
    def _url(cls, value: str) -> str:
        if not re.match(r"^https?://[^\s/]+", value):
            raise ValueError(f"expected an http(s) URL, got {value!r}")
        return value.rstrip("/")

    @field_validator("window")
    @classmethod
    def _window(cls, value: timedelta) -> timedelta:
        if value < timedelta(hours=1) or value % timedelta(hours=1):
            raise ValueError("expected a whole number of hours or days, such as 1d or 6h")
        return value

    @model_validator(mode="after")
    def _order(self) -> AsyncExportConfig:
        stream_order(self.streams_)  # raises for an unknown name or a cycle
        return self

    @property
    def streams(self) -> list[str]:
        """The streams in the order they load: each after the ones it names in `after`."""
        return stream_order(self.streams_)

    def stream_spec(self, stream: str) -> StreamSpec:
        return self.streams_[stream]


def stream_order(streams: dict[str, StreamSpec]) -> list[str]:
    """The streams sorted so that each comes after those it names in `after` (otherwise in
    the order written); ValueError for an unknown name or a cycle."""
    order: list[str] = []
    visiting: list[str] = []

    def visit(name: str) -> None:
        if name in order:
            return
        if name in visiting:
            cycle = " → ".join([*visiting[visiting.index(name) :], name])
            raise ValueError(f"streams depend on each other in a cycle: {cycle}")
        visiting.append(name)
        for before in streams[name].after:
            if before not in streams:
                raise ValueError(f"stream {name!r} comes after {before!r}, which is no stream")
            visit(before)
        visiting.pop()
        order.append(name)

    for name in streams:
        visit(name)
    return order
