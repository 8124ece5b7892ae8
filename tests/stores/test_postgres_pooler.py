"""PostgresStore behind PgBouncer in transaction mode, under locks, and with its store options.

PgBouncer (Debian's package) is started by the tests on a free loopback port in front of the
test PostgreSQL server, in ``pool_mode = transaction``.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest
import webtest
from webob import Request

from tests.stores.test_postgres import Trace
from tests.support.servers import (
    PgBouncer,
    drop_postgres_table,
    postgres_table,
    throwaway_pgbouncer,
)
from wsgisession import (
    ConfigurationError,
    PostgresStore,
    SessionMiddleware,
    StoreError,
    store_from_url,
)
from wsgisession.signing import hash_id
from wsgisession.testing import DAY, NOW, StoreContract, new_key

if TYPE_CHECKING:
    from _typeshed.wsgi import StartResponse, WSGIEnvironment

psycopg = pytest.importorskip("psycopg")


@pytest.fixture(scope="module")
def bouncer(postgres_dsn: str) -> Iterator[PgBouncer]:
    """PgBouncer in transaction mode with two server connections, for this module."""
    with throwaway_pgbouncer(postgres_dsn, pool_mode="transaction", pool_size=2) as server:
        yield server


@pytest.fixture
def table(postgres_dsn: str) -> Iterator[str]:
    name = postgres_table()
    yield name
    drop_postgres_table(postgres_dsn, name)


class TestTransactionPoolerContract(StoreContract):
    """The whole contract through PgBouncer in transaction mode, built from its URL."""

    @pytest.fixture
    def store(self, bouncer: PgBouncer, table: str) -> Iterator[PostgresStore]:
        store = store_from_url(f"{bouncer.dsn}?pooler=transaction", table=table)
        assert isinstance(store, PostgresStore)
        with store:
            yield store


def app(environ: WSGIEnvironment, start_response: StartResponse) -> Iterable[bytes]:
    """/inc increments a counter; /get shows it."""
    session = environ["wsgisession"]
    if Request(environ).path == "/inc":
        session["n"] = session.get("n", 0) + 1
    body = str(session.get("n", 0))
    start_response("200 OK", [("Content-Type", "text/plain")])
    return [body.encode()]


def _hammer(store: PostgresStore, threads: int, requests: int) -> list[int]:
    """Each thread its own session, incrementing it *requests* times; return every status."""
    statuses: list[int] = []
    lock = threading.Lock()

    def run() -> None:
        client = webtest.TestApp(SessionMiddleware(app, store=store))
        for _ in range(requests):
            status = client.get("/inc", expect_errors=True).status_int
            with lock:
                statuses.append(status)

    workers = [threading.Thread(target=run) for _ in range(threads)]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join(60)
    return statuses


def test_transaction_pooler_serves_every_request(bouncer: PgBouncer, table: str) -> None:
    """?pooler=transaction: 4 threads of 50 requests through PgBouncer, all 200 (was 75 % 503)."""
    store = store_from_url(f"{bouncer.dsn}?pooler=transaction", table=table, pool_size=4)
    assert isinstance(store, PostgresStore)
    with store:
        assert store.prepare_threshold is None
        statuses = _hammer(store, threads=4, requests=50)
    assert statuses == [200] * 200


def test_prepare_threshold_url_parameter_reaches_psycopg(bouncer: PgBouncer, table: str) -> None:
    """?prepare_threshold=none alone also keeps psycopg from preparing behind the pooler."""
    store = store_from_url(f"{bouncer.dsn}?prepare_threshold=none", table=table, pool_size=4)
    assert isinstance(store, PostgresStore)
    with store:
        assert store.prepare_threshold is None and store.pooler is None
        assert _hammer(store, threads=4, requests=25) == [200] * 100


def test_prepared_statements_behind_a_pooler_get_an_error_naming_it(
    bouncer: PgBouncer, table: str
) -> None:
    """Without the option, the error psycopg's prepared statements meet names the pooler."""
    keys = [new_key(), new_key()]
    stores = [PostgresStore(bouncer.dsn, table, pool_size=1) for _ in keys]
    try:
        for store, key in zip(stores, keys, strict=True):
            store.create(key, {"n": 1}, {}, NOW + DAY, NOW)
        with pytest.raises(StoreError, match="pooler='transaction'") as info:
            for _ in range(20):  # psycopg prepares a statement on its 6th run
                for store, key in zip(stores, keys, strict=True):
                    store.load(key, NOW)
        assert "PgBouncer pool_mode = transaction" in str(info.value)
        assert "could not be reached" not in str(info.value)
    finally:
        for store in stores:
            store.close()


def test_options_startup_parameter_refused_by_the_pooler_names_it(
    bouncer: PgBouncer, table: str
) -> None:
    """The old tip, options=-c synchronous_commit=off, through PgBouncer: refused when built."""
    dsn = f"{bouncer.dsn}?options=-c%20synchronous_commit%3Doff"
    with pytest.raises(ConfigurationError, match=r"PgBouncer\) accepts no startup") as info:
        PostgresStore(dsn, table, timeout=1.0)
    assert "unsupported startup parameter: options" in str(info.value)
    assert "synchronous_commit=False" in str(info.value)


