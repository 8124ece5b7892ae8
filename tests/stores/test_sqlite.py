"""SqliteStore passes the store contract, and behaves on disk as one machine needs."""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from pathlib import Path

import pytest

from wsgisession import SqliteStore
from wsgisession.testing import StoreContract


class TestSqliteStoreContract(StoreContract):
    @pytest.fixture
    def store(self, tmp_path: Path) -> Iterator[SqliteStore]:
        with SqliteStore(tmp_path / "sessions.db") as store:
            yield store


class TestSqliteMemoryContract(StoreContract):
    @pytest.fixture
    def store(self) -> Iterator[SqliteStore]:
        with SqliteStore(":memory:") as store:
            yield store


def test_file_uses_wal(tmp_path: Path) -> None:
    """The database runs in WAL mode, so readers never wait for the writer."""
    path = tmp_path / "s.db"
    store = SqliteStore(path)
    store.create_schema()
    with sqlite3.connect(path) as conn:
        assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    store.close()


def test_expired_rows_are_purged_on_the_side(tmp_path: Path) -> None:
    """Every purge_every new sessions, a small batch of expired rows goes, with no extra call."""
    from wsgisession.testing import NOW, new_key

    store = SqliteStore(tmp_path / "s.db", purge_every=5)
    dead = [new_key() for _ in range(3)]
    for key in dead:
        store.create(key, {}, {}, NOW - 10, NOW - 100)
    assert store.stats(NOW - 50).sessions == 3
    for _ in range(5):
        store.create(new_key(), {}, {}, NOW + 100, NOW)
    assert store.stats(NOW - 50).sessions == 5  # the 3 dead rows are gone, the 5 live stay
    store.close()


def test_purge_works_in_batches(tmp_path: Path) -> None:
    """purge() deletes every expired row, batch after batch, and counts them."""
    from wsgisession.testing import NOW, new_key

    store = SqliteStore(tmp_path / "s.db", purge_every=0)
    store.purge_batch = 7
    for _ in range(30):
        store.create(new_key(), {}, {}, NOW - 1, NOW - 100)
    store.create(new_key(), {}, {}, NOW + 100, NOW)
    assert store.purge(NOW) == 30
    assert store.stats(NOW).sessions == 1
    store.close()


def test_locked_database_becomes_a_store_error(tmp_path: Path) -> None:
    """A write lock held past busy_timeout is a StoreUnavailableError, not a hang or a crash."""
    from wsgisession import StoreUnavailableError
    from wsgisession.testing import NOW, new_key

    path = tmp_path / "s.db"
    store = SqliteStore(path, busy_timeout=0.2)
    store.create_schema()
    blocker = sqlite3.connect(path, isolation_level=None)
    blocker.execute("BEGIN IMMEDIATE")
    try:
        with pytest.raises(StoreUnavailableError, match="busy_timeout"):
            store.create(new_key(), {}, {}, NOW + 100, NOW)
    finally:
        blocker.execute("ROLLBACK")
        blocker.close()
    store.create(new_key(), {}, {}, NOW + 100, NOW)
    store.close()


def test_sqlite_store_url(tmp_path: Path) -> None:
    """store_from_url builds SQLite and memory stores, and explains a bad URL."""
    from wsgisession import ConfigurationError, MemoryStore, store_from_url

    assert isinstance(store_from_url("memory://"), MemoryStore)
    store = store_from_url(f"sqlite:///{tmp_path}/u.db")
    assert isinstance(store, SqliteStore) and store.path == f"{tmp_path}/u.db"
    store.close()
    with pytest.raises(ConfigurationError, match="names no file"):
        store_from_url("sqlite://")
    with pytest.raises(ConfigurationError, match="unknown scheme"):
        store_from_url("ftp://x")


def test_lock_errors_are_retried_within_busy_timeout(tmp_path: Path) -> None:
    """A write that meets another connection's lock is retried until the lock goes."""
    import threading

    from wsgisession.testing import NOW, new_key

    path = tmp_path / "s.db"
    store = SqliteStore(path, busy_timeout=2.0)
    store.create_schema()
    blocker = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
    blocker.execute("BEGIN IMMEDIATE")
    release = threading.Timer(0.2, lambda: blocker.execute("ROLLBACK"))
    release.start()
    try:
        key = new_key()
        store.create(key, {"a": 1}, {}, NOW + 100, NOW)
        assert store.load(key, NOW) is not None
    finally:
        release.join()
        blocker.close()
        store.close()


