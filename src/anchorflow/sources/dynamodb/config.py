"""The settings of a `dynamodb` source: full scans of one DynamoDB table, one snapshot each.

```yaml
sources:
  users:
    kind: dynamodb
    table: users
    region: eu-west-1
    endpoint_url: http://127.0.0.1:8000     # a local server; omit for AWS itself
    access_key_id: ${AWS_ACCESS_KEY_ID}     # omitted: botocore's usual credential chain
    secret_access_key: ${AWS_SECRET_ACCESS_KEY}
    segments: 4                             # parallel scan, one thread per segment
    attributes: [id, email, profile.city]   # the projection (all attributes when omitted)
    every: 1d                               # a new full scan once the last is this old
    pii: {drop: [phone], hash: [email], salt: ${PII_SALT}}
    scanned_at_field: scanned_at            # each record gets the scan's start time
```
"""

from __future__ import annotations

import re
from datetime import timedelta
from typing import Literal

from pydantic import Field, SecretStr, field_validator, model_validator

from anchorflow.project_types import Duration, Identifier, JsonPath, Retry, Strict
from anchorflow.sources.base import SourceConfig

TABLE_NAME = re.compile(r"^[A-Za-z0-9_.\-]{3,255}$")
# One step of an attribute path: any name DynamoDB allows except the path's own punctuation
# (each step is sent as an ExpressionAttributeNames placeholder, so reserved words are fine).
PATH_STEP = re.compile(r"^[^.\[\]\s]{1,255}$")


def check_attribute_path(value: str) -> str:
    if not all(PATH_STEP.match(step) for step in value.split(".")):
        raise ValueError(
            f"expected an attribute name or a dotted path of names (profile.city), got {value!r}"
        )
    return value


class PiiPolicy(Strict):
    """What never reaches the warehouse: attributes dropped, or replaced by a salted hash
    (sha256 hex of the salt then the value's text), so they still join but cannot be read."""

    drop: list[str] = Field(default_factory=list)
    hash: list[str] = Field(default_factory=list)
    salt: SecretStr | None = Field(default=None, description="from ${VAR}; required with hash")

    @field_validator("drop", "hash")
    @classmethod
    def _paths(cls, value: list[str]) -> list[str]:
        return [check_attribute_path(path) for path in value]

    @model_validator(mode="after")
    def _salted(self) -> PiiPolicy:
        if self.hash and self.salt is None:
            raise ValueError("pii.hash needs pii.salt (a secret from ${VAR})")
        both = set(self.drop) & set(self.hash)
        if both:
            raise ValueError(f"attributes both dropped and hashed: {sorted(both)}")
        return self


class DynamoDBConfig(SourceConfig):
    kind: Literal["dynamodb"]
    stream: Identifier = "items"
    table: str
    region: str = "us-east-1"
    endpoint_url: str | None = None
    access_key_id: SecretStr | None = None
    secret_access_key: SecretStr | None = None
    session_token: SecretStr | None = None
    segments: int = Field(default=1, ge=1, le=64, description="parallel scan segments (threads)")
    attributes: list[str] | None = Field(
        default=None, description="the attributes to read (ProjectionExpression); all if omitted"
    )
    consistent_read: bool = False
    page_size: int | None = Field(
        default=None, ge=1, le=100_000, description="items per Scan call (Limit); at most 1 MB"
    )
    every: Duration = Field(
        default=timedelta(0), description="a full scan is due once the last began this long ago"
    )
    pii: PiiPolicy = PiiPolicy()
    scanned_at_field: JsonPath | None = Field(
        default=None,
        description="a key added to every record holding the scan's start time (ISO 8601, "
        "UTC): a snapshot's `changed_at` for the anchor layer",
    )
    timeout: Duration = Field(
        default=timedelta(seconds=30), description="the longest wait for any one read"
    )
    deadline: Duration = Field(
        default=timedelta(minutes=2), description="the longest one Scan call may take whole"
    )
    retry: Retry = Retry(attempts=8, base_delay=timedelta(milliseconds=50))

    @field_validator("table")
    @classmethod
    def _table(cls, value: str) -> str:
        if not TABLE_NAME.match(value):
            raise ValueError(
                f"expected a DynamoDB table name (3-255 of A-Z a-z 0-9 _ . -), got {value!r}"
            )
        return value

    @field_validator("attributes")
    @classmethod
    def _attributes(cls, value: list[str] | None) -> list[str] | None:
        if value is not None and not value:
            raise ValueError("expected at least one attribute, or no `attributes:` at all")
        return None if value is None else [check_attribute_path(path) for path in value]

    @field_validator("endpoint_url")
    @classmethod
    def _url(cls, value: str | None) -> str | None:
        if value is not None and not re.match(r"^https?://[^\s/]+", value):
            raise ValueError(f"expected an http(s) URL, got {value!r}")
        return None if value is None else value.rstrip("/")

    @field_validator("timeout", "deadline")
    @classmethod
    def _positive(cls, value: timedelta) -> timedelta:
        if value <= timedelta(0):
            raise ValueError("expected a duration longer than 0s")
        return value

    @model_validator(mode="after")
    def _key_pair(self) -> DynamoDBConfig:
        if (self.access_key_id is None) != (self.secret_access_key is None):
            raise ValueError("give both access_key_id and secret_access_key, or neither")
        return self

    @property
    def url(self) -> str:
        return self.endpoint_url or f"https://dynamodb.{self.region}.amazonaws.com"