class Settings:
    """A configure= callback that reads what the store's statements run with."""

    def __init__(self) -> None:
        self.seen: list[tuple[str, ...]] = []

    def __call__(self, conn: Any) -> None:
        names = ("synchronous_commit", "statement_timeout", "lock_timeout")
        query = "SELECT " + ", ".join(f"current_setting('{name}')" for name in names)
        self.seen.append(tuple(conn.execute(query).fetchone()))


@pytest.mark.parametrize("through", ["direct", "pgbouncer"])
def test_timeouts_and_synchronous_commit_are_set_for_the_store(
    through: str, postgres_dsn: str, table: str, request: pytest.FixtureRequest
) -> None:
    """timeout= bounds statements and lock waits; synchronous_commit=False turns the flush off."""
    settings = Settings()
    if through == "direct":
        dsn = f"{postgres_dsn}?synchronous_commit=off"
    else:
        dsn = f"{request.getfixturevalue('bouncer').dsn}?pooler=transaction&synchronous_commit=off"
    with PostgresStore(dsn, table, timeout=1.5, configure=settings) as store:
        store.create(new_key(), {"a": 1}, {}, NOW + DAY, NOW)
        assert store.synchronous_commit is False
    assert settings.seen and set(settings.seen) == {("off", "1500ms", "750ms")}


def test_transaction_mode_keeps_one_round_trip(
    bouncer: PgBouncer, table: str, tmp_path: Path
) -> None:
    """Behind the pooler the settings ride in the same round trip as each statement."""
    trace = Trace(tmp_path / "libpq.trace")
    dsn = f"{bouncer.dsn}?pooler=transaction"
    with PostgresStore(dsn, table, pool_size=1, configure=trace.configure) as store:
        key = new_key()
        store.create(key, {"a": 1}, {}, NOW + DAY, NOW)
        assert trace.count(lambda: store.load(key, NOW)) == (2, 1)
        assert trace.count(lambda: store.create(new_key(), {}, {}, NOW + DAY, NOW)) == (2, 1)


@pytest.mark.parametrize("through", ["direct", "pgbouncer"])
def test_a_locked_session_is_a_quick_503_and_spares_the_pool(
    through: str, postgres_dsn: str, table: str, request: pytest.FixtureRequest
) -> None:
    """A row locked for 10 s: its saves are 503s within the timeout, other sessions stay 200."""
    dsn = postgres_dsn
    if through == "pgbouncer":
        dsn = f"{request.getfixturevalue('bouncer').dsn}?pooler=transaction"
    with PostgresStore(dsn, table, timeout=1.0, pool_size=2) as store:
        locked = webtest.TestApp(SessionMiddleware(app, store=store))
        locked.get("/inc")
        other = webtest.TestApp(SessionMiddleware(app, store=store))
        other.get("/inc")
        key = hash_id(locked.cookies["wsgisession"])
        holder = psycopg.connect(postgres_dsn)
        holder.execute(f"SELECT 1 FROM {table} WHERE key = %s FOR UPDATE", (key,))
        released = threading.Timer(10.0, holder.rollback)
        released.start()
        results: list[tuple[str, int, float]] = []

        def hit(name: str, client: webtest.TestApp) -> None:
            started = time.monotonic()
            status = client.get("/inc", expect_errors=True).status_int
            results.append((name, status, time.monotonic() - started))

        try:
            threads = [threading.Thread(target=hit, args=("locked", locked)) for _ in range(2)]
            for thread in threads:
                thread.start()
            time.sleep(0.1)  # the two locked saves hold both pooled connections now
            hit("other", other)
            for thread in threads:
                thread.join(15)
        finally:
            released.cancel()
            holder.rollback()
            holder.close()
    print(f"\nlocked row ({through}):", [(n, s, round(e, 2)) for n, s, e in sorted(results)])
    assert sorted(status for name, status, _ in results if name == "locked") == [503, 503]
    assert [status for name, status, _ in results if name == "other"] == [200]
    assert max(elapsed for _, _, elapsed in results) < 5, results


def test_bad_store_options_in_the_url_are_refused(postgres_dsn: str) -> None:
    """pooler and prepare_threshold values that cannot work fail at construction."""
    with pytest.raises(ConfigurationError, match="pooler="):
        PostgresStore("postgresql://h/db?pooler=statement")
    with pytest.raises(ConfigurationError, match="prepare_threshold="):
        PostgresStore("postgresql://h/db?prepare_threshold=soon")
    with pytest.raises(ConfigurationError, match="synchronous_commit="):
        PostgresStore("postgresql://h/db?synchronous_commit=maybe")
    with PostgresStore(f"{postgres_dsn}?prepare_threshold=3", prepare_threshold=0) as store:
        assert store.prepare_threshold == 0  # the keyword wins
