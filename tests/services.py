"""Real Redis and PostgreSQL servers for the tests, and stores on them that clean up after them.

A test that needs a server gets one in this order:

1. the one named by ``WSGISESSION_REDIS_URL`` / ``WSGISESSION_POSTGRES_DSN`` (``.ci/run`` sets
   them when the machine's own servers answer);
2. else a throwaway server started from the binaries on ``PATH`` (or PostgreSQL's versioned
   folder), on a free loopback port, in a temporary folder;
3. else the test is skipped with the reason, except under ``CI=true``, where it fails.

Every store a test builds has its own random key prefix or table, removed at the end, so runs
and helpers sharing one server never see each other's data.
"""

from __future__ import annotations

import contextlib
import glob
import os
import pwd
import secrets
import shutil
import socket
import subprocess
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any, NoReturn

import pytest

REDIS_ENV = "WSGISESSION_REDIS_URL"
POSTGRES_ENV = "WSGISESSION_POSTGRES_DSN"


def missing(reason: str) -> NoReturn:
    """Skip for a missing server, or fail under CI=true where every server must be there."""
    if os.environ.get("CI", "").lower() == "true":
        pytest.fail(f"{reason} (CI=true: a missing server is a failure, not a skip)")
    pytest.skip(reason)


def free_port() -> int:
    """A TCP port on the loopback interface that nothing listens on right now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def wait_for_port(port: int, timeout: float = 15.0) -> None:
    """Wait until something accepts connections on the loopback *port*."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.5).close()
            return
        except OSError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.05)


def wait_for_redis_ready(port: int, timeout: float = 15.0) -> None:
    """Wait until the Redis server on *port* answers PING (not LOADING, after a restart)."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.5) as sock:
                sock.sendall(b"PING\r\n")
                if sock.recv(64).startswith(b"+PONG"):
                    return
        except OSError:
            pass
        if time.monotonic() > deadline:
            raise TimeoutError(f"Redis on port {port} did not answer PING within {timeout} s")
        time.sleep(0.05)


@contextlib.contextmanager
def blackhole() -> Iterator[int]:
    """A loopback port whose kernel accepts connections that no one ever answers (a hung server)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        sock.listen(64)
        yield int(sock.getsockname()[1])


# Redis ------------------------------------------------------------------------------------


