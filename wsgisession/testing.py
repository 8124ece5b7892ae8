"""The store contract as a pytest mixin: every store, ours or a user's, must pass it.

Use it from your own tests::

    import pytest
    from wsgisession.testing import StoreContract

    class TestMyStore(StoreContract):
        @pytest.fixture
        def store(self):
            store = MyStore(...)
            yield store
            store.close()

Each test speaks to the store directly, with keys shaped like the ones the middleware passes
(the SHA-256 hex of an id) and an explicit clock, so expiry is tested without sleeping.
"""

from __future__ import annotations

import copy
import json
import random
import secrets
import sys
import threading
from collections.abc import Callable, Mapping
from typing import Any, TypeVar

import pytest

from .errors import NoUserIndexError
from .records import USER, Changes, Record
from .signing import hash_id, new_id
from .stores.base import ClientSideStore, Store, StoreStats

__all__ = [
    "EDGE_NUMBERS",
    "ClientSideStoreContract",
    "CountingStore",
    "StoreContract",
    "exact",
    "new_key",
]

_T = TypeVar("_T")

NOW = 1_800_000_000.0
DAY = 86400.0


def new_key() -> str:
    """Return a fresh store key, as the middleware derives one from a new id."""
    return hash_id(new_id())


#: Numbers at the edges of what JSON, floats and 64-bit integers hold, by name.
EDGE_NUMBERS: dict[str, int | float] = {
    "max_float": sys.float_info.max,
    "min_float": -sys.float_info.max,
    "min_subnormal": 5e-324,
    "min_normal": sys.float_info.min,
    "negative_zero": -0.0,
    "zero": 0.0,
    "tiny": 1e-300,
    "e16": 1e16,
    "e15": 1e15,
    "tenth": 0.1,
    "whole_float": 3.0,
    "int_2_53_plus_1": 2**53 + 1,
    "int_2_63": 2**63,
    "int_minus_2_63_minus_1": -(2**63) - 1,
    "int_2_64_plus_1": 2**64 + 1,
    "int_10_40": 10**40,
}

#: Generated examples per store in :meth:`StoreContract.test_merge_gives_the_reference_result`.
MERGE_EXAMPLES = 100


def exact(value: Any) -> str:
    """Return *value* as text that tells 1 from 1.0 and True, and -0.0 from 0.0, for comparing."""
    return json.dumps(value, sort_keys=True, allow_nan=False)


def _merge_strategies() -> tuple[Any, Any]:
    """Hypothesis strategies for stored session data and for the Changes a request makes."""
    from hypothesis import strategies as st

    # Few names, so that changes meet stored keys, plus the ones stores treat specially.
    names = st.sampled_from(["a", "b", "n", "@e", "d:x", "k\x00", "\ue000"]) | st.text(max_size=3)
    numbers = (
        st.integers(min_value=-(2**70), max_value=2**70)
        | st.floats(allow_nan=False, allow_infinity=False)
        | st.sampled_from(list(EDGE_NUMBERS.values()))
    )
    scalars = st.none() | st.booleans() | numbers | st.text(max_size=5)
    values = st.recursive(
        scalars,
        lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=3), inner),
        max_leaves=6,
    )
    records = st.dictionaries(names, values, max_size=6)
    changes = st.builds(
        Changes,
        updates=st.dictionaries(names, values, max_size=3),
        removals=st.frozensets(names, max_size=3),
        increments=st.dictionaries(names, numbers, max_size=3),
    )
    return records, changes


class CountingStore(Store):
    """Wraps a store and records every call, to check how many store calls a request makes.

    ``calls`` lists the method names in order; ``reset()`` empties it.
    """

    def __init__(self, inner: Store) -> None:
        super().__init__(inner.serializer)
        #: The store that does the work.
        self.inner = inner
        #: The names of the calls made, in order.
        self.calls: list[str] = []

    def reset(self) -> None:
        """Forget the calls counted so far."""
        self.calls.clear()

    @property
    def writes(self) -> list[str]:
        """The calls that write: create, save and delete."""
        return [name for name in self.calls if name in ("create", "save", "delete")]

    def record(self, name: str, call: Callable[[], _T]) -> _T:
        """Count one call of *name*, then make it; subclasses can measure around it."""
        self.calls.append(name)
        return call()

    def load(self, key: str, now: float) -> Record | None:
        return self.record("load", lambda: self.inner.load(key, now))

    def create(
        self,
        key: str,
        data: Mapping[str, Any],
        meta: Mapping[str, Any],
        expires: float,
        now: float,
        replaces: str | None = None,
    ) -> bool:
        return self.record(
            "create", lambda: self.inner.create(key, data, meta, expires, now, replaces)
        )

    def save(self, key: str, changes: Changes, now: float) -> bool:
        return self.record("save", lambda: self.inner.save(key, changes, now))

    def delete(self, key: str) -> None:
        self.record("delete", lambda: self.inner.delete(key))

    def purge(self, now: float, progress: Callable[[int], None] | None = None) -> int:
        return self.record("purge", lambda: self.inner.purge(now, progress))

    def count_expired(self, now: float) -> int:
        return self.inner.count_expired(now)

    def stats(self, now: float) -> StoreStats:
        return self.inner.stats(now)

    def user_sessions(self, user_id: str, now: float) -> list[tuple[str, Record]]:
        return self.record("user_sessions", lambda: self.inner.user_sessions(user_id, now))

    def revoke_user(self, user_id: str, now: float, keep: str | None = None) -> int:
        return self.record("revoke_user", lambda: self.inner.revoke_user(user_id, now, keep))

    def close(self) -> None:
        self.inner.close()


