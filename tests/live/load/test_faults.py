"""Faults under gunicorn: workers killed mid-save (T54), SQLite write locks held outside (T53)."""

from __future__ import annotations

import contextlib
import http.client
import os
import random
import signal
import sqlite3
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.support.servers import ThrowawayPostgres
from tests.support.stores import LOAD_STORES, NETWORK_STORES

from .server import REPORT, Client, Row, Served, run_together, serving

pytestmark = pytest.mark.load


def sqlite_path(served: Served) -> str:
    """The database file of an SQLite backend."""
    return served.backend.url[len("sqlite:///") :]


def integrity(path: str) -> str:
    """SQLite's own verdict on the file."""
    with contextlib.closing(sqlite3.connect(path)) as conn:
        return str(conn.execute("PRAGMA integrity_check").fetchone()[0])


def write_session(served: Served, value: int) -> str:
    """A new session written by /write?v=value; return its cookie."""
    with Client(served.server.port) as client:
        status, _, _ = client.get("/set?init=1")
        assert status == 200, served.server.tail()
        status, _, _ = client.get(f"/write?v={value}")
    assert status == 200 and client.cookie, served.server.tail()
    return client.cookie


def whole_version(served: Served, cookie: str) -> int:
    """The one version every key of a /write session holds; fail when the keys disagree."""
    with Client(served.server.port, cookie) as client:
        status, body, _ = client.get("/dump")
    assert status == 200 and not body["new"], f"{status} {body}\n{served.server.tail()}"
    data = body["data"]
    value = data["a"]
    assert data["b"] == data["c"] == value, f"torn session {data}"
    assert data["blob"] == f"{value}:" + "x" * 2000, f"torn blob for version {value}"
    return int(value)


# T54: kill -9 in the middle of a save --------------------------------------------------------


@pytest.fixture
def stalling(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Served]:
    """A 4-worker server on SQLite whose saves can be made to stop inside their UPDATE."""
    with serving(request, tmp_path, "sqlite", "sync 4", WSGISESSION_TEST_STALL="1") as served:
        yield served


def test_kill_inside_the_save_transaction_leaves_the_old_session(stalling: Served) -> None:
    """T54: a worker killed -9 inside a save's UPDATE: the session is wholly old, the file sound."""
    served = stalling
    cookie = write_session(served, 1)
    outcome: list[Any] = []

    def stalled_write() -> None:
        try:
            with Client(served.server.port, cookie) as client:
                outcome.append(client.get("/write?v=2&stall=kill")[0])
        except (OSError, http.client.HTTPException) as exc:
            outcome.append(exc)

    thread = threading.Thread(target=stalled_write)
    thread.start()
    marker = served.gates / "kill.stalled"
    deadline = time.monotonic() + 10
    while not marker.exists():
        assert time.monotonic() < deadline, f"the save never stalled\n{served.server.tail()}"
        time.sleep(0.005)
    time.sleep(0.05)  # the pid is written; the UPDATE has changed the row and not committed
    os.kill(int(marker.read_text()), signal.SIGKILL)
    thread.join(10)
    assert outcome and not isinstance(outcome[0], int), f"the killed request answered {outcome}"
    assert whole_version(served, cookie) == 1
    assert integrity(sqlite_path(served)) == "ok"
    with Client(served.server.port, cookie) as client:  # the lock died with the worker
        assert client.get("/write?v=3")[0] == 200, served.server.tail()
    assert whole_version(served, cookie) == 3


@pytest.fixture
def stalling_postgres(
    request: pytest.FixtureRequest, tmp_path: Path
) -> Iterator[tuple[Served, ThrowawayPostgres]]:
    """A 4-worker server on PostgreSQL whose own server notices a dead client within 0.1 s."""
    if "postgres" not in NETWORK_STORES:
        pytest.skip("this wsgisession has no PostgresStore")
    database = ThrowawayPostgres("client_connection_check_interval=100")
    try:
        database.start()
        with serving(request, tmp_path, "postgres", "sync 4", server_url=database.dsn) as served:
            yield served, database
    finally:
        database.close()


def test_kill_inside_the_postgres_save_leaves_a_whole_session(
    stalling_postgres: tuple[Served, ThrowawayPostgres],
) -> None:
    """T54: workers killed -9 while the save's UPDATE sleeps in a trigger: the session is whole."""
    import psycopg

    served, database = stalling_postgres
    cookie = write_session(served, 1)
    table = served.backend.options["table"]
    with psycopg.connect(database.dsn, autocommit=True) as conn:
        conn.execute(
            f"CREATE FUNCTION {table}_stall() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN"
            " IF NEW.data ? 'stall' THEN PERFORM pg_sleep(10); END IF; RETURN NEW; END $$"
        )
        conn.execute(
            f"CREATE TRIGGER {table}_stall BEFORE UPDATE ON {table} FOR EACH ROW"
            f" EXECUTE FUNCTION {table}_stall()"
        )
        outcome: list[Any] = []

        def stalled_write() -> None:
            try:
                with Client(served.server.port, cookie) as client:
                    outcome.append(client.get("/write?v=2&stall=kill")[0])
            except (OSError, http.client.HTTPException) as exc:
                outcome.append(exc)

        thread = threading.Thread(target=stalled_write)
        thread.start()
        sleeping = "SELECT count(*) FROM pg_stat_activity WHERE wait_event = 'PgSleep'"
        deadline = time.monotonic() + 10
        while conn.execute(sleeping).fetchone() != (1,):
            assert time.monotonic() < deadline, f"the save never stalled\n{served.server.tail()}"
            time.sleep(0.01)
        for worker in served.server.workers():  # the stalled one among them
            os.kill(worker, signal.SIGKILL)
        thread.join(10)
        while conn.execute(sleeping).fetchone() != (0,):  # the server ends the orphaned UPDATE
            assert time.monotonic() < deadline + 5, "the orphaned UPDATE went on sleeping"
            time.sleep(0.01)
    assert outcome and not isinstance(outcome[0], int), f"the killed request answered {outcome}"
    assert whole_version(served, cookie) == 1  # rolled back when the client died
    with Client(served.server.port, cookie) as client:
        assert client.get("/write?v=3")[0] == 200, served.server.tail()
    assert whole_version(served, cookie) == 3


