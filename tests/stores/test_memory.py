"""MemoryStore passes the store contract, and keeps to its size bound."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from wsgisession import ConfigurationError, MemoryStore
from wsgisession.testing import NOW, StoreContract, new_key


class TestMemoryStoreContract(StoreContract):
    @pytest.fixture
    def store(self) -> Iterator[MemoryStore]:
        with MemoryStore() as store:
            yield store


def test_bound_drops_least_recently_used() -> None:
    """With max_entries, the least recently used sessions go first and the bound holds."""
    store = MemoryStore(max_entries=3)
    keys = [new_key() for _ in range(4)]
    for key in keys[:3]:
        store.create(key, {"k": key}, {}, NOW + 100, NOW)
    assert store.load(keys[0], NOW) is not None  # keys[0] is now the most recently used
    store.create(keys[3], {}, {}, NOW + 100, NOW)
    assert len(store) == 3
    assert store.load(keys[1], NOW) is None
    assert store.load(keys[0], NOW) is not None


def test_bound_holds_under_a_flood() -> None:
    """A flood of new sessions never grows a bounded store past its bound."""
    store = MemoryStore(max_entries=100)
    for _ in range(5000):
        store.create(new_key(), {"x": 1}, {}, NOW + 100, NOW)
    assert len(store) == 100


def test_bad_bound_is_rejected() -> None:
    """A non-positive bound is a configuration error that says what to use."""
    with pytest.raises(ConfigurationError, match="positive"):
        MemoryStore(max_entries=0)
