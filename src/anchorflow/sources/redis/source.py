"""The loader's side of a `redis` source: the sealed chunks the readers wrote are its windows
(`ChunkSource`), and its health is the queues' (depth, readers alive) and the chunks'.

Loading never contacts Redis: the readers (`anchorflow read`) took the items out and made them
durable in chunk files. Redis is asked only for health: `status`, and the depth samples of a
loader run when the source has alerts (`alert_depth`, `alert_growing`). Every call has the
source's `timeout`; the URL's password never appears in a message.
"""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path
from typing import Any
from urllib.parse import unquote, urlsplit

import redis
from redis.exceptions import ResponseError

from anchorflow.redact import add_secret, redact, redact_dsn
from anchorflow.sources.chunked import ChunkSource
from anchorflow.sources.chunks import landing_dir
from anchorflow.sources.redis.config import QueueConfig, RedisConfig
from anchorflow.sources.redis.keys import QueueKeys


class RedisSource(ChunkSource):
    kind = "redis"

    def __init__(self, name: str, config: RedisConfig, root: Path) -> None:
        super().__init__(name, config, landing_dir(root, name, config.landing))
        self.redis_config = config
        self._client: redis.Redis | None = None

    @property
    def client(self) -> redis.Redis:
        if self._client is None:
            url = self.redis_config.url.get_secret_value()
            password = urlsplit(url).password
            if password:
                add_secret(unquote(password))
                add_secret(password)
            seconds = self.redis_config.timeout.total_seconds()
            self._client = redis.Redis.from_url(
                url, socket_timeout=seconds, socket_connect_timeout=seconds,
                retry_on_timeout=False,
            )  # fmt: skip
        return self._client

    def queue_depth(self, stream: str) -> int | None:
        """A list's length; a stream's entries its group has not read (lag) plus those read
        and not acknowledged (pending). Before the group exists, the stream's length."""
        queue = self.redis_config.queues[stream]
        if queue.list is not None:
            return int(self.client.llen(queue.key))
        return self._stream_depth(queue)

    def _stream_depth(self, queue: QueueConfig) -> int:
        try:
            groups: list[dict[str, Any]] = self.client.xinfo_groups(queue.key)
        except ResponseError as error:
            if "no such key" in str(error).lower():
                return 0
            raise
        for group in groups:
            name = group.get("name")
            if (name.decode() if isinstance(name, bytes) else name) != queue.group:
                continue
            pending = int(group.get("pending") or 0)
            lag = group.get("lag")
            if lag is None:  # Redis cannot tell (entries deleted in the middle): the length
                lag = max(0, int(self.client.xlen(queue.key)) - pending)
            return int(lag) + pending
        return int(self.client.xlen(queue.key))

    def readers_alive(self, stream: str) -> int | None:
        """Registered readers whose heartbeat has not expired."""
        keys = QueueKeys(self.redis_config.queues[stream].key)
        launches = [m.decode() if isinstance(m, bytes) else str(m)
                    for m in self.client.smembers(keys.readers)]  # fmt: skip
        if not launches:
            return 0
        return int(self.client.exists(*[keys.alive(launch) for launch in launches]))

    def alert_limits(self) -> tuple[int | None, timedelta | None]:
        return self.redis_config.alert_depth, self.redis_config.alert_growing

    def describe_failure(self, error: BaseException) -> str:
        url = redact_dsn(self.redis_config.url.get_secret_value())
        first = (str(error).splitlines() or [""])[0][:200]
        return redact(f"queue unknown: Redis at {url}: {type(error).__name__}: {first}")

    def close(self) -> None:
        super().close()
        if self._client is not None:
            self._client.close()
            self._client = None
