"""The settings of a `redis` source: Redis lists and streams of backend events.

```yaml
sources:
  backend:
    kind: redis
    url: ${REDIS_URL}                 # redis://[:password@]host:port/db
    queues:                           # each queue lands in its own raw table: raw.backend_<queue>
      events: {list: bus:events}      # producers RPUSH; readers take from the left
      payments: {stream: bus:payments, group: anchorflow, claim_idle: 60s}
    model_field: type                 # one queue can carry many models (typed by staging)
    chunk_size: 100000                # a chunk is closed at this many items ...
    chunk_timeout: 5s                 # ... or this long after its first item
    batch: 5000                       # items taken from Redis per call
    chunk_format: arrow               # or ndjson: one record per line
```
Readers (`anchorflow read backend --procs 2`) write chunk files under `landing` (default
`.anchorflow/landing/<source>`); the loader (`anchorflow run`) moves them into raw.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Literal

from pydantic import Field, SecretStr, model_validator

from anchorflow.project_types import Duration, Identifier, Strict
from anchorflow.sources.base import SourceConfig


class QueueConfig(Strict):
    """One Redis key drained by the readers: a list or a stream (exactly one)."""

    list: str | None = Field(default=None, min_length=1, description="the key of a Redis list")
    stream: str | None = Field(default=None, min_length=1, description="the key of a stream")
    group: str = Field(default="anchorflow", min_length=1, description="a stream's consumer group")
    claim_idle: Duration = Field(
        default=timedelta(seconds=60),
        description="a stream entry delivered to a reader and not acknowledged for this long "
        "is claimed by another reader (its reader died)",
    )
    delete_acked: bool = Field(
        default=True,
        description="delete a stream's entries once acknowledged (Redis keeps them otherwise); "
        "false when other consumer groups read the same stream",
    )

    @model_validator(mode="after")
    def _one_key(self) -> QueueConfig:
        if (self.list is None) == (self.stream is None):
            raise ValueError("expected exactly one of `list:` or `stream:`")
        return self

    @property
    def key(self) -> str:
        return self.list or self.stream or ""

    @property
    def kind(self) -> str:
        return "list" if self.list is not None else "stream"


class RedisConfig(SourceConfig):
    kind: Literal["redis"]
    url: SecretStr = Field(description="redis://[:password@]host:port/db, usually ${REDIS_URL}")
    queues: dict[Identifier, QueueConfig] = Field(min_length=1)
    landing: str | None = Field(
        default=None,
        description="the directory of the chunk files (relative to the project); default "
        ".anchorflow/landing/<source>",
    )
    batch: int = Field(default=5000, ge=1, le=7000, description="items taken per Redis call")
    chunk_format: Literal["arrow", "ndjson"] = Field(
        default="arrow",
        description="how readers write chunks: Arrow (the loader takes its column as it is) "
        "or one record per line (readable with a text tool, slower to load)",
    )
    chunk_size: int = Field(default=100_000, ge=1, description="items per chunk at most")
    chunk_timeout: Duration = Field(
        default=timedelta(seconds=5), description="a chunk is closed this long after it opened"
    )
    heartbeat: Duration = Field(
        default=timedelta(seconds=10),
        description="a reader silent for this long is dead: its items in hand are requeued",
    )
    timeout: Duration = Field(
        default=timedelta(seconds=10), description="the deadline of each call to Redis"
    )
    alert_depth: int | None = Field(
        default=None, ge=1, description="alert when a queue holds more items than this"
    )
    alert_growing: Duration | None = Field(
        default=None, description="alert when a queue's depth has grown for this long"
    )

    @property
    def streams(self) -> list[str]:
        return list(self.queues)
