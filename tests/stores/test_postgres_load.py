"""PostgresStore loads with a plain, read-only SELECT; only a dead row costs the DELETE."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.services import drop_postgres_table, postgres_table
from tests.stores.test_postgres import Trace
from wsgisession import PostgresStore
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
