"""The `webhook` source: the chunks that `anchorflow serve` published for one webhook source.

TODO(issue 14, merge): subclass the landing-chunk source (`ChunkSource` over
`<landing>/<stream>/`) written for the Redis readers; a webhook source lands one queue, its
stream, so nothing else is needed here.
"""

from __future__ import annotations

from pathlib import Path

from anchorflow.errors import TerminalSourceError
from anchorflow.sources.webhook.config import WebhookConfig


class WebhookSource:
    def __init__(self, name: str, config: WebhookConfig, root: Path) -> None:
        raise TerminalSourceError(
            f"sources.{name}: loading webhook chunks waits for the chunk loader (issue 14)"
        )
