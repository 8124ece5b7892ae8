"""PostgresStore passes the store contract on a real server, in one statement per load and save."""

from __future__ import annotations

import logging
import os
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.services import drop_postgres_table, postgres_table
from wsgisession import ConfigurationError, PostgresStore
from wsgisession.records import Changes
from wsgisession.signing import hash_id, new_id
from wsgisession.testing import DAY, NOW, StoreContract, new_key

psycopg = pytest.importorskip("psycopg")


class TestPostgresStoreContract(StoreContract):
    @pytest.fixture
    def store(self, postgres_dsn: str) -> Iterator[PostgresStore]:
        table = postgres_table()
        with PostgresStore(postgres_dsn, table) as store:
            yield store
        drop_postgres_table(postgres_dsn, table)


@pytest.fixture
def table(postgres_dsn: str) -> Iterator[str]:
    """A table name of this test's own, dropped afterwards."""
    name = postgres_table()
    yield name
    drop_postgres_table(postgres_dsn, name)


class Trace:
    """libpq's protocol trace of a store's one pooled connection: what really went over the wire."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.conn: Any = None

    def configure(self, conn: Any) -> None:
        self.conn = conn

    def count(self, action: Any) -> tuple[int, int]:
        """Run *action*; return (statements executed, round trips) from the client's messages."""
        fd = os.open(self.path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC)
        try:
            self.conn.pgconn.trace(fd)
            try:
                action()
            finally:
                self.conn.pgconn.untrace()  # flushes libpq's buffer
        finally:
            os.close(fd)
        # Each line: timestamp, F (frontend) or B (backend), length, message and its fields.
        lines = [line.split("\t") for line in self.path.read_text().splitlines()]
        sent = [fields[3].split(" ")[0] for fields in lines if len(fields) > 3 and fields[1] == "F"]
        statements = sum(1 for message in sent if message in ("Execute", "Query"))
        round_trips = sum(1 for message in sent if message in ("Sync", "Query"))
        return statements, round_trips


def test_one_statement_to_load_create_and_save(
    postgres_dsn: str, table: str, tmp_path: Path
) -> None:
    """Load, create (even replacing) and each kind of save are one statement in one round trip."""
    trace = Trace(tmp_path / "libpq.trace")
    with PostgresStore(postgres_dsn, table, pool_size=1, configure=trace.configure) as store:
        old, key = new_key(), new_key()
        store.create(old, {"a": 1}, {"c": NOW}, NOW + DAY, NOW)  # first use makes the table
        replacing = lambda: store.create(key, {"a": 1}, {}, NOW + DAY, NOW, replaces=old)  # noqa: E731
        assert trace.count(replacing) == (1, 1)
        assert trace.count(lambda: store.load(key, NOW)) == (1, 1)
        changes = Changes(
            updates={"b": [1, 2]},
            removals=frozenset({"a"}),
            increments={"n": 3},
            expires=NOW + 2 * DAY,
            meta={"c": NOW, "t": 1},
        )
        assert trace.count(lambda: store.save(key, changes, NOW)) == (1, 1)
        assert trace.count(lambda: store.save(key, Changes(updates={"c": 1}), NOW)) == (1, 1)
        assert trace.count(lambda: store.save(key, Changes(expires=NOW + 3 * DAY), NOW)) == (1, 1)
        record = store.load(key, NOW)
        assert record is not None
        assert record.data == {"b": [1, 2], "n": 3, "c": 1}
        assert record.meta == {"c": NOW, "t": 1}
        assert store.load(old, NOW) is None


def test_float_increments_merge_in_one_locked_transaction(
    postgres_dsn: str, table: str, tmp_path: Path
) -> None:
    """A float increment, which numeric cannot add as Python does, is one short transaction."""
    trace = Trace(tmp_path / "libpq.trace")
    with PostgresStore(postgres_dsn, table, pool_size=1, configure=trace.configure) as store:
        key = new_key()
        store.create(key, {"f": 0.1, "n": 1}, {}, NOW + DAY, NOW)
        changes = Changes(updates={"a": 1}, increments={"f": 0.2})
        # BEGIN, SELECT ... FOR UPDATE, UPDATE, COMMIT
        assert trace.count(lambda: store.save(key, changes, NOW)) == (4, 4)
        # An int onto a stored float: the one UPDATE matches nothing, then the same.
        assert trace.count(lambda: store.save(key, Changes(increments={"f": 1}), NOW)) == (5, 5)
        assert trace.count(lambda: store.save(key, Changes(increments={"n": 1}), NOW)) == (1, 1)
        record = store.load(key, NOW)
        assert record is not None and record.data == {"f": 0.1 + 0.2 + 1, "n": 2, "a": 1}
        assert store.save(new_key(), changes, NOW) is False


