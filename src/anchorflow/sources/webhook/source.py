"""The `webhook` source: the chunks that `anchorflow serve` published for one webhook source,
loaded once each (`ChunkSource` over `<landing>/<stream>/`). Loading never contacts the
sender; the intake made every acknowledged delivery durable before its 2xx."""

from __future__ import annotations

from pathlib import Path

from anchorflow.sources.chunked import ChunkSource
from anchorflow.sources.chunks import landing_dir
from anchorflow.sources.webhook.config import WebhookConfig


class WebhookSource(ChunkSource):
    kind = "webhook"

    def __init__(self, name: str, config: WebhookConfig, root: Path) -> None:
        super().__init__(name, config, landing_dir(root, name, config.landing))
