"""One moto DynamoDB server on loopback for the whole session; each test makes its own table."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.sources.dynamodb.server import MotoDynamo


@pytest.fixture(scope="session")
def dynamo() -> Iterator[MotoDynamo]:
    with MotoDynamo() as server:
        yield server
