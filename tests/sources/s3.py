"""An S3-compatible server on loopback for the tests: moto's server mode, with one bucket."""

from __future__ import annotations

import socket
from typing import Any

import boto3
from moto.server import ThreadedMotoServer

ACCESS_KEY, SECRET = "anchorflow-test-key", "anchorflow-test-secret"


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


class MotoS3:
    """A real HTTP server speaking the S3 API on 127.0.0.1, and a bucket in it."""

    def __init__(self, bucket: str = "landing-bucket") -> None:
        self.bucket = bucket
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self._server = ThreadedMotoServer(ip_address="127.0.0.1", port=self.port, verbose=False)

    def __enter__(self) -> MotoS3:
        self._server.start()
        self.client().create_bucket(Bucket=self.bucket)
        return self

    def __exit__(self, *exc: object) -> None:
        self._server.stop()

    def client(self) -> Any:
        return boto3.client(
            "s3",
            endpoint_url=self.url,
            aws_access_key_id=ACCESS_KEY,
            aws_secret_access_key=SECRET,
            region_name="us-east-1",
        )

    def put(self, key: str, data: bytes) -> None:
        self.client().put_object(Bucket=self.bucket, Key=key, Body=data)

    def delete(self, key: str) -> None:
        self.client().delete_object(Bucket=self.bucket, Key=key)

    def options(self) -> dict[str, Any]:
        """The project file's `s3:` section that reaches this server."""
        return {
            "endpoint_url": self.url,
            "region": "us-east-1",
            "key": ACCESS_KEY,
            "secret": SECRET,
            "timeout": "10s",
        }
