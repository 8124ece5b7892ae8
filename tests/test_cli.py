"""The command line: purge and stats on every store, help everywhere, and one-line errors."""

from __future__ import annotations

import re
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.services import drop_redis_prefix, redis_prefix
from wsgisession import RedisStore, SqliteStore
from wsgisession.cli import main
from wsgisession.testing import new_key


def _fill(store: SqliteStore | RedisStore) -> None:
    """Two expired sessions and one live one, by the real clock the command line uses."""
    now = time.time()
    store.create(new_key(), {"a": 1}, {}, now - 10, now - 20)
    store.create(new_key(), {"a": 2}, {}, now - 5, now - 20)
    store.create(new_key(), {"blob": "x" * 100}, {}, now + 3600, now)


def _assert_one_live_session(out: str) -> None:
    match = re.fullmatch(r"1 live session, (\d+) bytes\n", out)
    assert match is not None, out
    assert 100 < int(match.group(1)) < 200


def test_module_and_help_work(tmp_path: Path) -> None:
    """python -m wsgisession --help, and --help on each command, print usage and exit 0."""
    for args in (["--help"], ["purge", "--help"], ["stats", "--help"]):
        result = subprocess.run(
            [sys.executable, "-m", "wsgisession", *args], capture_output=True, text=True, timeout=60
        )
        assert result.returncode == 0, result.stderr
        assert result.stdout.startswith("usage: wsgisession")
        assert "URL" in result.stdout or "COMMAND" in result.stdout


@pytest.mark.parametrize(
    "url",
    ["nonsense", "ftp://example.com/x", "sqlite://", "redis://host:notaport/0", "postgresql://"],
)
def test_bad_url_is_one_line_and_status_2(url: str, capsys: pytest.CaptureFixture[str]) -> None:
    """A URL that names no usable store is one line on stderr and exit status 2."""
    assert main(["stats", url]) == 2
    out, err = capsys.readouterr()
    assert out == ""
    assert err.count("\n") == 1 and err.startswith("wsgisession: error: ")


def test_option_for_another_store_is_refused(capsys: pytest.CaptureFixture[str]) -> None:
    """--prefix on an SQLite URL is a usage error that says which URLs it fits."""
    assert main(["purge", "--prefix", "x:", "sqlite:///x.db"]) == 2
    assert "Redis URLs only" in capsys.readouterr().err


def test_purge_and_stats_on_sqlite(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """stats counts the live session and its size; purge deletes the two expired ones."""
    path = tmp_path / "s.db"
    with SqliteStore(path) as store:
        _fill(store)
    url = f"sqlite:///{path}"
    assert main(["stats", url]) == 0
    _assert_one_live_session(capsys.readouterr().out)
    assert main(["purge", url]) == 0
    assert capsys.readouterr().out == "deleted 2 expired sessions\n"
    assert main(["purge", url]) == 0
    assert capsys.readouterr().out == "deleted 0 expired sessions\n"


def test_purge_and_stats_on_redis(redis_url: str, capsys: pytest.CaptureFixture[str]) -> None:
    """On Redis, with --prefix: the same counts, and only under that prefix."""
    prefix = redis_prefix()
    with RedisStore(redis_url, prefix) as store:
        _fill(store)
    assert main(["stats", "--prefix", prefix, redis_url]) == 0
    _assert_one_live_session(capsys.readouterr().out)
    assert main(["purge", "--prefix", prefix, redis_url]) == 0
    assert capsys.readouterr().out == "deleted 2 expired sessions\n"
    drop_redis_prefix(redis_url, prefix)


def test_unreachable_store_is_one_line_and_status_1(capsys: pytest.CaptureFixture[str]) -> None:
    """A server that refuses connections is one line saying what to check, exit status 1."""
    from tests.services import free_port

    assert main(["stats", f"redis://127.0.0.1:{free_port()}/0"]) == 1
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "check that the server is running" in err