def test_lock_retries_stop_at_busy_timeout(tmp_path: Path) -> None:
    """Retries of an immediate "locked" give up once busy_timeout is spent: a store error."""
    import time

    from wsgisession import StoreUnavailableError
    from wsgisession.testing import NOW, new_key

    path = tmp_path / "s.db"
    store = SqliteStore(path, busy_timeout=0.3)
    store.create_schema()
    blocker = sqlite3.connect(path, isolation_level=None)
    blocker.execute("BEGIN IMMEDIATE")
    started = time.monotonic()
    try:
        with pytest.raises(StoreUnavailableError, match="locked"):
            store.create(new_key(), {}, {}, NOW + 100, NOW)
    finally:
        blocker.execute("ROLLBACK")
        blocker.close()
        store.close()
    assert 0.15 < time.monotonic() - started < 0.6


def _wal_bytes(store: SqliteStore) -> int:
    wal = Path(store.path + "-wal")
    return wal.stat().st_size if wal.exists() else 0


def _counter_saves(store: SqliteStore, key: str, count: int) -> None:
    from wsgisession.records import Changes
    from wsgisession.testing import NOW

    for _ in range(count):
        record = store.load(key, NOW)
        assert record is not None
        n = record.data["n"] + 1
        assert store.save(key, Changes(updates={"n": n}, loaded=record, result={"n": n}), NOW)


def test_the_store_checkpoints_every_so_many_writes(tmp_path: Path) -> None:
    """With checkpoint_every=50, 600 writes leave a WAL of some 50 pages, and nothing is lost."""
    from wsgisession.testing import NOW, new_key

    store = SqliteStore(tmp_path / "s.db", checkpoint_every=50)
    key = new_key()
    store.create(key, {"n": 0}, {}, NOW + 100, NOW)
    _counter_saves(store, key, 600)
    assert _wal_bytes(store) <= 60 * (4096 + 24) + 32  # the frames of 50-odd writes at most
    record = store.load(key, NOW)
    assert record is not None and record.data == {"n": 600}
    store.close()
    # SQLite's own checkpoint (checkpoint_every=0) lets the WAL grow to 1000 pages first.
    own = SqliteStore(tmp_path / "own.db", checkpoint_every=0)
    own.create(key, {"n": 0}, {}, NOW + 100, NOW)
    _counter_saves(own, key, 600)
    assert _wal_bytes(own) > 500 * 4096
    own.close()


def test_a_checkpoint_blocked_by_a_reader_fails_no_write(tmp_path: Path) -> None:
    """A reader on an old snapshot stops the checkpoint, never the save: it tries again later."""
    from wsgisession.testing import NOW, new_key

    store = SqliteStore(tmp_path / "s.db", checkpoint_every=1)
    key = new_key()
    store.create(key, {"n": 0}, {}, NOW + 100, NOW)
    reader = sqlite3.connect(store.path, isolation_level=None)
    reader.execute("BEGIN")
    reader.execute(f"SELECT count(*) FROM {store.table}").fetchone()
    try:
        _counter_saves(store, key, 3)  # each save checkpoints, and each checkpoint is refused
        assert store.checkpoint() is False
    finally:
        reader.execute("COMMIT")
        reader.close()
    assert store.checkpoint() is True
    record = store.load(key, NOW)
    assert record is not None and record.data == {"n": 3}
    store.close()


def test_checkpoint_every_must_not_be_negative(tmp_path: Path) -> None:
    """A negative checkpoint_every is refused with a message that says what to pass."""
    from wsgisession import ConfigurationError

    with pytest.raises(ConfigurationError, match="checkpoint_every=-1 must be 0"):
        SqliteStore(tmp_path / "s.db", checkpoint_every=-1)