def test_schema_has_jsonb_columns_and_an_expiry_index(postgres_dsn: str, table: str) -> None:
    """create_schema() makes key/data/meta/expires/user_id with jsonb data, an index on
    expires and a partial index on user_id."""
    with PostgresStore(postgres_dsn, table) as store:
        store.create_schema()
        store.create_schema()  # idempotent
    with psycopg.connect(postgres_dsn) as conn:
        columns = dict(
            conn.execute(
                "SELECT column_name, data_type FROM information_schema.columns"
                " WHERE table_name = %s",
                (table,),
            ).fetchall()
        )
        indexes = [
            row[0]
            for row in conn.execute(
                "SELECT indexdef FROM pg_indexes WHERE tablename = %s", (table,)
            ).fetchall()
        ]
    expected = {
        "key": "text",
        "data": "jsonb",
        "meta": "jsonb",
        "expires": "double precision",
        "user_id": "text",
    }
    assert columns == expected
    assert any(re.search(r"\(expires\)", index) for index in indexes)
    assert any(
        re.search(r"\(user_id\) WHERE \(user_id IS NOT NULL\)", index) for index in indexes
    ), indexes


def test_a_table_from_before_the_user_index_is_migrated(postgres_dsn: str, table: str) -> None:
    """A table without user_id (made by 0.1) gets the column and its index, rows kept."""
    old_key = new_key()
    with psycopg.connect(postgres_dsn, autocommit=True) as conn:
        conn.execute(
            f"CREATE TABLE {table} (key text PRIMARY KEY, data jsonb NOT NULL,"
            " meta jsonb NOT NULL, expires double precision NOT NULL)"
        )
        conn.execute(
            f"INSERT INTO {table} VALUES (%s, '{{\"a\": 1}}', '{{}}', %s)", (old_key, NOW + DAY)
        )
    with PostgresStore(postgres_dsn, table) as store:
        record = store.load(old_key, NOW)
        assert record is not None and record.data == {"a": 1}
        key = new_key()
        store.create(key, {"b": 2}, {"c": NOW, "user": "ann"}, NOW + DAY, NOW)
        assert [k for k, _ in store.user_sessions("ann", NOW)] == [key]
        assert store.save(old_key, Changes(meta={"user": "ann"}), NOW)
        assert {k for k, _ in store.user_sessions("ann", NOW)} == {key, old_key}
    with psycopg.connect(postgres_dsn) as conn:
        indexes = [
            row[0]
            for row in conn.execute(
                "SELECT indexdef FROM pg_indexes WHERE tablename = %s", (table,)
            ).fetchall()
        ]
    assert any("(user_id)" in index for index in indexes), indexes


def test_user_index_calls_are_one_round_trip(postgres_dsn: str, table: str, tmp_path: Path) -> None:
    """Listing a user's sessions, revoking them, and a regenerate are one statement each."""
    trace = Trace(tmp_path / "libpq.trace")
    with PostgresStore(postgres_dsn, table, pool_size=1, configure=trace.configure) as store:
        old = new_key()
        store.create(old, {"a": 1}, {"c": NOW, "user": "ann"}, NOW + DAY, NOW)
        new = new_key()
        meta = {"c": NOW, "user": "ann"}
        assert trace.count(lambda: store.create(new, {"a": 1}, meta, NOW + DAY, NOW, old)) == (
            1,
            1,
        )
        assert trace.count(lambda: store.user_sessions("ann", NOW)) == (1, 1)
        assert trace.count(lambda: store.revoke_user("ann", NOW, keep=new)) == (1, 1)
        assert trace.count(lambda: store.revoke_user("ann", NOW)) == (1, 1)
        assert store.load(new, NOW) is None


