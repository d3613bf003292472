"""The settings of a `webhook` source: signed HTTP deliveries that `anchorflow serve` receives.

```yaml
sources:
  intercom:
    kind: webhook
    preset: intercom                  # intercom | wistia | hmac: how the signature is checked
    secret: ${INTERCOM_WEBHOOK_SECRET}
    stream: notifications             # lands in raw.intercom_notifications
  wistia:
    kind: webhook
    preset: wistia                    # one delivery holds `events: [...]`: one raw row each
  orders:
    kind: webhook
    preset: hmac                      # X-Signature: hex HMAC-SHA256 of "<X-Timestamp>.<body>"
    secret: ${ORDERS_WEBHOOK_SECRET}
    dedup: order.delivery_id          # the sender's id of a delivery (redeliveries dropped)
    tolerance: 5m                     # a timestamp further from now is refused (replays)
```
`anchorflow serve` answers `POST /hooks/<source>` and appends every accepted record to a chunk
file under `landing` (default `.anchorflow/landing/<source>`); the loader (`anchorflow run`)
moves the published chunks into raw, like a `redis` source's.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Literal

from pydantic import ByteSize, Field, SecretStr

from anchorflow.project_types import Duration, JsonPath
from anchorflow.sources.base import SourceConfig

# The sender's id of one record, and where a delivery's array of events is, when not configured.
PRESET_DEDUP = {"intercom": "id", "wistia": "uuid", "hmac": None}
PRESET_EVENTS = {"intercom": None, "wistia": "events", "hmac": None}


class WebhookConfig(SourceConfig):
    kind: Literal["webhook"]
    preset: Literal["intercom", "wistia", "hmac"] = Field(
        description="intercom: X-Hub-Signature sha1=<hex> of the body; wistia: "
        "X-Wistia-Signature, hex HMAC-SHA256 of the body; hmac: `header`, hex HMAC-SHA256 of "
        "'<timestamp>.<body>' with the timestamp in `timestamp_header`"
    )
    secret: SecretStr = Field(description="the signing secret, usually ${..._WEBHOOK_SECRET}")
    dedup: JsonPath | None = Field(
        default=None,
        description="the sender's id of a record (redeliveries dropped); default: intercom "
        "`id`, wistia `uuid` (of each event), hmac none",
    )
    events_path: JsonPath | None = Field(
        default=None,
        description="an array of events in one delivery, one record each; default: wistia "
        "`events`, the others: the whole body is one record",
    )
    max_body: ByteSize = Field(
        default=ByteSize(1 << 20), ge=1, description="a larger body is refused (413)"
    )
    header: str = Field(default="X-Signature", min_length=1, description="hmac: the signature")
    timestamp_header: str = Field(
        default="X-Timestamp", min_length=1, description="hmac: the Unix time of the signing"
    )
    tolerance: Duration = Field(
        default=timedelta(minutes=5),
        description="hmac: a timestamp further than this from now is refused (replays)",
    )
    landing: str | None = Field(
        default=None,
        description="the directory of the chunk files (relative to the project); default "
        ".anchorflow/landing/<source>",
    )
    group_commit: Duration = Field(
        default=timedelta(milliseconds=5),
        description="accepted requests are made durable together, one fsync per interval, "
        "before any of them is answered",
    )
    chunk_size: int = Field(default=10_000, ge=1, description="records per chunk at most")
    chunk_timeout: Duration = Field(
        default=timedelta(seconds=1),
        description="a chunk is published this long after it opened (the loader sees it)",
    )
    dedup_window: int = Field(
        default=100_000, ge=0, description="how many recent sender ids are remembered"
    )

    @property
    def dedup_path(self) -> str | None:
        return self.dedup or PRESET_DEDUP[self.preset]

    @property
    def events(self) -> str | None:
        return self.events_path or PRESET_EVENTS[self.preset]