def test_a_long_purge_keeps_the_wal_short(tmp_path: Path) -> None:
    """A purge of many batches restarts the WAL every few batches: it never holds them all."""
    import threading

    from wsgisession.testing import NOW, new_key

    store = SqliteStore(tmp_path / "s.db", purge_every=0)
    store.purge_batch = 50
    live = new_key()
    store.create(live, {"n": 1}, {}, NOW + 100, NOW)
    conn = sqlite3.connect(store.path, isolation_level=None)  # expired rows, in bulk
    conn.execute("BEGIN")
    conn.executemany(
        f"INSERT INTO {store.table} (key, data, meta, expires) VALUES (?, ?, '{{}}', ?)",
        ((new_key(), "{}", NOW - 10) for _ in range(20_000)),
    )
    conn.execute("COMMIT")
    conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    conn.close()
    # Requests go on beside the purge, as they do in production: their reads keep SQLite from
    # restarting the WAL by itself at the next write.
    stop = threading.Event()
    saved = []

    def requests() -> None:
        while not stop.is_set():
            _counter_saves(store, live, 1)
            saved.append(1)

    worker = threading.Thread(target=requests)
    worker.start()
    try:
        assert store.purge(NOW) == 20_000
    finally:
        stop.set()
        worker.join()
    record = store.load(live, NOW)
    assert record is not None and record.data == {"n": 1 + len(saved)}
    # 400 batches each change pages all over the table; the WAL file grows only to the pages of
    # the batches between two restarts (about 550 pages on a quiet machine, up to ~3,200 on a
    # loaded one, where a restart is refused more often; about 11,000 without the restarts).
    pages = _wal_bytes(store) // (4096 + 24)
    assert pages < 6000, f"the WAL grew to {pages} pages"
    store.close()


def test_a_checkpoint_leaves_the_connections_own_busy_timeout(tmp_path: Path) -> None:
    """A busy timeout set in prepare_connection is still in force after a checkpoint."""
    from wsgisession.testing import NOW, new_key

    opened: list[sqlite3.Connection] = []

    class Patient(SqliteStore):
        def prepare_connection(self, conn: sqlite3.Connection) -> None:
            conn.execute("PRAGMA busy_timeout = 250")
            opened.append(conn)

    store = Patient(tmp_path / "s.db", checkpoint_every=1)
    store.create(new_key(), {"n": 0}, {}, NOW + 100, NOW)  # one write: one checkpoint
    assert store.checkpoint() is True
    assert [conn.execute("PRAGMA busy_timeout").fetchone()[0] for conn in opened] == [250]
    store.close()


def test_a_table_from_before_the_user_index_is_migrated(tmp_path: Path) -> None:
    """A table without user_id (made by 0.1) gets the column and a partial index, rows kept."""
    from wsgisession.records import Changes
    from wsgisession.testing import DAY, NOW, new_key

    path = tmp_path / "old.db"
    old_key = new_key()
    with sqlite3.connect(path) as conn:
        conn.execute(
            "CREATE TABLE wsgisession_sessions (key TEXT PRIMARY KEY, data TEXT NOT NULL,"
            " meta TEXT NOT NULL, expires REAL NOT NULL, version INTEGER NOT NULL DEFAULT 0)"
            " WITHOUT ROWID"
        )
        conn.execute(
            "INSERT INTO wsgisession_sessions VALUES (?, '{\"a\": 1}', '{}', ?, 0)",
            (old_key, NOW + DAY),
        )
    with SqliteStore(path) as store:
        record = store.load(old_key, NOW)
        assert record is not None and record.data == {"a": 1}
        assert store.save(old_key, Changes(meta={"user": "ann"}), NOW)
        key = new_key()
        store.create(key, {"b": 2}, {"user": "ann"}, NOW + DAY, NOW)
        assert {k for k, _ in store.user_sessions("ann", NOW)} == {old_key, key}
    with sqlite3.connect(path) as conn:
        indexes = [row[0] for row in conn.execute("SELECT sql FROM sqlite_master")]
    assert any(sql and "(user_id) WHERE user_id IS NOT NULL" in sql for sql in indexes), indexes


def test_a_users_sessions_are_found_by_the_user_index(tmp_path: Path) -> None:
    """Listing a user's sessions uses the user_id index; unbound rows hold no user."""
    from wsgisession.testing import DAY, NOW, new_key

    path = tmp_path / "s.db"
    with SqliteStore(path) as store:
        for _ in range(5):
            store.create(new_key(), {"a": 1}, {}, NOW + DAY, NOW)
        store.create(new_key(), {"a": 1}, {"user": "ann"}, NOW + DAY, NOW)
    with sqlite3.connect(path) as conn:
        plan = conn.execute(
            "EXPLAIN QUERY PLAN SELECT key FROM wsgisession_sessions WHERE user_id = ?",
            ("ann",),
        ).fetchall()
        nulls = conn.execute(
            "SELECT count(*) FROM wsgisession_sessions WHERE user_id IS NULL"
        ).fetchone()[0]
    assert any("wsgisession_sessions_user" in str(row) for row in plan), plan
    assert nulls == 5