def test_corrupt_record_gives_none_and_a_hashed_warning(
    postgres_dsn: str, table: str, caplog: pytest.LogCaptureFixture
) -> None:
    """A row whose data is not a JSON object loads as None, logged by key prefix only (T33)."""
    session_id = new_id()
    key = hash_id(session_id)
    with PostgresStore(postgres_dsn, table) as store:
        store.create(key, {"a": 1}, {}, NOW + DAY, NOW)
        with psycopg.connect(postgres_dsn, autocommit=True) as conn:
            conn.execute(f'UPDATE {table} SET data = \'["not", "an object"]\'::jsonb')
        with caplog.at_level(logging.WARNING, logger="wsgisession"):
            assert store.load(key, NOW) is None
    assert key[:8] in caplog.text
    assert key not in caplog.text and session_id not in caplog.text


def test_raw_id_is_never_in_a_row(postgres_dsn: str, table: str) -> None:
    """The table holds the SHA-256 of the id, never the id itself (T11)."""
    session_id = new_id()
    with PostgresStore(postgres_dsn, table) as store:
        store.create(hash_id(session_id), {"user": "ann"}, {"c": NOW}, NOW + DAY, NOW)
    with psycopg.connect(postgres_dsn) as conn:
        rows = conn.execute(f"SELECT key, data::text, meta::text FROM {table}").fetchall()
    assert rows[0][0] == hash_id(session_id)
    assert session_id not in repr(rows)


def test_purge_works_in_batches(postgres_dsn: str, table: str) -> None:
    """purge() deletes every expired row across several batches and keeps the live ones."""
    with PostgresStore(postgres_dsn, table) as store:
        store.purge_batch = 3
        for i in range(8):
            store.create(new_key(), {"i": i}, {}, NOW + 5, NOW)
        live = new_key()
        store.create(live, {}, {}, NOW + DAY, NOW)
        assert store.purge(NOW + 10) == 8
        assert store.stats(NOW + 10).sessions == 1
        assert store.load(live, NOW + 10) is not None


def test_nul_character_round_trips_through_jsonb(postgres_dsn: str, table: str) -> None:
    """jsonb cannot hold NUL, so the store escapes it: keys and values with NUL come back exact."""
    with PostgresStore(postgres_dsn, table) as store:
        key = new_key()
        store.create(key, {"k\x00": "\ue000"}, {}, NOW + DAY, NOW)
        assert store.save(key, Changes(updates={"a": "x\x00y\ue001"}), NOW)
        record = store.load(key, NOW)
        assert record is not None
        assert record.data == {"k\x00": "\ue000", "a": "x\x00y\ue001"}
        assert store.save(key, Changes(removals=frozenset({"k\x00"})), NOW)
        record = store.load(key, NOW)
        assert record is not None and record.data == {"a": "x\x00y\ue001"}


def test_bad_table_name_is_refused(postgres_dsn: str) -> None:
    """A table name that is not a plain SQL name is a configuration error at construction."""
    with pytest.raises(ConfigurationError, match="plain SQL name"):
        PostgresStore(postgres_dsn, "sessions; DROP TABLE users")


def test_forked_child_has_its_own_pool_and_spares_the_parent(postgres_dsn: str, table: str) -> None:
    """After fork (--preload) a child connects anew; its closing never cuts the parent off."""
    opened: list[Any] = []
    with PostgresStore(postgres_dsn, table, pool_size=1, configure=opened.append) as store:
        key = new_key()
        store.create(key, {"n": 0}, {}, NOW + DAY, NOW)  # the parent's pool is open now
        assert len(opened) == 1
        pid = os.fork()
        if pid == 0:  # pragma: no cover - the child reports through its exit status
            status = 1
            try:
                assert store.save(key, Changes(increments={"n": 1}), NOW)
                store.close()
                for inherited in store._abandoned:
                    inherited.close()  # would send Terminate on the parent's sockets if unguarded
                status = 0
            finally:
                os._exit(status)
        _, status = os.waitpid(pid, 0)
        assert os.waitstatus_to_exitcode(status) == 0
        record = store.load(key, NOW)
        assert record is not None and record.data == {"n": 1}
        assert len(opened) == 1, "the parent's connection was cut and had to be replaced"
