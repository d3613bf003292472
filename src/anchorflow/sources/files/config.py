"""The settings of a `files` source: files matched by a glob, on local disk or in object storage.

```yaml
sources:
  exports:
    kind: files
    path: exports/*.csv.gz            # relative to the project file, or s3://bucket/prefix/**/*.json
    format: auto                      # ndjson | json | csv | parquet; auto: from the extension
    compression: auto                 # none | gzip | zstd; auto: from the extension
    stream: records                   # lands in raw.exports_records
    csv: {delimiter: ",", empty_as_null: true}
    s3: {endpoint_url: ..., key: ${AWS_ACCESS_KEY_ID}, secret: ${AWS_SECRET_ACCESS_KEY}}
    # s3.deadline: 30m bounds each whole listing and each whole file read
```
"""

from __future__ import annotations

from datetime import timedelta
from typing import Literal

from pydantic import Field, SecretStr, field_validator

from anchorflow.project_types import Duration, Identifier, Strict
from anchorflow.sources.base import SourceConfig

FORMATS = ("auto", "ndjson", "json", "csv", "parquet")
COMPRESSIONS = ("auto", "none", "gzip", "zstd")
REMOTE_SCHEMES = ("s3",)


class CsvOptions(Strict):
    delimiter: str = Field(default=",", min_length=1, max_length=1)
    quote: str = Field(default='"', min_length=1, max_length=1)
    empty_as_null: bool = Field(
        default=True, description="an empty field becomes JSON null (else the empty string)"
    )


class S3Options(Strict):
    """Where and how to reach an S3-compatible object store (through s3fs)."""

    endpoint_url: str | None = None
    region: str | None = None
    key: SecretStr | None = None
    secret: SecretStr | None = None
    anon: bool = False
    timeout: Duration = timedelta(seconds=60)
    deadline: Duration = Field(
        default=timedelta(minutes=30),
        description="the longest one listing or one file read may take, however slowly "
        "the store answers",
    )

    @field_validator("deadline")
    @classmethod
    def _positive(cls, value: timedelta) -> timedelta:
        if value <= timedelta(0):
            raise ValueError("expected a duration longer than 0s")
        return value


class FilesConfig(SourceConfig):
    kind: Literal["files"]
    stream: Identifier = "records"
    path: str = Field(description="a glob of files: relative to the project, or s3://bucket/...")
    format: Literal["auto", "ndjson", "json", "csv", "parquet"] = "auto"
    compression: Literal["auto", "none", "gzip", "zstd"] = "auto"
    csv: CsvOptions = CsvOptions()
    s3: S3Options = S3Options()
    settle: Duration = Field(
        default=timedelta(0),
        description="a file modified more recently than this is left for a later run "
        "(it may still be being written)",
    )

    @field_validator("path")
    @classmethod
    def _path(cls, value: str) -> str:
        scheme = value.split("://", 1)[0] if "://" in value else None
        if scheme is not None and scheme not in REMOTE_SCHEMES:
            raise ValueError(f"expected a local path or an s3:// URL, got a {scheme}:// URL")
        if not value.strip() or value.endswith("/"):
            raise ValueError(f"expected a glob of files such as exports/*.csv, got {value!r}")
        return value
