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


def test_loaded_values_are_private_and_json_shaped() -> None:
    """A loaded container is a copy; tuples come back as lists, as from any other store."""
    store = MemoryStore()
    key = new_key()
    cart = ["apple"]
    store.create(key, {"cart": cart, "pair": (1, 2), "name": "ann"}, {}, NOW + 100, NOW)
    cart.append("stolen")
    first = store.load(key, NOW)
    assert first is not None
    assert first.data == {"cart": ["apple"], "pair": [1, 2], "name": "ann"}
    first.data["cart"].append("pear")
    second = store.load(key, NOW)
    assert second is not None and second.data["cart"] == ["apple"]


def test_record_size_follows_every_change() -> None:
    """Record.size is the UTF-8 length of the session's JSON after creates, sets and removals."""
    from wsgisession.records import Changes
    from wsgisession.serializers import JSONSerializer

    dumps = JSONSerializer().dumps
    store = MemoryStore()
    key = new_key()
    data: dict[str, object] = {"a": 1, "b": "ünï\n", "c": {"x": [1, 2]}}
    store.create(key, data, {}, NOW + 100, NOW)
    steps = [
        Changes(updates={"a": 12345, "d": None}),
        Changes(removals=frozenset({"b", "missing"})),
        Changes(increments={"n": 2, "a": 1}),
        Changes(updates={"c": ["now", "a", "list"]}, increments={"n": 0.5}),
        Changes(removals=frozenset({"a", "c", "d", "n"})),
    ]
    for changes in steps:
        assert store.save(key, changes, NOW)
        record = store.load(key, NOW)
        assert record is not None
        assert record.size == len(dumps(record.data).encode("utf-8")), changes
    assert record.data == {} and record.size == 2
