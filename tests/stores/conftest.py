"""Fixtures the store tests share."""

from __future__ import annotations

from typing import Any

import pytest

from tests.support.servers import RoundTrips


@pytest.fixture
def sent(monkeypatch: pytest.MonkeyPatch) -> RoundTrips:
    """Counts every request redis-py's connections send, from here to the end of the test."""
    redis = pytest.importorskip("redis")
    trips = RoundTrips()
    original = redis.Connection.send_packed_command

    def counting(self: Any, command: Any, check_health: bool = True) -> None:
        trips.count += 1
        original(self, command, check_health)

    monkeypatch.setattr(redis.Connection, "send_packed_command", counting)
    return trips
