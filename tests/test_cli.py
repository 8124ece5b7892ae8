"""The command line: purge and stats on every store, help everywhere, and one-line errors."""

from __future__ import annotations

import os
import pty
import re
import subprocess
import sys
import time
from pathlib import Path

import pytest

import wsgisession
from tests.support.servers import drop_redis_prefix, network_store, redis_prefix
from wsgisession import MemoryStore, PostgresStore, RedisStore, SqliteStore, Store
from wsgisession.cli import main
from wsgisession.testing import new_key


def _fill(store: Store) -> None:
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


@pytest.mark.parametrize(
    "url", ["redis://127.0.0.1:{port}/0", "postgresql://u@127.0.0.1:{port}/db"]
)
def test_unreachable_store_is_one_line_and_status_1(
    url: str, capsys: pytest.CaptureFixture[str]
) -> None:
    """A server that refuses connections is one line saying what to check, exit status 1."""
    from tests.support.servers import free_port

    assert main(["stats", url.format(port=free_port())]) == 1
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "check that the server is running" in err


def test_a_database_the_server_does_not_have_is_its_message_and_status_2(
    postgres_dsn: str, capsys: pytest.CaptureFixture[str]
) -> None:
    """A PostgreSQL URL naming a missing database: the server's words, what to fix, status 2."""
    url = postgres_dsn.rsplit("/", 1)[0] + "/wsgisession_no_such_db"
    assert main(["stats", url]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1
    assert 'FATAL: database "wsgisession_no_such_db" does not exist' in err
    assert "fix the database name" in err


@pytest.fixture(params=["sqlite", "redis", "postgres"])
def target(request: pytest.FixtureRequest, tmp_path: Path) -> tuple[Store, list[str]]:
    """An empty store of each kind the command line looks after, and the arguments naming it."""
    if request.param == "sqlite":
        path = tmp_path / "s.db"
        store = SqliteStore(path)
        request.addfinalizer(store.close)
        return store, [f"sqlite:///{path}"]
    if request.param == "redis":
        redis_store = network_store("redis", request)
        return redis_store, ["--prefix", redis_store.prefix, request.getfixturevalue("redis_url")]
    pg_store = network_store("postgres", request)
    return pg_store, ["--table", pg_store.table, request.getfixturevalue("postgres_dsn")]


# Mistyped paths (issue 13, item 13) ------------------------------------------------------------


@pytest.mark.parametrize("command", [["stats"], ["purge"], ["purge", "--dry-run"]])
def test_missing_sqlite_file_is_an_error_and_creates_nothing(
    command: list[str], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A mistyped SQLite path exits 1 naming the path, and leaves no empty database behind."""
    path = tmp_path / "sesions.db"
    assert main([*command, f"sqlite:///{path}"]) == 1
    out, err = capsys.readouterr()
    assert out == ""
    assert err.count("\n") == 1 and f"no SQLite database at {str(path)!r}" in err
    assert "(nothing was created)" in err and "four slashes" in err
    assert list(tmp_path.iterdir()) == []


def test_missing_relative_sqlite_file_names_the_absolute_path(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """sqlite:///var/lib/x.db (three slashes: relative) names the absolute path it looked at."""
    monkeypatch.chdir(tmp_path)
    assert main(["stats", "sqlite:///var/lib/app/sessions.db"]) == 1
    err = capsys.readouterr().err
    assert repr(str(tmp_path / "var/lib/app/sessions.db")) in err and "four slashes" in err
    assert list(tmp_path.iterdir()) == []


def test_memory_url_is_refused(capsys: pytest.CaptureFixture[str]) -> None:
    """memory:// cannot be looked into from another process: a usage error, not "0 sessions"."""
    assert main(["stats", "memory://"]) == 2
    assert "inside the application's own process" in capsys.readouterr().err


# --version, WSGISESSION_STORE, exit codes (issue 19, item 4) -----------------------------------


def test_version() -> None:
    """--version prints the package's version and exits 0."""
    result = subprocess.run(
        [sys.executable, "-m", "wsgisession", "--version"],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout == f"wsgisession {wsgisession.__version__}\n"


def test_url_defaults_to_the_environment(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """Without a URL argument, WSGISESSION_STORE names the store; the argument still wins."""
    path = tmp_path / "s.db"
    with SqliteStore(path) as store:
        _fill(store)
    monkeypatch.setenv("WSGISESSION_STORE", f"sqlite:///{path}")
    assert main(["stats"]) == 0
    _assert_one_live_session(capsys.readouterr().out)
    assert main(["purge"]) == 0
    assert capsys.readouterr().out == "deleted 2 expired sessions\n"
    assert main(["stats", f"sqlite:///{tmp_path}/other.db"]) == 1


@pytest.mark.parametrize("value", [None, "", "  "])
def test_no_url_and_no_environment_is_a_clear_usage_error(
    value: str | None, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """Neither a URL nor WSGISESSION_STORE: exit 2, saying both ways to give one."""
    if value is None:
        monkeypatch.delenv("WSGISESSION_STORE", raising=False)
    else:
        monkeypatch.setenv("WSGISESSION_STORE", value)
    assert main(["purge"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1
    assert "no store URL" in err and "WSGISESSION_STORE" in err


def test_help_documents_the_exit_codes_and_the_environment() -> None:
    """--help on the program and on each command lists the exit statuses and WSGISESSION_STORE."""
    for args in (["--help"], ["purge", "--help"], ["stats", "--help"]):
        result = subprocess.run(
            [sys.executable, "-m", "wsgisession", *args], capture_output=True, text=True, timeout=60
        )
        assert "exit status:" in result.stdout
        for line in ("  0  done", "  1  the store cannot be used", "  2  a usage mistake"):
            assert line in result.stdout, (args, result.stdout)
        assert "WSGISESSION_STORE" in result.stdout
        assert ("--dry-run" in result.stdout) == (args[0] == "purge")


# purge --dry-run and progress (issue 19, item 4) -----------------------------------------------


def test_purge_dry_run_counts_and_deletes_nothing(
    target: tuple[Store, list[str]], capsys: pytest.CaptureFixture[str]
) -> None:
    """--dry-run prints how many expired sessions purge would delete, and deletes none."""
    store, args = target
    _fill(store)
    assert main(["purge", "--dry-run", *args]) == 0
    assert capsys.readouterr().out == "would delete 2 expired sessions (dry run: nothing deleted)\n"
    assert main(["purge", "--dry-run", *args]) == 0
    assert "would delete 2 expired sessions" in capsys.readouterr().out
    assert main(["purge", *args]) == 0
    assert capsys.readouterr().out == "deleted 2 expired sessions\n"
    assert main(["purge", "--dry-run", *args]) == 0
    assert capsys.readouterr().out.startswith("would delete 0 expired sessions")


def test_purge_reports_progress_to_the_callback(target: tuple[Store, list[str]]) -> None:
    """Store.purge(now, progress) calls progress with a running count that ends at the total."""
    store, _ = target
    if isinstance(store, RedisStore):
        store.scan_batch = 3
    elif isinstance(store, (SqliteStore, PostgresStore)):
        store.purge_batch = 3
    now = time.time()
    for _ in range(7):
        store.create(new_key(), {"a": 1}, {}, now - 10, now - 20)
    store.create(new_key(), {"a": 1}, {}, now + 3600, now)
    assert store.count_expired(now) == 7
    seen: list[int] = []
    assert store.purge(now, seen.append) == 7
    assert seen == sorted(seen) and seen[-1] == 7 and len(seen) >= 3
    assert store.count_expired(now) == 0


def test_memory_store_counts_expired_and_reports_progress() -> None:
    """MemoryStore has the same count_expired() and progress as the server stores."""
    store, now, seen = MemoryStore(), time.time(), []
    _fill(store)
    assert store.count_expired(now) == 2
    assert store.purge(now, seen.append) == 2
    assert seen == [2] and store.count_expired(now) == 0


def _run_on_a_terminal(args: list[str]) -> tuple[int, str, str]:
    """Run the command line with stderr on a pseudo-terminal; return status, stdout, terminal."""
    master, slave = pty.openpty()
    try:
        process = subprocess.Popen(
            [sys.executable, "-m", "wsgisession", *args],
            stdout=subprocess.PIPE,
            stderr=slave,
            text=True,
        )
    finally:
        os.close(slave)
    chunks = []
    while True:
        try:
            chunk = os.read(master, 4096)
        except OSError:  # EIO: the other side closed
            break
        if not chunk:
            break
        chunks.append(chunk)
    os.close(master)
    out, _ = process.communicate(timeout=60)
    return process.returncode, out, b"".join(chunks).decode()


def test_purge_shows_a_count_and_a_rate_on_a_terminal(tmp_path: Path) -> None:
    """On a terminal, purge draws a running count and rate on stderr; stdout stays the same."""
    path = tmp_path / "s.db"
    now = time.time()
    with SqliteStore(path, purge_every=0) as store:
        for _ in range(1200):  # more than two of SqliteStore's purge batches
            store.create(new_key(), {"a": 1}, {}, now - 10, now - 20)
    status, out, terminal = _run_on_a_terminal(["purge", f"sqlite:///{path}"])
    assert status == 0, terminal
    assert out == "deleted 1200 expired sessions\n"
    assert re.search(r"\rpurging: 500 deleted, [\d,]+/s", terminal), terminal
    assert re.search(r"\rpurging: 1,200 deleted, [\d,]+/s *\r?\n", terminal), terminal


def test_purge_is_quiet_when_not_on_a_terminal(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """From cron or a pipe, purge prints its one line and nothing on stderr."""
    path = tmp_path / "s.db"
    now = time.time()
    with SqliteStore(path, purge_every=0) as store:
        for _ in range(600):
            store.create(new_key(), {"a": 1}, {}, now - 10, now - 20)
    assert main(["purge", f"sqlite:///{path}"]) == 0
    assert capsys.readouterr() == ("deleted 600 expired sessions\n", "")


# A user's sessions (issue 16, item 3) --------------------------------------------------------


def _fill_users(store: Store) -> None:
    """Two live sessions of ann (one described), one expired, and one of bob."""
    now = time.time()
    described = {"created": now - 60, "user": "ann", "info": {"agent": "Firefox"}}
    store.create(new_key(), {"a": 1}, described, now + 3600, now)
    store.create(new_key(), {"a": 2}, {"created": now, "user": "ann"}, now + 3600, now)
    store.create(new_key(), {"a": 3}, {"created": now - 99, "user": "ann"}, now - 5, now - 99)
    store.create(new_key(), {"a": 4}, {"created": now, "user": "bob"}, now + 3600, now)


def test_sessions_lists_and_revoke_ends_a_users_sessions(
    target: tuple[Store, list[str]], capsys: pytest.CaptureFixture[str]
) -> None:
    """sessions lists ann's live sessions with their handles; revoke ends one, then all."""
    store, args = target
    try:
        store.user_sessions("probe", 0.0)
    except wsgisession.NoUserIndexError:
        pytest.skip(f"{type(store).__name__} keeps no user index yet")
    _fill_users(store)
    assert main(["sessions", *args, "ann"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0] == "2 live sessions of user 'ann'"
    assert len(lines) == 3
    row = r"[0-9a-f]{64}  created \S+ \S+Z  last seen \S+ \S+Z  expires \S+ \S+Z"
    assert re.fullmatch(row + r'  \{"agent": "Firefox"\}', lines[1]), lines[1]
    assert re.fullmatch(row, lines[2]), lines[2]
    handle = lines[1].split()[0]
    assert main(["revoke", *args, "ann", "--handle", handle]) == 0
    assert capsys.readouterr().out == "ended 1 session of user 'ann'\n"
    assert main(["revoke", *args, "ann", "--handle", handle]) == 3
    out, err = capsys.readouterr()
    assert out == "" and err.count("\n") == 1 and "nothing was ended" in err
    assert main(["revoke", *args, "ann"]) == 0
    assert capsys.readouterr().out == "ended 1 session of user 'ann'\n"
    assert main(["sessions", *args, "ann"]) == 0
    assert capsys.readouterr().out == "0 live sessions of user 'ann'\n"
    assert main(["sessions", *args, "bob"]) == 0
    assert capsys.readouterr().out.startswith("1 live session of user 'bob'\n")


def test_sessions_takes_the_url_from_the_environment(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """With the URL left out, sessions and revoke use WSGISESSION_STORE; USER stays required."""
    path = tmp_path / "s.db"
    with SqliteStore(path) as store:
        _fill_users(store)
    monkeypatch.setenv("WSGISESSION_STORE", f"sqlite:///{path}")
    assert main(["sessions", "ann"]) == 0
    assert capsys.readouterr().out.startswith("2 live sessions of user 'ann'\n")
    assert main(["revoke", "ann"]) == 0
    assert capsys.readouterr().out == "ended 2 sessions of user 'ann'\n"
    with pytest.raises(SystemExit) as exited:
        main(["revoke"])
    assert exited.value.code == 2
    assert "USER" in capsys.readouterr().err


def test_an_empty_user_or_a_bad_max_age_is_a_usage_error(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """An empty USER, or --max-age 0, is one line on stderr and exit status 2."""
    path = tmp_path / "s.db"
    SqliteStore(path).close()
    assert main(["revoke", f"sqlite:///{path}", ""]) == 2
    assert "USER is empty" in capsys.readouterr().err
    assert main(["sessions", "--max-age", "0", f"sqlite:///{path}", "ann"]) == 2
    assert "--max-age 0" in capsys.readouterr().err


def test_sessions_and_revoke_have_help() -> None:
    """--help on sessions and revoke prints their usage, with USER, and exits 0."""
    for command in ("sessions", "revoke"):
        result = subprocess.run(
            [sys.executable, "-m", "wsgisession", command, "--help"],
            capture_output=True,
            text=True,
            timeout=60,
        )
        assert result.returncode == 0, result.stderr
        assert result.stdout.startswith(f"usage: wsgisession {command}")
        assert "USER" in result.stdout
