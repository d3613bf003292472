"""The settings of an `amplitude` source: Amplitude's hourly raw Export API."""

from __future__ import annotations

import re
from datetime import datetime, timedelta
from typing import Literal

from pydantic import Field, SecretStr, ValidationInfo, field_validator

from anchorflow.project_types import Duration, Hour, JsonPath, Retry, format_hour
from anchorflow.sources.base import SourceConfig


class AmplitudeConfig(SourceConfig):
    kind: Literal["amplitude"]
    model_field: JsonPath | None = Field(
        default="event_type",
        description="the JSON key naming a record's model; its unclaimed values are new models",
    )
    base_url: str = "https://amplitude.com"
    api_key: SecretStr
    secret_key: SecretStr
    start: Hour
    end: Hour | None = Field(
        default=None,
        description="the last hour to load, inclusive: a replay of a past export stops there",
    )
    availability_delay: Duration = timedelta(hours=2)
    hours_per_request: int = Field(default=6, ge=1, le=24 * 31)
    timeout: Duration = Field(
        default=timedelta(seconds=300), description="the longest wait for any one read"
    )
    deadline: Duration = Field(
        default=timedelta(minutes=30),
        description="the longest one export request may take, however slowly it answers",
    )
    retry: Retry = Retry()
    download_attempts: int = Field(
        default=3, ge=1, le=20, description="downloads of a range whose ZIP or gzip is corrupt"
    )
    decompress_workers: int | None = Field(default=None, ge=1, le=64)

    @field_validator("timeout", "deadline")
    @classmethod
    def _positive(cls, value: timedelta) -> timedelta:
        if value <= timedelta(0):
            raise ValueError("expected a duration longer than 0s")
        return value

    @field_validator("end")
    @classmethod
    def _end_after_start(cls, value: datetime | None, info: ValidationInfo) -> datetime | None:
        start = info.data.get("start")
        if value is not None and start is not None and value < start:
            raise ValueError(
                f"the last hour {format_hour(value)} is before start: {format_hour(start)}"
            )
        return value

    @field_validator("base_url")
    @classmethod
    def _url(cls, value: str) -> str:
        if not re.match(r"^https?://[^\s/]+", value):
            raise ValueError(f"expected an http(s) URL, got {value!r}")
        return value.rstrip("/")
