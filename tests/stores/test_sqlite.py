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
