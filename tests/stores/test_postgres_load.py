"""PostgresStore loads with a plain, read-only SELECT (only a dead row costs the DELETE), and a
thread keeps its connection between requests without starving the others."""

from __future__ import annotations

import gc
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.stores.test_postgres import Trace
from tests.support.servers import drop_postgres_table, postgres_table
from wsgisession import PostgresStore
from wsgisession.records import Changes
from wsgisession.testing import DAY, NOW, new_key

psycopg = pytest.importorskip("psycopg")


@pytest.fixture
def table(postgres_dsn: str) -> Iterator[str]:
    """A table name of this test's own, dropped afterwards."""
    name = postgres_table()
    yield name
    drop_postgres_table(postgres_dsn, name)


def test_a_load_is_a_read_only_statement(postgres_dsn: str, table: str) -> None:
    """On a connection that may not write, live and missing sessions still load (a DELETE in
    the load statement would be refused there)."""
    connections: list[Any] = []
    with PostgresStore(postgres_dsn, table, pool_size=1, configure=connections.append) as store:
        key = new_key()
        store.create(key, {"a": 1}, {"c": NOW}, NOW + DAY, NOW)  # the table is made
        (conn,) = connections
        conn.execute("SET default_transaction_read_only = on")
        record = store.load(key, NOW)
        assert record is not None and record.data == {"a": 1}
        assert store.load(new_key(), NOW) is None


def test_only_a_dead_row_costs_a_second_statement(
    postgres_dsn: str, table: str, tmp_path: Path
) -> None:
    """Live and missing rows load in one SELECT; a dead one adds the DELETE that removes it."""
    trace = Trace(tmp_path / "libpq.trace")
    with PostgresStore(postgres_dsn, table, pool_size=1, configure=trace.configure) as store:
        live, dead = new_key(), new_key()
        store.create(live, {"a": 1}, {}, NOW + DAY, NOW)
        store.create(dead, {"a": 1}, {}, NOW + 10, NOW)
        assert trace.count(lambda: store.load(live, NOW)) == (1, 1)
        assert trace.count(lambda: store.load(new_key(), NOW)) == (1, 1)
        assert trace.count(lambda: store.load(dead, NOW + 10)) == (2, 2)
        assert trace.count(lambda: store.load(dead, NOW + 10)) == (1, 1)  # it is gone
        assert store.load(dead, NOW) is None  # even for an earlier clock: deleted, not hidden


def _session(postgres_dsn: str, table: str) -> str:
    """A live session written by another store, so the store under test has pinned nothing."""
    key = new_key()
    with PostgresStore(postgres_dsn, table) as writer:
        writer.create(key, {"n": 0}, {"c": NOW}, NOW + DAY, NOW)
    return key


def _in_threads(count: int, work: Any, together: bool) -> list[BaseException]:
    """Run *work* in *count* threads (all at once, or one after another); return the failures."""
    failures: list[BaseException] = []
    start = threading.Barrier(count if together else 1)

    def run() -> None:
        try:
            start.wait()
            work()
        except BaseException as exc:
            failures.append(exc)

    threads = [threading.Thread(target=run) for _ in range(count)]
    for thread in threads:
        thread.start()
        if not together:
            thread.join()
    for thread in threads:
        thread.join()
    return failures


def test_more_threads_than_connections_all_get_served(postgres_dsn: str, table: str) -> None:
    """Six live threads on a pool of two: every load and save lands, though each thread is
    still alive when the others make their first request (none waits for a kept one)."""
    key = _session(postgres_dsn, table)
    with PostgresStore(postgres_dsn, table, pool_size=2, timeout=1.0) as store:
        first_done = threading.Barrier(6)

        def work() -> None:
            assert store.load(key, NOW) is not None
            first_done.wait(10)  # every thread has made a request and lives on
            for _ in range(20):
                assert store.save(key, Changes(increments={"n": 1}), NOW)

        assert _in_threads(6, work, together=True) == []
        record = store.load(key, NOW)
        assert record is not None and record.data == {"n": 120}


def test_a_finished_thread_gives_its_connection_back(postgres_dsn: str, table: str) -> None:
    """The connection a thread kept returns to the pool when the thread ends: thread after
    thread on a pool of three, none runs out."""
    key = _session(postgres_dsn, table)
    with PostgresStore(postgres_dsn, table, pool_size=3, timeout=1.0) as store:

        def work() -> None:
            assert store.load(key, NOW) is not None
            gc.collect()

        assert _in_threads(6, work, together=False) == []
        assert store.load(key, NOW) is not None
