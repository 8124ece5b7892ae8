"""Requests of one session that overlap in different gunicorn workers (T45 to T48).

A gated request (/slow or /peek) loads the session, says so with a file, and waits for the test
to let it go; meanwhile other requests of the same session complete in other workers.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from typing import Any

import pytest

from tests.support.stores import LOAD_STORES
from wsgisession.signing import hash_id

from .server import Client, Served, serving

pytestmark = pytest.mark.load


@pytest.fixture(scope="module", params=LOAD_STORES)
def served(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Served]:
    """One 4-worker sync server per store, shared by the race tests."""
    with serving(request, tmp_path_factory.mktemp("races"), request.param, "sync 4") as served:
        yield served


class InFlight:
    """A gated request running in a thread, stopped after it loaded its session."""

    def __init__(self, served: Served, cookie: str, path: str, gate: str) -> None:
        self.served = served
        self.gate = gate
        self.result: tuple[int, Any, Any] | None = None
        self.error: BaseException | None = None
        self.thread = threading.Thread(target=self._run, args=(cookie, f"{path}?gate={gate}"))
        self.thread.start()
        loaded = served.gates / f"{gate}.loaded"
        deadline = time.monotonic() + 10
        while not loaded.exists():
            assert time.monotonic() < deadline, f"{path} never loaded\n{served.server.tail()}"
            time.sleep(0.005)

    def _run(self, cookie: str, path: str) -> None:
        try:
            with Client(self.served.server.port, cookie) as client:
                self.result = client.get(path)
        except BaseException as exc:
            self.error = exc

    def finish(self) -> tuple[int, Any, Any]:
        """Let the request go on and return its status, body and headers."""
        (self.served.gates / f"{self.gate}.go").touch()
        self.thread.join(15)
        assert self.error is None and self.result is not None, (
            f"{self.error!r}\n{self.served.server.tail()}"
        )
        return self.result


def session_with(served: Served, query: str) -> str:
    """A new session holding *query*'s keys; return its cookie."""
    with Client(served.server.port) as client:
        status, _, _ = client.get(f"/set?{query}")
    assert status == 200 and client.cookie, served.server.tail()
    return client.cookie


def call(served: Served, cookie: str | None, path: str) -> tuple[int, Any, Client]:
    """One request with *cookie*; return the status, body and the client (holding its cookie)."""
    with Client(served.server.port, cookie) as client:
        status, body, _ = client.get(path)
    assert status == 200, f"{path}: {status} {body}\n{served.server.tail()}"
    return status, body, client


def stored(served: Served, cookie: str) -> Any:
    """What the store holds for *cookie*'s session (None when there is no live record)."""
    with served.backend.open() as store:
        record = store.load(hash_id(cookie), time.time())
    return None if record is None else record.data


def test_deletion_is_not_undone_by_an_overlapping_save(served: Served, request: Any) -> None:
    """T45: A deletes k while B (which loaded k) sets slow: k stays absent and slow lands."""
    cookie = session_with(served, "k=1&keep=1")
    gate = request.node.name
    slow = InFlight(served, cookie, "/slow", gate)
    call(served, cookie, "/del?k")
    status, _, _ = slow.finish()
    assert status == 200, served.server.tail()
    assert stored(served, cookie) == {"keep": "1", "slow": "done"}, served.server.tail()


def test_logout_during_a_slow_request_stays_logged_out(served: Served, request: Any) -> None:
    """T46: /slow in flight, /logout completes, /slow finishes: the old id stays dead."""
    cookie = session_with(served, "user=alice")
    slow = InFlight(served, cookie, "/slow", request.node.name)
    _, _, after_logout = call(served, cookie, "/logout")
    assert after_logout.cookie is None  # the cookie was expired
    status, _, headers = slow.finish()
    assert status == 200
    assert not headers.get_all("Set-Cookie"), "the slow request sent a cookie for a dead session"
    assert stored(served, cookie) is None, f"record resurrected\n{served.server.tail()}"
    _, body, _ = call(served, cookie, "/dump")
    assert body["new"] and body["data"] == {}


def test_login_during_a_slow_request_keeps_old_id_dead(served: Served, request: Any) -> None:
    """T47: /slow in flight, /login regenerates: the old id is dead, the new id's data intact."""
    cookie = session_with(served, "cart=3")
    slow = InFlight(served, cookie, "/slow", request.node.name)
    _, _, logged_in = call(served, cookie, "/login?user=alice")
    new_cookie = logged_in.cookie
    assert new_cookie and new_cookie != cookie
    status, _, headers = slow.finish()
    assert status == 200
    assert not headers.get_all("Set-Cookie")
    assert stored(served, cookie) is None, f"old id resurrected\n{served.server.tail()}"
    assert stored(served, new_cookie) == {"cart": "3", "user": "alice"}, served.server.tail()
    _, body, _ = call(served, cookie, "/dump")
    assert body["new"] and body["data"] == {}


def test_read_only_request_never_clobbers_a_write(served: Served, request: Any) -> None:
    """T48: a read-only request that overlaps a write leaves the written value in place."""
    cookie = session_with(served, "a=old")
    peek = InFlight(served, cookie, "/peek", request.node.name)
    call(served, cookie, "/set?a=new")
    status, body, headers = peek.finish()
    assert (status, body) == (200, {"a": "old"})
    assert not headers.get_all("Set-Cookie")
    assert stored(served, cookie) == {"a": "new"}, served.server.tail()
    served.assert_clean_log()
