"""What every store shares: a missing driver names its extra, a bad table name fails at once."""

from __future__ import annotations

import re
import sys

import pytest

from wsgisession import (
    ConfigurationError,
    MissingDriverError,
    PostgresStore,
    RedisStore,
    SqliteStore,
)


@pytest.mark.parametrize(
    ("build", "modules", "extra"),
    [
        (lambda: RedisStore("redis://127.0.0.1:6379/0"), ["redis"], "sessions-wsgi[redis]"),
        (lambda: PostgresStore("postgresql://u@h/db"), ["psycopg"], "sessions-wsgi[postgres]"),
        (lambda: PostgresStore("postgresql://u@h/db"), ["psycopg_pool"], "sessions-wsgi[postgres]"),
    ],
)
def test_missing_driver_names_the_extra(
    monkeypatch: pytest.MonkeyPatch, build: object, modules: list[str], extra: str
) -> None:
    """A store whose driver is not installed says which extra installs it."""
    for name in modules:
        monkeypatch.setitem(sys.modules, name, None)  # makes `import name` fail
    with pytest.raises(MissingDriverError, match=re.escape(f"pip install {extra!r}")):
        build()  # type: ignore[operator]


@pytest.mark.parametrize("table", ["sessions; DROP TABLE users", "a-b", "1abc", "x" * 64, ""])
def test_sql_table_names_are_checked_at_construction(table: str, tmp_path: object) -> None:
    """A table name that is not a plain SQL name is refused when the store is built."""
    with pytest.raises(ConfigurationError, match="plain SQL name"):
        SqliteStore(f"{tmp_path}/s.db", table=table)
    with pytest.raises(ConfigurationError, match="plain SQL name"):
        PostgresStore("postgresql://u@h/db", table)


def test_postgres_takes_a_schema_qualified_table(postgres_dsn: str) -> None:
    """PostgreSQL accepts schema.table; SQLite, which has no schemas here, does not."""
    PostgresStore(postgres_dsn, "app.sessions").close()
    with pytest.raises(ConfigurationError, match="plain SQL name"):
        SqliteStore(":memory:", table="app.sessions")