class StoreContract:
    """Tests every store must pass; subclasses provide a ``store`` fixture."""

    @pytest.fixture
    def store(self) -> Store:  # pragma: no cover - always overridden
        raise NotImplementedError("define a 'store' fixture that returns the store under test")

    # Helpers ----------------------------------------------------------------------------

    def _create(self, store: Store, data: dict[str, Any], expires: float = NOW + DAY) -> str:
        key = new_key()
        store.create(key, data, {"created": NOW}, expires, NOW)
        return key

    def _load(self, store: Store, key: str, now: float = NOW) -> Record:
        record = store.load(key, now)
        assert record is not None, "a record that was just written must load"
        return record

    # Creating and loading ----------------------------------------------------------------

    def test_missing_key_loads_none(self, store: Store) -> None:
        """An unknown key loads as None, and loading it creates nothing."""
        key = new_key()
        assert store.load(key, NOW) is None
        assert store.load(key, NOW) is None

    def test_create_then_load_round_trips_json_values(self, store: Store) -> None:
        """What is created loads back equal: nested, unicode and every JSON type."""
        data = {
            "user": "zoë ✓",
            "n": 42,
            "pi": 3.5,
            "ok": True,
            "none": None,
            "cart": [1, {"sku": "a'b\"c;--", "qty": 2}],
            "nested": {"deep": {"list": [[], {}]}},
        }
        key = self._create(store, data)
        record = self._load(store, key)
        assert record.data == data
        assert record.meta == {"created": NOW}
        assert record.expires == pytest.approx(NOW + DAY)

    def test_expired_record_loads_none(self, store: Store) -> None:
        """Expiry is decided with the caller's clock: a record past its expiry is dead."""
        key = self._create(store, {"a": 1}, expires=NOW + 10)
        assert store.load(key, NOW + 9) is not None
        assert store.load(key, NOW + 10) is None
        assert store.load(key, NOW + 11) is None

    def test_create_with_replaces_deletes_the_old_record(self, store: Store) -> None:
        """create(replaces=old) moves a session: the new key holds it and the old one is gone."""
        old = self._create(store, {"user": "ann"})
        new = new_key()
        data = {"user": "ann", "role": "admin"}
        store.create(new, data, {"created": NOW}, NOW + DAY, NOW, replaces=old)
        assert store.load(old, NOW) is None
        assert self._load(store, new).data == {"user": "ann", "role": "admin"}

    def test_create_replacing_a_session_that_ended_writes_nothing(self, store: Store) -> None:
        """create(replaces=old) returns False and writes nothing once old is deleted or expired.

        That is how a request that loaded a session before another request logged it out cannot
        bring it back to life under a new id with regenerate().
        """
        deleted = self._create(store, {"user": "ann"})
        store.delete(deleted)
        expired = self._create(store, {"user": "ann"}, expires=NOW + 10)
        for old, now in ((deleted, NOW), (expired, NOW + 10), (new_key(), NOW)):
            new = new_key()
            assert (
                store.create(new, {"user": "ann"}, {"created": NOW}, NOW + DAY, now, old) is False
            )
            assert store.load(new, now) is None
            assert store.load(old, now) is None

    def test_create_without_replaces_reports_success(self, store: Store) -> None:
        """create() returns True when it wrote the record (None, from older stores, counts too)."""
        key = new_key()
        assert store.create(key, {"a": 1}, {"created": NOW}, NOW + DAY, NOW) is not False
        assert self._load(store, key).data == {"a": 1}

    def test_concurrent_moves_of_one_session_leave_one_live(self, store: Store) -> None:
        """Eight threads regenerating one session at once: one move lands, one session lives."""
        old = self._create(store, {"user": "ann"})
        keys = [new_key() for _ in range(8)]
        barrier = threading.Barrier(len(keys))
        results: dict[str, Any] = {}

        def move(key: str) -> None:
            barrier.wait()
            try:
                results[key] = store.create(
                    key, {"user": "ann"}, {"created": NOW}, NOW + DAY, NOW, old
                )
            except BaseException as exc:  # pragma: no cover - reported below
                results[key] = exc

        threads = [threading.Thread(target=move, args=(key,)) for key in keys]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        assert all(result in (True, False, None) for result in results.values()), results
        assert sum(result is not False for result in results.values()) == 1, results
        assert [key for key in keys if store.load(key, NOW) is not None] == [
            key for key in keys if results[key] is not False
        ]
        assert store.load(old, NOW) is None

    # Values and numbers ---------------------------------------------------------------------

    def test_edge_numbers_round_trip_with_their_type(self, store: Store) -> None:
        """Floats come back floats and ints exact ints, at the edges too, created or saved."""
        data: dict[str, Any] = dict(EDGE_NUMBERS)
        data["nested"] = [{"f": value} for value in EDGE_NUMBERS.values()]
        key = self._create(store, data)
        assert exact(self._load(store, key).data) == exact(data)
        other = self._create(store, {})
        assert store.save(other, Changes(updates=data), NOW)
        assert exact(self._load(store, other).data) == exact(data)

    def test_increments_past_64_bits_are_exact(self, store: Store) -> None:
        """An increment past 2**63 - 1 (or below -2**63) gives the exact int, as Python adds."""
        key = self._create(store, {"n": 2**63 - 1, "m": -(2**63), "f": 2.5, "big": 10**30})
        increments = {"n": 1, "m": -1, "f": 2**64, "big": -(10**30) - 1, "new": 2**100}
        assert store.save(key, Changes(increments=increments), NOW)
        expected = {"n": 2**63, "m": -(2**63) - 1, "f": 2.5 + 2**64, "big": -1, "new": 2**100}
        assert exact(self._load(store, key).data) == exact(expected)

    def test_float_increments_add_as_python_does(self, store: Store) -> None:
        """A float increment is IEEE 754 addition: 0.1 + 0.2 is 0.30000000000000004, not 0.3."""
        key = self._create(store, {"f": 0.1, "i": 1, "z": -0.0})
        increments = {"f": 0.2, "i": 0.1, "z": -0.0, "new": 0.5}
        assert store.save(key, Changes(increments=increments), NOW)
        expected = {"f": 0.1 + 0.2, "i": 1.1, "z": -0.0, "new": 0.5}
        assert exact(self._load(store, key).data) == exact(expected)

    def test_increment_json_cannot_hold_leaves_the_value(self, store: Store) -> None:
        """An increment that would overflow a float leaves that key as it was; the rest lands."""
        top = sys.float_info.max
        key = self._create(store, {"f": top, "i": 10**400, "n": 1})
        increments = {"f": top, "i": 1.0, "n": 1}
        assert store.save(key, Changes(increments=increments), NOW)
        assert exact(self._load(store, key).data) == exact({"f": top, "i": 10**400, "n": 2})

    def test_merge_gives_the_reference_result(self, store: Store) -> None:
        """On generated records and changes, the store's own merge gives Changes.apply_to's result.

        Increments of missing, non-numeric, bool and huge values, removals of missing keys and
        keys both removed and set included. The changes carry no loaded record, so a store that
        updates optimistically must merge.
        """
        pytest.importorskip("hypothesis")
        from hypothesis import HealthCheck, given, settings

        records, changes = _merge_strategies()

        @settings(
            max_examples=MERGE_EXAMPLES,
            deadline=None,
            database=None,
            suppress_health_check=list(HealthCheck),
        )
        @given(data=records, changes=changes)
        def check(data: dict[str, Any], changes: Changes) -> None:
            key = new_key()
            assert store.create(key, data, {"created": NOW}, NOW + DAY, NOW) is not False
            assert store.save(key, changes, NOW) is True
            expected = changes.apply_to(copy.deepcopy(data))
            assert exact(self._load(store, key).data) == exact(expected)
            store.delete(key)

        check()

    # Saving ------------------------------------------------------------------------------

    def test_save_applies_updates_and_removals(self, store: Store) -> None:
        """A save sets the changed keys, removes the removed ones, and keeps the rest."""
        key = self._create(store, {"a": 1, "b": 2, "c": 3})
        loaded = self._load(store, key)
        changes = Changes(
            updates={"a": 10, "d": [4]},
            removals=frozenset({"b"}),
            loaded=loaded,
            result={"a": 10, "c": 3, "d": [4]},
        )
        assert store.save(key, changes, NOW) is True
        assert self._load(store, key).data == {"a": 10, "c": 3, "d": [4]}

    def test_save_never_recreates_a_deleted_record(self, store: Store) -> None:
        """A slow request that saves after logout does not bring the session back."""
        key = self._create(store, {"a": 1})
        loaded = self._load(store, key)
        store.delete(key)
        changes = Changes(updates={"b": 2}, loaded=loaded, result={"a": 1, "b": 2})
        assert store.save(key, changes, NOW) is False
        assert store.load(key, NOW) is None

    def test_save_never_revives_an_expired_record(self, store: Store) -> None:
        """Saving to a record that expired in the meantime fails and leaves it dead."""
        key = self._create(store, {"a": 1}, expires=NOW + 10)
        loaded = self._load(store, key)
        changes = Changes(
            updates={"b": 2}, expires=NOW + 1000, loaded=loaded, result={"a": 1, "b": 2}
        )
        assert store.save(key, changes, NOW + 20) is False
        assert store.load(key, NOW + 20) is None

    def test_save_to_unknown_key_creates_nothing(self, store: Store) -> None:
        """An id the store never issued stays unknown, whatever a request tries to save."""
        key = new_key()
        assert store.save(key, Changes(updates={"x": 1}, result={"x": 1}), NOW) is False
        assert store.load(key, NOW) is None

    def test_overlapping_saves_of_different_keys_both_land(self, store: Store) -> None:
        """Two requests that loaded the same version and changed different keys both persist."""
        key = self._create(store, {"a": 0, "b": 0})
        first = self._load(store, key)
        second = self._load(store, key)
        assert store.save(
            key, Changes(updates={"a": 1}, loaded=first, result={"a": 1, "b": 0}), NOW
        )
        assert store.save(
            key, Changes(updates={"b": 2}, loaded=second, result={"a": 0, "b": 2}), NOW
        )
        assert self._load(store, key).data == {"a": 1, "b": 2}

    def test_removal_is_not_undone_by_an_overlapping_save(self, store: Store) -> None:
        """A deletes k while B sets j: k stays absent and j is present (SECURITY T45)."""
        key = self._create(store, {"k": 1})
        first = self._load(store, key)
        second = self._load(store, key)
        assert store.save(key, Changes(removals=frozenset({"k"}), loaded=first, result={}), NOW)
        assert store.save(
            key, Changes(updates={"j": 2}, loaded=second, result={"k": 1, "j": 2}), NOW
        )
        assert self._load(store, key).data == {"j": 2}

    def test_overlapping_increments_all_count(self, store: Store) -> None:
        """Increments of one key from requests that loaded the same version add up."""
        key = self._create(store, {"n": 5, "s": "text"})
        loads = [self._load(store, key) for _ in range(3)]
        for loaded in loads:
            changes = Changes(
                increments={"n": 2, "m": 1}, loaded=loaded, result={"n": 7, "m": 1, "s": "text"}
            )
            assert store.save(key, changes, NOW)
        loaded = self._load(store, key)
        data = {"n": 11, "m": 3, "s": 1}
        assert store.save(key, Changes(increments={"s": 1}, loaded=loaded, result=data), NOW)
        assert self._load(store, key).data == {"n": 11, "m": 3, "s": 1}

    def test_touch_only_save_moves_expiry_and_keeps_data(self, store: Store) -> None:
        """A save with no key changes only refreshes the expiry."""
        key = self._create(store, {"a": 1}, expires=NOW + 100)
        loaded = self._load(store, key)
        assert store.save(key, Changes(expires=NOW + 500, loaded=loaded, result={"a": 1}), NOW + 50)
        record = self._load(store, key, NOW + 200)
        assert record.data == {"a": 1}
        assert record.expires == pytest.approx(NOW + 500)

    def test_save_replaces_meta_when_given(self, store: Store) -> None:
        """Session metadata is replaced when a save carries it and kept otherwise."""
        key = self._create(store, {"a": 1})
        loaded = self._load(store, key)
        meta = {"created": NOW, "lifetime": 60}
        assert store.save(
            key, Changes(meta=meta, expires=NOW + 60, loaded=loaded, result={"a": 1}), NOW
        )
        assert self._load(store, key).meta == meta
        loaded = self._load(store, key)
        assert store.save(key, Changes(updates={"a": 2}, loaded=loaded, result={"a": 2}), NOW)
        assert self._load(store, key).meta == meta

    def test_saves_from_many_threads_all_land(self, store: Store) -> None:
        """Eight threads saving their own keys of one session lose nothing."""
        key = self._create(store, {})
        errors: list[BaseException] = []

        def worker(name: str) -> None:
            try:
                for i in range(20):
                    loaded = store.load(key, NOW)
                    assert loaded is not None
                    data = dict(loaded.data)
                    data[name] = i
                    assert store.save(
                        key, Changes(updates={name: i}, loaded=loaded, result=data), NOW
                    )
            except BaseException as exc:  # pragma: no cover - reported below
                errors.append(exc)

        threads = [threading.Thread(target=worker, args=(f"t{n}",)) for n in range(8)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        assert errors == []
        assert self._load(store, key).data == {f"t{n}": 19 for n in range(8)}

    # Deleting, purging, stats ---------------------------------------------------------------

    def test_delete_removes_and_tolerates_missing(self, store: Store) -> None:
        """delete() removes a record; deleting a missing one is not an error."""
        key = self._create(store, {"a": 1})
        store.delete(key)
        assert store.load(key, NOW) is None
        store.delete(key)
        store.delete(new_key())

    def test_purge_deletes_only_expired_records(self, store: Store) -> None:
        """purge(now) deletes what expired and reports how many; live records stay."""
        dead = [self._create(store, {"i": i}, expires=NOW + 5) for i in range(3)]
        live = [self._create(store, {"i": i}, expires=NOW + DAY) for i in range(2)]
        assert store.purge(NOW + 10) >= 3
        for key in dead:
            assert store.load(key, NOW) is None
        for key in live:
            assert store.load(key, NOW + 10) is not None

    def test_stats_counts_live_sessions(self, store: Store) -> None:
        """stats() counts live sessions and their size; expired ones do not count."""
        try:
            before = store.stats(NOW)
        except NotImplementedError:
            pytest.skip(f"{type(store).__name__} does not report stats")
        self._create(store, {"blob": "x" * 100})
        self._create(store, {"gone": 1}, expires=NOW - 1)
        after = store.stats(NOW)
        assert after.sessions == before.sessions + 1
        assert after.size_bytes >= before.size_bytes + 100

    # The user index ---------------------------------------------------------------------------

    def _user(self, store: Store) -> str:
        """A user id of this test alone (a store may outlive one test); skip without an index."""
        try:
            store.user_sessions("probe-" + secrets.token_hex(4), NOW)
        except NoUserIndexError:
            pytest.skip(f"{type(store).__name__} keeps no user index")
        return "user-" + secrets.token_hex(6)

    def _bound(
        self, store: Store, user: str | None, data: Any = None, expires: float = NOW + DAY
    ) -> str:
        key = new_key()
        meta: dict[str, Any] = {"created": NOW}
        if user is not None:
            meta[USER] = user
        assert store.create(key, data or {"n": 1}, meta, expires, NOW) is not False
        return key

    def _listed(self, store: Store, user: str, now: float = NOW) -> set[str]:
        found = store.user_sessions(user, now)
        keys = [key for key, _ in found]
        assert len(keys) == len(set(keys)), f"a key listed twice: {keys}"
        for key, record in found:
            assert record.meta.get(USER) == user, f"{key} listed under {user!r}: {record.meta}"
        return set(keys)

    def test_user_sessions_lists_the_users_live_sessions(self, store: Store) -> None:
        """user_sessions lists each session created bound to the user, with its record."""
        ann, bob = self._user(store), self._user(store)
        one = self._bound(store, ann, {"a": 1})
        two = self._bound(store, ann, {"a": 2})
        self._bound(store, bob)
        self._bound(store, None)
        assert self._listed(store, ann) == {one, two}
        records = dict(store.user_sessions(ann, NOW))
        assert records[one].data == {"a": 1} and records[two].data == {"a": 2}
        assert records[one].expires == NOW + DAY
        assert records[one].meta["created"] == NOW
        assert store.user_sessions(self._user(store), NOW) == []

    def test_regenerate_moves_the_key_in_the_index(self, store: Store) -> None:
        """create(replaces=old) of a bound session: the new key is listed, the old one not."""
        ann = self._user(store)
        old = self._bound(store, ann)
        new = new_key()
        assert store.create(new, {"n": 1}, {"created": NOW, USER: ann}, NOW + DAY, NOW, old)
        assert self._listed(store, ann) == {new}

    def test_regenerate_that_binds_indexes_and_drops_the_old_key(self, store: Store) -> None:
        """Login: an anonymous session moved to a new key bound to the user is indexed."""
        ann, bob = self._user(store), self._user(store)
        old = self._bound(store, bob)
        new = new_key()
        assert store.create(new, {"n": 1}, {"created": NOW, USER: ann}, NOW + DAY, NOW, old)
        assert self._listed(store, ann) == {new}
        assert self._listed(store, bob) == set()

    def test_save_with_meta_moves_the_binding(self, store: Store) -> None:
        """A save whose meta binds, changes or removes the user moves the key in the index."""
        ann, bob = self._user(store), self._user(store)
        key = self._bound(store, None)
        assert store.save(key, Changes(meta={"created": NOW, USER: ann}), NOW)
        assert self._listed(store, ann) == {key}
        assert store.save(key, Changes(updates={"x": 1}), NOW)  # no meta: binding kept
        assert self._listed(store, ann) == {key}
        assert store.save(key, Changes(meta={"created": NOW, USER: bob}), NOW)
        assert self._listed(store, ann) == set() and self._listed(store, bob) == {key}
        assert store.save(key, Changes(meta={"created": NOW}), NOW)
        assert self._listed(store, bob) == set()
        assert self._load(store, key).data == {"n": 1, "x": 1}

    def test_delete_drops_the_key_from_the_index(self, store: Store) -> None:
        """destroy(): a deleted session is no longer listed."""
        ann = self._user(store)
        gone, kept = self._bound(store, ann), self._bound(store, ann)
        store.delete(gone)
        assert self._listed(store, ann) == {kept}

    def test_expired_sessions_are_not_listed_and_purge_drops_them(self, store: Store) -> None:
        """An expired session is never listed; purge() leaves the index without it."""
        ann = self._user(store)
        short = self._bound(store, ann, expires=NOW + 5)
        long = self._bound(store, ann)
        assert self._listed(store, ann, NOW) == {short, long}
        assert self._listed(store, ann, NOW + 10) == {long}
        assert store.purge(NOW + 10) >= 1
        assert self._listed(store, ann, NOW) == {long}
        assert store.revoke_user(ann, NOW, keep=long) == 0

    def test_revoke_user_ends_every_session_but_keep(self, store: Store) -> None:
        """revoke_user deletes the user's sessions but *keep*, and counts them; others stay."""
        ann, bob = self._user(store), self._user(store)
        ends = [self._bound(store, ann) for _ in range(3)]
        keep = self._bound(store, ann)
        other = self._bound(store, bob)
        assert store.revoke_user(ann, NOW, keep=keep) == 3
        for key in ends:
            assert store.load(key, NOW) is None
        assert self._listed(store, ann) == {keep}
        assert store.load(other, NOW) is not None
        assert store.revoke_user(ann, NOW) == 1
        assert store.load(keep, NOW) is None and self._listed(store, ann) == set()
        assert store.revoke_user(ann, NOW) == 0

    def test_a_revoked_session_is_never_brought_back(self, store: Store) -> None:
        """After a revocation, a save or a regenerate of the session writes nothing."""
        ann = self._user(store)
        saved, moved = self._bound(store, ann), self._bound(store, ann)
        assert store.revoke_user(ann, NOW) == 2
        assert not store.save(saved, Changes(updates={"x": 1}, expires=NOW + DAY), NOW)
        new = new_key()
        assert (
            store.create(new, {"n": 1}, {"created": NOW, USER: ann}, NOW + DAY, NOW, moved) is False
        )
        assert store.load(saved, NOW) is None and store.load(new, NOW) is None
        assert self._listed(store, ann) == set()

    def test_regenerates_racing_a_revocation_leave_no_session_alive(self, store: Store) -> None:
        """Sessions moving to new keys while their user is revoked: none survives the revoke.

        Each move either landed before the revocation (and its new key was revoked) or came
        after it (and found its session gone): no moved session lives on.
        """
        ann = self._user(store)
        chains = [[self._bound(store, ann)] for _ in range(4)]
        barrier = threading.Barrier(len(chains) + 1)
        errors: list[BaseException] = []

        def mover(chain: list[str]) -> None:
            barrier.wait()
            try:
                for _ in range(30):
                    new = new_key()
                    meta = {"created": NOW, USER: ann}
                    if store.create(new, {"n": 1}, meta, NOW + DAY, NOW, chain[-1]) is False:
                        return
                    chain.append(new)
            except BaseException as exc:  # pragma: no cover - reported below
                errors.append(exc)

        threads = [threading.Thread(target=mover, args=(chain,)) for chain in chains]
        for thread in threads:
            thread.start()
        barrier.wait()
        ended = store.revoke_user(ann, NOW)
        for thread in threads:
            thread.join()
        assert errors == []
        alive = [key for chain in chains for key in chain if store.load(key, NOW) is not None]
        assert alive == [], f"{len(alive)} sessions outlived the revocation"
        assert self._listed(store, ann) == set()
        assert 0 <= ended <= len(chains)

    def test_index_matches_the_records_after_concurrent_churn(self, store: Store) -> None:
        """Logins, logouts, regenerates, rebinds, revokes and expiry from threads at once.

        Afterwards every live record bound to the user is listed, and nothing else is.
        """
        ann, bob = self._user(store), self._user(store)
        every: list[str] = []
        lock = threading.Lock()
        errors: list[BaseException] = []

        def worker(seed: int) -> None:
            rng = random.Random(seed)
            mine: list[str] = []
            try:
                for _ in range(40):
                    op = rng.random()
                    now = NOW
                    if op < 0.3 or not mine:  # login (some short-lived: expiry)
                        expires = NOW + (5 if rng.random() < 0.2 else DAY)
                        key = self._bound(store, rng.choice([ann, bob, None]), expires=expires)
                        mine.append(key)
                    elif op < 0.5:  # regenerate
                        new = new_key()
                        user = rng.choice([ann, None])
                        meta = {"created": NOW, **({USER: user} if user else {})}
                        if store.create(new, {"n": 2}, meta, NOW + DAY, now, mine.pop()):
                            mine.append(new)
                    elif op < 0.7:  # bind, rebind or unbind on save
                        user = rng.choice([ann, bob, None])
                        meta = {"created": NOW, **({USER: user} if user else {})}
                        store.save(rng.choice(mine), Changes(meta=meta), now)
                    elif op < 0.8:  # logout
                        store.delete(mine.pop(rng.randrange(len(mine))))
                    elif op < 0.9:  # revoke the others of one session
                        store.revoke_user(ann, now, keep=rng.choice(mine))
                    else:
                        store.save(rng.choice(mine), Changes(updates={"x": seed}), now)
                    with lock:
                        every.extend(mine)
            except BaseException as exc:  # pragma: no cover - reported below
                errors.append(exc)

        threads = [threading.Thread(target=worker, args=(seed,)) for seed in range(6)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        assert errors == []
        later = NOW + 10  # the short-lived ones have expired
        for user in (ann, bob):
            truth = set()
            for key in set(every):
                record = store.load(key, later)
                if record is not None and record.meta.get(USER) == user:
                    truth.add(key)
            assert self._listed(store, user, later) == truth, user
        store.purge(later)
        assert self._listed(store, ann, later) == {
            key for key in set(every) if (r := store.load(key, later)) and r.meta.get(USER) == ann
        }

    def test_store_never_holds_a_raw_id(self, store: Store) -> None:
        """Stores only ever see hashed keys: a raw id is nowhere in what they report."""
        session_id = new_id()
        key = hash_id(session_id)
        store.create(key, {"marker": secrets.token_hex(4)}, {"created": NOW}, NOW + DAY, NOW)
        assert session_id not in repr(self._load(store, key))
        assert store.load(hash_id(session_id + "x"), NOW) is None


# The client-side store contract ----------------------------------------------------------


class ClientSideStoreContract:
    """Tests every client-side store (one that seals the session into the cookie) must pass.

    Subclasses provide a ``new_store`` fixture: a callable that returns a fresh store that has
    no keys yet (the core gives it its ``secret_keys`` with ``use_keys``)::

        class TestMyCookieStore(ClientSideStoreContract):
            @pytest.fixture
            def new_store(self):
                return MyCookieStore
    """

    KEY = b"client-side contract key"
    OLD_KEY = b"client-side contract old key"

    @pytest.fixture
    def new_store(self) -> Callable[[], ClientSideStore]:  # pragma: no cover - overridden
        raise NotImplementedError("define a 'new_store' fixture that returns a store factory")

    def _keyed(self, new_store: Callable[[], ClientSideStore], *keys: bytes) -> ClientSideStore:
        store = new_store()
        store.use_keys(list(keys or (self.KEY,)))
        return store

    def test_seal_then_unseal_round_trips_the_session(
        self, new_store: Callable[[], ClientSideStore]
    ) -> None:
        """What is sealed opens to the same id, data, bookkeeping and expiry."""
        store = self._keyed(new_store)
        session_id = new_id()
        data = {"user": "zoë ✓", "n": 42, "pi": 3.5, "ok": True, "none": None, "cart": [1, {}]}
        opened = store.unseal(store.seal(session_id, data, {"created": NOW}, NOW + DAY), NOW)
        assert opened is not None
        assert opened[0] == session_id
        assert opened[1].data == data
        assert opened[1].meta == {"created": NOW}
        assert opened[1].expires == pytest.approx(NOW + DAY)

    def test_sealed_text_is_a_plain_cookie_value(
        self, new_store: Callable[[], ClientSideStore]
    ) -> None:
        """A sealed session is url-safe text, so it goes into a cookie with no quoting."""
        store = self._keyed(new_store)
        value = store.seal(new_id(), {"k": 'v; x="y"'}, {}, NOW + DAY)
        assert value and all(c.isascii() and (c.isalnum() or c in "-_") for c in value)

    def test_sealed_text_reveals_no_plaintext(
        self, new_store: Callable[[], ClientSideStore]
    ) -> None:
        """Neither the sealed text nor its base64 decoding shows a key or value (T34)."""
        import base64
        import binascii

        store = self._keyed(new_store)
        marker = "marker" + secrets.token_hex(8)
        value = store.seal(new_id(), {marker + "k": marker + "v"}, {}, NOW + DAY)
        assert marker not in value
        try:
            raw = base64.urlsafe_b64decode(value + "=" * (-len(value) % 4))
        except (binascii.Error, ValueError):
            raw = b""
        assert marker.encode() not in raw

    def test_expired_session_opens_to_nothing(
        self, new_store: Callable[[], ClientSideStore]
    ) -> None:
        """The sealed expiry is checked with the caller's clock: a replay past it is dead (T36)."""
        store = self._keyed(new_store)
        value = store.seal(new_id(), {"a": 1}, {}, NOW + 10)
        assert store.unseal(value, NOW + 9) is not None
        assert store.unseal(value, NOW + 10) is None
        assert store.unseal(value, NOW + 11) is None

    def test_any_altered_character_opens_to_nothing(
        self, new_store: Callable[[], ClientSideStore]
    ) -> None:
        """Changing one character anywhere in the sealed text makes it worthless (T35)."""
        store = self._keyed(new_store)
        value = store.seal(new_id(), {"role": "user"}, {}, NOW + DAY)
        for index in {0, 1, len(value) // 2, len(value) - 2, len(value) - 1}:
            swapped = "A" if value[index] != "A" else "B"
            altered = value[:index] + swapped + value[index + 1 :]
            assert store.unseal(altered, NOW) is None, index

    def test_other_keys_open_nothing(self, new_store: Callable[[], ClientSideStore]) -> None:
        """A session sealed with another secret does not open here (T38)."""
        mine = self._keyed(new_store)
        theirs = self._keyed(new_store, b"somebody else's key")
        assert mine.unseal(theirs.seal(new_id(), {"a": 1}, {}, NOW + DAY), NOW) is None

    def test_keys_rotate(self, new_store: Callable[[], ClientSideStore]) -> None:
        """The newest key seals, every key opens: an old cookie survives a rotation (T28)."""
        old = self._keyed(new_store, self.OLD_KEY)
        rotated = self._keyed(new_store, self.KEY, self.OLD_KEY)
        newest_only = self._keyed(new_store, self.KEY)
        from_before = old.seal(new_id(), {"a": 1}, {}, NOW + DAY)
        assert rotated.unseal(from_before, NOW) is not None
        assert newest_only.unseal(from_before, NOW) is None
        assert newest_only.unseal(rotated.seal(new_id(), {"a": 1}, {}, NOW + DAY), NOW)

    def test_garbage_opens_to_nothing_and_never_raises(
        self, new_store: Callable[[], ClientSideStore]
    ) -> None:
        """Anything a client may send opens to None, without an exception (T27, T30)."""
        store = self._keyed(new_store)
        value = store.seal(new_id(), {"a": 1}, {}, NOW + DAY)
        for garbage in (
            "",
            "A",
            "!!!",
            "..",
            "é" * 60,
            "\x00" * 60,
            "A" * 8192,
            "A" * 100_000,
            value[:-1],
            value[:20],
            value + "A",
            value + value,
            new_id(),
        ):
            assert store.unseal(garbage, NOW) is None

    def test_sealing_needs_keys(self, new_store: Callable[[], ClientSideStore]) -> None:
        """No keys is a configuration error that says what to pass, never an unsealed cookie."""
        from .errors import ConfigurationError

        with pytest.raises(ConfigurationError, match="secret_keys"):
            new_store().use_keys([])

    def test_max_data_size_is_what_fits(self, new_store: Callable[[], ClientSideStore]) -> None:
        """Data of max_data_size(n) bytes, with full bookkeeping, seals into n characters."""
        store = self._keyed(new_store)
        for max_chars in (1000, 3900):
            budget = store.max_data_size(max_chars)
            if budget is None:
                pytest.skip(f"{type(store).__name__} does not report max_data_size")
            data = {"k": "é" * ((budget - len('{"k":""}')) // 2)}
            assert len(store.serializer.dumps(data).encode("utf-8")) <= budget
            meta = {"created": NOW + 0.123456789, "ends": NOW + 10 * DAY + 0.987654321}
            assert len(store.seal(new_id(), data, meta, NOW + 0.987654321)) <= max_chars
