"""Fixtures of the staging tests: a webhook receiver on loopback that records every alert."""

from __future__ import annotations

import pytest

from tests.receiver import Receiver, running_receiver

receiver = pytest.fixture(running_receiver)

__all__ = ["Receiver", "receiver"]
