"""The Store base class: what a store written outside the package inherits, and its messages."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

import pytest

from wsgisession import Store
from wsgisession.records import Changes, Record
from wsgisession.testing import NOW


class MinimalStore(Store):
    """A store with the abstract methods only, as a user's first draft would be."""

    def load(self, key: str, now: float) -> Record | None:
        return None

    def create(
        self,
        key: str,
        data: Mapping[str, Any],
        meta: Mapping[str, Any],
        expires: float,
        now: float,
        replaces: str | None = None,
    ) -> bool:
        return True

    def save(self, key: str, changes: Changes, now: float) -> bool:
        return False

    def delete(self, key: str) -> None:
        pass

    def purge(self, now: float, progress: Callable[[int], None] | None = None) -> int:
        return 0


def test_a_store_without_count_expired_says_what_to_define() -> None:
    """count_expired() not written: the message names the method, what it returns and why."""
    with pytest.raises(NotImplementedError) as info:
        MinimalStore().count_expired(NOW)
    assert "MinimalStore cannot count its expired sessions, which purge --dry-run needs" in str(
        info.value
    )
    assert "define count_expired(now) on it" in str(info.value)


def test_a_store_without_stats_says_what_to_define() -> None:
    """stats() not written: the message names the method and the StoreStats it returns."""
    with pytest.raises(
        NotImplementedError, match=r"define stats\(now\) on it, returning StoreStats"
    ):
        MinimalStore().stats(NOW)