class RedisServer:
    """A throwaway ``redis-server`` on a free loopback port, with no persistence, in *directory*."""

    def __init__(self, directory: Path, binary: str, persistent: bool = False) -> None:
        self.directory = directory
        self.binary = binary
        #: Keep the data across a stop and start (an append-only file), as a real server would.
        self.persistent = persistent
        self.port = free_port()
        self.process: subprocess.Popen[bytes] | None = None

    @staticmethod
    def find_binary() -> str | None:
        return shutil.which("redis-server")

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> None:
        """Start the server (again, on the same port) and wait until it answers."""
        if self.process is not None:
            return
        self.process = subprocess.Popen(
            [
                self.binary,
                "--port",
                str(self.port),
                "--bind",
                "127.0.0.1",
                "--save",
                "",
                "--appendonly",
                "yes" if self.persistent else "no",
                "--dir",
                str(self.directory),
                "--daemonize",
                "no",
                "--logfile",
                str(self.directory / "redis.log"),
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        wait_for_port(self.port)
        wait_for_redis_ready(self.port)

    def stop(self) -> None:
        """Stop the server and wait until it is gone."""
        if self.process is None:
            return
        self.process.terminate()
        self.process.wait(timeout=15)
        self.process = None


@contextlib.contextmanager
def throwaway_redis(directory: Path, persistent: bool = False) -> Iterator[RedisServer]:
    """A started RedisServer, stopped on exit; skips (fails under CI) without a binary."""
    binary = RedisServer.find_binary()
    if binary is None:
        missing("no redis-server on PATH to start a throwaway Redis (apt-get install redis-server)")
    server = RedisServer(directory, binary, persistent)
    server.start()
    try:
        yield server
    finally:
        server.stop()


# PostgreSQL -------------------------------------------------------------------------------


def _postgres_bin(name: str) -> str | None:
    found = shutil.which(name)
    if found:
        return found
    candidates = sorted(glob.glob(f"/usr/lib/postgresql/*/bin/{name}"))
    return candidates[-1] if candidates else None


class PostgresServer:
    """A throwaway PostgreSQL cluster (initdb, trust auth) on a free loopback port.

    PostgreSQL refuses to run as root; as root the cluster belongs to the ``postgres`` user and
    its commands run through ``runuser``.
    """

    def __init__(self, directory: Path, initdb: str, pg_ctl: str) -> None:
        self.directory = directory
        self.data = directory / "data"
        self.log = directory / "postgres.log"
        self.initdb = initdb
        self.pg_ctl = pg_ctl
        self.port = free_port()
        self.running = False
        self._as: list[str] = []
        if os.geteuid() == 0:
            runuser = shutil.which("runuser") or "/usr/sbin/runuser"
            owner = pwd.getpwnam("postgres")
            os.chown(directory, owner.pw_uid, owner.pw_gid)
            self._as = [runuser, "-u", "postgres", "--"]
        self._run(
            [
                initdb,
                "-D",
                str(self.data),
                "-A",
                "trust",
                "-U",
                "postgres",
                "--no-sync",
                "-E",
                "UTF8",
                "--locale",
                "C",
            ]
        )

    @staticmethod
    def find_binaries() -> tuple[str, str] | None:
        initdb, pg_ctl = _postgres_bin("initdb"), _postgres_bin("pg_ctl")
        if initdb is None or pg_ctl is None:
            return None
        if os.geteuid() == 0:
            try:
                pwd.getpwnam("postgres")
            except KeyError:
                return None
        return initdb, pg_ctl

    def _run(self, command: list[str]) -> None:
        subprocess.run([*self._as, *command], check=True, capture_output=True, timeout=60)

    @property
    def dsn(self) -> str:
        return f"postgresql://postgres@127.0.0.1:{self.port}/postgres"

    def start(self) -> None:
        """Start the cluster (again, on the same port) and wait until it accepts connections."""
        if self.running:
            return
        options = (
            f"-p {self.port} -c listen_addresses=127.0.0.1 -c unix_socket_directories='' "
            "-c fsync=off -c synchronous_commit=off -c full_page_writes=off"
        )
        self._run(
            [
                self.pg_ctl,
                "-D",
                str(self.data),
                "-l",
                str(self.log),
                "-o",
                options,
                "-w",
                "-t",
                "30",
                "start",
            ]
        )
        self.running = True

    def stop(self) -> None:
        """Stop the cluster at once (fast shutdown: sessions are cut off, as in an outage)."""
        if not self.running:
            return
        self._run([self.pg_ctl, "-D", str(self.data), "-m", "fast", "-w", "stop"])
        self.running = False


@contextlib.contextmanager
def throwaway_postgres() -> Iterator[PostgresServer]:
    """A started PostgresServer, stopped and removed on exit; skips (fails under CI) without one."""
    binaries = PostgresServer.find_binaries()
    if binaries is None:
        missing(
            "no initdb/pg_ctl (and, as root, no postgres user) to start a throwaway "
            "PostgreSQL (apt-get install postgresql)"
        )
    # Not under pytest's tmp_path: as root that folder is closed to the postgres user.
    directory = Path(tempfile.mkdtemp(prefix="wsgisession-pg-"))
    try:
        server = PostgresServer(directory, *binaries)
        server.start()
        try:
            yield server
        finally:
            server.stop()
    finally:
        shutil.rmtree(directory, ignore_errors=True)


# Fixtures ---------------------------------------------------------------------------------


@pytest.fixture(scope="session")
def redis_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A Redis URL: $WSGISESSION_REDIS_URL, else a throwaway server for the whole run."""
    url = os.environ.get(REDIS_ENV)
    if url:
        yield url
        return
    with throwaway_redis(tmp_path_factory.mktemp("redis")) as server:
        yield server.url


@pytest.fixture(scope="session")
def postgres_dsn() -> Iterator[str]:
    """A PostgreSQL DSN: $WSGISESSION_POSTGRES_DSN, else a throwaway cluster for the whole run."""
    dsn = os.environ.get(POSTGRES_ENV)
    if dsn:
        yield dsn
        return
    with throwaway_postgres() as server:
        yield server.dsn


@pytest.fixture
def redis_server(tmp_path: Path) -> Iterator[RedisServer]:
    """A Redis server of this test's own, which the test may stop and start again (data kept)."""
    with throwaway_redis(tmp_path, persistent=True) as server:
        yield server


@pytest.fixture(scope="session")
def _postgres_cluster() -> Iterator[PostgresServer]:
    with throwaway_postgres() as server:
        yield server


@pytest.fixture
def postgres_server(_postgres_cluster: PostgresServer) -> PostgresServer:
    """A PostgreSQL server for the tests that stop it; running when the test starts."""
    _postgres_cluster.start()
    return _postgres_cluster


def redis_prefix() -> str:
    """A key prefix no other test uses."""
    return f"wsgisession-test:{secrets.token_hex(6)}:"


def postgres_table() -> str:
    """A table name no other test uses."""
    return f"wsgisession_test_{secrets.token_hex(6)}"


def drop_redis_prefix(url: str, prefix: str) -> None:
    """Delete every key under *prefix*."""
    import redis

    with redis.Redis.from_url(url, socket_timeout=5) as client:
        names = list(client.scan_iter(match=prefix + "*", count=1000))
        if names:
            client.delete(*names)


def drop_postgres_table(dsn: str, table: str) -> None:
    """Drop *table* if it exists."""
    import psycopg
    from psycopg import sql

    with psycopg.connect(dsn, autocommit=True, connect_timeout=5) as conn:
        conn.execute(sql.SQL("DROP TABLE IF EXISTS {}").format(sql.Identifier(table)))


def network_store(kind: str, request: pytest.FixtureRequest, **options: Any) -> Any:
    """A RedisStore or PostgresStore on the test servers, emptied and closed after the test."""
    if kind == "redis":
        from wsgisession import RedisStore

        url = str(request.getfixturevalue("redis_url"))
        prefix = redis_prefix()
        redis_store = RedisStore(url, prefix, **options)
        request.addfinalizer(lambda: drop_redis_prefix(url, prefix))
        request.addfinalizer(redis_store.close)
        return redis_store
    if kind == "postgres":
        from wsgisession import PostgresStore

        dsn = str(request.getfixturevalue("postgres_dsn"))
        table = postgres_table()
        pg_store = PostgresStore(dsn, table, **options)
        request.addfinalizer(lambda: drop_postgres_table(dsn, table))
        request.addfinalizer(pg_store.close)
        return pg_store
    raise ValueError(f"unknown network store kind {kind!r}")