@pytest.mark.parametrize("kind", LOAD_STORES)
def test_workers_killed_during_save_loops_leave_whole_sessions(
    kind: str, request: pytest.FixtureRequest, tmp_path: Path
) -> None:
    """T54: kill -9 workers at random while 8 clients save: every session is old or new, whole."""
    with serving(request, tmp_path, kind, "sync 4") as served:
        count, kills = 8, 6
        cookies = [write_session(served, 0) for _ in range(count)]
        acked = [0] * count
        tried = [0] * count
        refused: list[int] = []
        cut: list[int] = []
        busy: list[int] = []
        stop = threading.Event()

        def work(index: int) -> None:
            client = Client(served.server.port, cookies[index])
            while not stop.is_set():
                tried[index] += 1
                try:
                    status, _, headers = client.get(f"/write?v={tried[index]}")
                    busy.append(int(headers["X-Worker-Pid"]))
                except (OSError, http.client.HTTPException):
                    cut.append(index)  # this request's worker was killed
                    continue
                if status == 200:
                    acked[index] = tried[index]
                else:
                    refused.append(status)
            client.close()

        def killer(index: int) -> None:
            if index:
                return work(index - 1)
            rng = random.Random(54)
            for _ in range(kills):
                time.sleep(0.15)
                workers = served.server.workers()
                serving_now = [pid for pid in set(busy) if pid in workers]  # booted and serving
                if serving_now:
                    os.kill(rng.choice(serving_now), signal.SIGKILL)
                busy.clear()
            time.sleep(0.2)
            stop.set()

        started = time.monotonic()
        errors = run_together(count + 1, killer)
        assert not errors, errors
        torn = 0
        for index, cookie in enumerate(cookies):
            version = whole_version(served, cookie)
            # Acknowledged saves are never lost; an unacknowledged one is all there or absent.
            if not acked[index] <= version <= tried[index]:
                torn += 1
        scenario = f"save loops, {len(cut)} requests cut by kill -9"
        REPORT.append(Row(kind, "sync 4, kill -9 x6", scenario, count, sum(tried),
                          torn, len(refused), time.monotonic() - started))  # fmt: skip
        assert torn == 0, f"acked {acked}, tried {tried}\n{served.server.tail()}"
        assert not refused, f"answers other than 200: {refused[:5]}\n{served.server.tail()}"
        if kind == "sqlite":
            assert integrity(sqlite_path(served)) == "ok"


# T53: SQLite write lock held by someone else -------------------------------------------------


BUSY_TIMEOUT = 1.5


@pytest.fixture
def short_busy(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Served]:
    """A 4-worker server on SQLite with a short busy timeout."""
    options = {"busy_timeout": BUSY_TIMEOUT}
    with serving(request, tmp_path, "sqlite", "sync 4", options) as served:
        yield served


@contextlib.contextmanager
def write_lock_held(path: str, seconds: float) -> Iterator[None]:
    """Hold SQLite's write lock on *path* from another connection for up to *seconds*.

    The lock goes when the time is up or when the block ends, whichever comes first.
    """
    ready, release = threading.Event(), threading.Event()

    def hold() -> None:
        with contextlib.closing(sqlite3.connect(path, isolation_level=None)) as conn:
            conn.execute("BEGIN IMMEDIATE")
            ready.set()
            release.wait(seconds)
            conn.execute("COMMIT")

    thread = threading.Thread(target=hold)
    thread.start()
    try:
        assert ready.wait(5), "could not take the write lock"
        yield
    finally:
        release.set()
        thread.join()


def test_lock_shorter_than_busy_timeout_is_waited_out(short_busy: Served) -> None:
    """T53: a write lock held outside for less than busy_timeout: the request waits and succeeds."""
    served = short_busy
    cookie = write_session(served, 1)
    with write_lock_held(sqlite_path(served), 0.3), Client(served.server.port, cookie) as client:
        assert client.get("/dump")[0] == 200  # reads go on beside the writer (WAL)
        started = time.monotonic()
        status, body, _ = client.get("/write?v=2")
        waited = time.monotonic() - started
    assert status == 200, f"{status} {body}\n{served.server.tail()}"
    assert waited < BUSY_TIMEOUT
    assert whole_version(served, cookie) == 2


def test_lock_longer_than_busy_timeout_gives_a_503_not_a_hang(short_busy: Served) -> None:
    """T53: a write lock held past busy_timeout: a 503 with Retry-After in about that time."""
    served = short_busy
    cookie = write_session(served, 1)
    with write_lock_held(sqlite_path(served), 10), Client(served.server.port, cookie) as client:
        started = time.monotonic()
        status, body, headers = client.get("/write?v=2")
        waited = time.monotonic() - started
    assert status == 503, f"{status} {body}\n{served.server.tail()}"
    assert headers["Retry-After"] and "locked" not in body
    assert BUSY_TIMEOUT * 0.9 <= waited < BUSY_TIMEOUT * 2, f"answered after {waited:.2f}s"
    assert whole_version(served, cookie) == 1  # the refused write left the old session
    with Client(served.server.port, cookie) as client:
        assert client.get("/write?v=3")[0] == 200, served.server.tail()
    assert "Traceback" not in served.server.log(), served.server.tail()
