"""PostgresStore's connection errors: the server's own reason and what to do, as soon as known."""

from __future__ import annotations

import logging
import secrets
import threading
from collections.abc import Iterator

import pytest

from tests.support.servers import drop_postgres_table, free_port, postgres_table
from wsgisession import ConfigurationError, PostgresStore, StoreUnavailableError
from wsgisession.testing import NOW, new_key

psycopg = pytest.importorskip("psycopg")


@pytest.fixture
def table(postgres_dsn: str) -> Iterator[str]:
    """A table name of this test's own, dropped afterwards."""
    name = postgres_table()
    yield name
    drop_postgres_table(postgres_dsn, name)


def _with(dsn: str, **params: str) -> str:
    """*dsn* with some of its libpq parameters replaced."""
    return str(psycopg.conninfo.make_conninfo(dsn, **params))


def test_missing_database_fails_at_construction_with_the_servers_message(
    postgres_dsn: str,
) -> None:
    """A database that does not exist stops the start, in the server's words, naming the fix."""
    name = f"wsgisession_missing_{secrets.token_hex(4)}"
    with pytest.raises(ConfigurationError) as info:
        PostgresStore(_with(postgres_dsn, dbname=name))
    message = str(info.value)
    assert f'FATAL: database "{name}" does not exist' in message
    assert "fix the database name in the DSN" in message and "createdb" in message
    assert "PoolTimeout" not in message


def test_unknown_user_fails_at_construction_with_the_servers_message(postgres_dsn: str) -> None:
    """A role the server does not know stops the start and says how to make it."""
    name = f"wsgisession_nobody_{secrets.token_hex(4)}"
    with pytest.raises(ConfigurationError) as info:
        PostgresStore(_with(postgres_dsn, user=name))
    assert f'role "{name}" does not exist' in str(info.value)
    assert "CREATE ROLE" in str(info.value)


def test_sslmode_the_server_cannot_meet_fails_at_construction(postgres_dsn: str) -> None:
    """An sslmode the server cannot satisfy stops the start and names the sslmode values."""
    dsn = _with(postgres_dsn, sslmode="verify-full", sslrootcert="/nonexistent/root.crt")
    with pytest.raises(ConfigurationError, match="set sslmode in the DSN") as info:
        PostgresStore(dsn)
    assert "verify-full" in str(info.value)
    assert "SSL" in str(info.value) or "root.crt" in str(info.value)


def test_misspelt_sslmode_fails_at_construction() -> None:
    """A value libpq does not know for sslmode is refused before any server is asked."""
    with pytest.raises(ConfigurationError, match='invalid sslmode value: "requir"'):
        PostgresStore("postgresql://postgres@127.0.0.1/test?sslmode=requir")


def test_unknown_host_fails_at_construction() -> None:
    """A host name that does not resolve stops the start and says to check it."""
    with pytest.raises(ConfigurationError, match="check the host name in the DSN") as info:
        PostgresStore("postgresql://postgres@db.wsgisession.invalid/test")
    assert "db.wsgisession.invalid" in str(info.value)


def test_server_down_at_construction_is_logged_and_requests_fail_with_its_reason(
    caplog: pytest.LogCaptureFixture,
) -> None:
    """A server that is down is not a mistake in the DSN: a warning, then prompt request errors."""
    dsn = f"postgresql://postgres@127.0.0.1:{free_port()}/test"
    with caplog.at_level(logging.WARNING, logger="wsgisession.store"):
        store = PostgresStore(dsn, timeout=30.0)
    with store:
        [record] = [r for r in caplog.records if r.name == "wsgisession.store"]
        assert "cannot be reached now (Connection refused)" in record.getMessage()
        assert "on_store_error" in record.getMessage()
        with pytest.raises(StoreUnavailableError) as info:
            store.load(new_key(), NOW)
    # Not the pool's timeout of 30 s: the refused attempt ends the wait, in libpq's words.
    message = str(info.value)
    assert "cannot be reached: Connection refused; check that the server is running" in message
    assert "timeout=30.0s" not in message and "PoolTimeout" not in message


def test_role_dropped_while_running_gives_the_servers_message_at_once(
    postgres_dsn: str, table: str
) -> None:
    """A refusal after the start (the store's role was dropped) is told in the server's words."""
    role = f"wsgisession_gone_{secrets.token_hex(4)}"
    with psycopg.connect(postgres_dsn, autocommit=True) as admin:
        admin.execute(f"CREATE ROLE {role} LOGIN")
        try:
            store = PostgresStore(_with(postgres_dsn, user=role), table, timeout=30.0)
        finally:
            admin.execute(f"DROP ROLE {role}")
    with store, pytest.raises(StoreUnavailableError) as info:
        store.load(new_key(), NOW)
    message = str(info.value)
    assert f'FATAL: role "{role}" does not exist; fix the user name in the DSN' in message
    assert "timeout=30.0s" not in message


def test_pool_too_small_for_the_waiting_requests_says_so(postgres_dsn: str, table: str) -> None:
    """Requests that wait for busy connections past the timeout are told to raise pool_size."""
    with PostgresStore(postgres_dsn, table, pool_size=1, timeout=1.0) as store:
        store.create_schema()
        errors: list[BaseException] = []

        def load() -> None:
            try:
                store.load(new_key(), NOW)
            except StoreUnavailableError as exc:
                errors.append(exc)

        with psycopg.connect(postgres_dsn, autocommit=True) as locker, locker.transaction():
            # Each load holds the one connection for lock_timeout (0.5 s), the others wait.
            locker.execute(f"LOCK TABLE {table} IN ACCESS EXCLUSIVE MODE")
            threads = [threading.Thread(target=load) for _ in range(6)]
            for thread in threads:
                thread.start()
            for thread in threads:
                thread.join()
    busy = [str(exc) for exc in errors if "stayed busy" in str(exc)]
    assert busy, [str(exc) for exc in errors]
    assert "all pool_size=1 connections of this process stayed busy for timeout=1.0s" in busy[0]
    assert "raise pool_size" in busy[0]
