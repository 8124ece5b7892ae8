"""Fixtures of the multi-host suite: the test network, the shared store server, nginx, the hosts.

The suite runs with ``make test-multihost`` (``pytest -m multihost``); a plain ``make test``
leaves it out, because it needs root, network namespaces and nginx. Without those it skips
with the reason, except under ``CI=true``, where it fails.

Scope: the network lives for the whole run; each store server (Redis, then PostgreSQL) for
the tests of that store; nginx and the three gunicorn hosts for one test, since the scenarios
kill and restart hosts. Every fixture undoes what it made even when the test fails,
and the run starts by removing whatever a crashed earlier run left.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from tests.support.netns import Network, kill_processes_in, remove_leftovers
from tests.support.servers import EXAMPLES, AppHost, BridgePostgres, BridgeRedis, Nginx
from wsgisession import ConfigurationError, store_from_url

HOSTS = 3
#: The stores the scenarios run on; MULTIHOST_STORES (comma-separated) picks fewer.
STORES = [s for s in os.environ.get("MULTIHOST_STORES", "redis,postgres").split(",") if s]


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Leave the multihost tests out unless the marker expression asks for them."""
    if "multihost" in (config.option.markexpr or ""):
        return
    dropped = [item for item in items if item.get_closest_marker("multihost")]
    if dropped:
        config.hook.pytest_deselected(items=dropped)
        items[:] = [item for item in items if not item.get_closest_marker("multihost")]


def _unavailable(reason: str) -> None:
    """Skip with *reason*, or fail under CI=true, where the suite must run."""
    if os.environ.get("CI") == "true":
        pytest.fail(f"the multihost suite cannot run: {reason}")
    pytest.skip(reason)


def _check_prerequisites() -> None:
    """Root, iproute2 with working network namespaces, nginx, redis-server and PostgreSQL."""
    if not (EXAMPLES / "login.py").is_file():
        pytest.skip("examples/login.py is not in this tree yet (it comes with the examples work)")
    if os.geteuid() != 0:
        _unavailable("needs root to create network namespaces (run as root)")
    for tool, package in [
        ("ip", "iproute2"),
        ("nginx", "nginx"),
        ("redis-server", "redis-server"),
        ("initdb", "postgresql"),
        ("postgres", "postgresql"),
        ("runuser", "util-linux"),
    ]:
        if shutil.which(tool) is None:
            _unavailable(f"{tool} is not on PATH (apt-get install -y {package})")
    probe = f"wsmh{os.getpid()}-probe"
    made = subprocess.run(["ip", "netns", "add", probe], capture_output=True, text=True)
    if made.returncode != 0:
        _unavailable(f"'ip netns add' is refused here: {made.stderr.strip()}")
    subprocess.run(["ip", "netns", "delete", probe], capture_output=True)


@pytest.fixture(scope="session")
def network() -> Iterator[Network]:
    """The bridge and three host namespaces; removed at the end, and checked to be gone."""
    _check_prerequisites()
    removed = remove_leftovers()
    if removed:
        print(f"\n[multihost] removed leftovers of an earlier run: {', '.join(removed)}")
    net = Network.create(HOSTS)
    yield net
    net.destroy()
    assert net.leftovers() == [], f"namespaces or links left behind: {net.leftovers()}"


@pytest.fixture(scope="session")
def run_dir(network: Network) -> Iterator[Path]:
    """The run's folder for server files and logs; removed at the end."""
    folder = network.run_dir()
    yield folder
    kill_processes_in(folder)  # nothing should be left; this makes sure
    shutil.rmtree(folder, ignore_errors=True)


@pytest.fixture
def balancer(network: Network, run_dir: Path) -> Iterator[Nginx]:
    """nginx on a loopback port, round-robin over the three hosts; fresh for each test.

    Fresh, so that a host marked failed in one test (nginx's fail_timeout) is not skipped in
    the next.
    """
    nginx = Nginx(network, run_dir)
    yield nginx
    nginx.stop()


@pytest.fixture(scope="session", params=STORES)
def store_url(request: pytest.FixtureRequest, network: Network, run_dir: Path) -> Iterator[str]:
    """A fresh Redis or PostgreSQL server on the bridge address, shared by all three hosts."""
    kind = str(request.param)
    server: BridgeRedis | BridgePostgres
    if kind == "redis":
        server = BridgeRedis(network, run_dir)
    elif kind == "postgres":
        server = BridgePostgres(network, run_dir)
    else:
        raise ValueError(f"unknown store {kind!r} in MULTIHOST_STORES; use redis and postgres")
    try:
        store_from_url(server.url).close()  # the driver is there and takes the URL
    except ConfigurationError as exc:
        server.stop()
        pytest.skip(f"this tree has no {kind} store yet: {exc}")
    yield server.url
    server.stop()


@pytest.fixture
def store_kind(store_url: str) -> str:
    """The short name of the store under test, for the figures."""
    return "redis" if store_url.startswith("redis") else "postgres"


HostStarter = Callable[[int, list[str]], AppHost]


@pytest.fixture
def start_host(network: Network, run_dir: Path, store_url: str) -> Iterator[HostStarter]:
    """Start (or restart) gunicorn on host *n* with the given secret keys; all stop at the end."""
    running: dict[int, AppHost] = {}

    def start(n: int, secret_keys: list[str]) -> AppHost:
        if n in running:
            if running[n].secret_keys == secret_keys:
                return running[n]
            running.pop(n).stop()
        running[n] = AppHost(network.hosts[n], run_dir, store_url, secret_keys)
        return running[n]

    yield start
    for host in running.values():
        host.stop()


@pytest.fixture
def hosts(start_host: HostStarter) -> list[AppHost]:
    """All three hosts, serving with one secret key."""
    return [start_host(n, ["multihost-key"]) for n in range(HOSTS)]
