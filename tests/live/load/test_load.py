"""Nothing lost under gunicorn: every store and worker model, many clients at once (T43, T44, T55).

Each server serves three scenarios in turn: eight clients on one session changing their own keys,
eight clients incrementing one shared key, and sixteen clients with sessions of their own.
Run ``make load`` (or ``pytest -m load``) to see the report table.
"""

from __future__ import annotations

import time
from collections.abc import Iterator

import pytest

from tests.support.stores import LOAD_STORES

from .server import WORKER_MODELS, Client, Served, run_together, serving

pytestmark = pytest.mark.load

CLIENTS = 8
ROUNDS = 50


@pytest.fixture(
    scope="module",
    params=[(kind, model) for kind in LOAD_STORES for model in WORKER_MODELS],
    ids=lambda p: f"{p[0]}-{p[1]}",
)
def served(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Served]:
    """One gunicorn per store and worker model, shared by the scenarios of this module."""
    kind, model = request.param
    with serving(request, tmp_path_factory.mktemp("load"), kind, model) as served:
        yield served


def test_disjoint_keys_on_one_session_all_land(served: Served) -> None:
    """T43/T44: 8 clients on one cookie each bump their own key 50 times: every key is 50."""
    cookie = served.new_session().cookie
    assert cookie is not None
    failures: list[str] = []
    bad_status: list[int] = []
    written = set()

    def work(index: int) -> None:
        client = Client(served.server.port, cookie)
        for step in range(ROUNDS):
            last = f"{index}:{step}"
            written.add(last)
            status, body, _ = client.get(f"/rmw?k=c{index}&d=d{index}_{step}&last={last}")
            if status != 200:
                bad_status.append(status)
            if body != {f"c{index}": step + 1}:
                failures.append(f"client {index} step {step}: {status} {body}")
        client.close()

    started = time.monotonic()
    errors = run_together(CLIENTS, work)
    data = served.dump(cookie)
    counters = {f"c{i}": data.get(f"c{i}") for i in range(CLIENTS)}
    lost = sum(ROUNDS - (value if isinstance(value, int) else 0) for value in counters.values())
    distinct = [f"d{i}_{s}" for i in range(CLIENTS) for s in range(ROUNDS)]
    missing = [key for key in distinct if key not in data]
    served.record("disjoint keys, one session", CLIENTS, CLIENTS * ROUNDS,
                  lost + len(missing), len(bad_status) + len(errors), started)  # fmt: skip
    context = f"\n{failures[:5]} {errors[:3]}\n{served.server.tail()}"
    assert not errors and not failures, context
    assert counters == {f"c{i}": ROUNDS for i in range(CLIENTS)}, context
    assert not missing, f"{len(missing)} distinct keys lost, e.g. {missing[:5]}{context}"
    assert data["last"] in written, context  # T44: one of the written values
    assert data["init"] == "1", context  # a key nobody touched is untouched
    served.assert_clean_log()


def test_shared_key_increments_are_exact(served: Served) -> None:
    """Same-key race: 8 clients call session.increment() on one key 50 times each: exactly 400."""
    cookie = served.new_session().cookie
    failures: list[str] = []

    def work(index: int) -> None:
        client = Client(served.server.port, cookie)
        for _ in range(ROUNDS):
            status, body, _ = client.get("/incr?k=shared")
            if status != 200 or not isinstance(body, int):
                failures.append(f"client {index}: {status} {body}")
        client.close()

    started = time.monotonic()
    errors = run_together(CLIENTS, work)
    assert cookie is not None
    value = served.dump(cookie).get("shared")
    total = CLIENTS * ROUNDS
    lost = total - (value if isinstance(value, int) else 0)
    served.record("increment() one key", CLIENTS, total, lost, len(failures) + len(errors), started)
    context = f"\n{failures[:5]} {errors[:3]}\n{served.server.tail()}"
    assert not errors and not failures, context
    assert value == total, f"shared counter is {value}, expected {total}{context}"
    served.assert_clean_log()


def test_sixteen_sessions_never_see_one_another(served: Served) -> None:
    """Isolation: 16 clients with their own sessions only ever see their own data."""
    count, rounds = 16, 25
    failures: list[str] = []
    cookies: dict[int, str | None] = {}

    def work(index: int) -> None:
        me = f"client-{index}"
        client = Client(served.server.port)
        for step in range(rounds):
            status, body, _ = client.get(f"/own?me={me}")
            expected = {"owner": me, "n": step + 1}
            if status != 200 or body["data"] != expected:
                failures.append(f"{me} step {step}: {status} {body}")
            elif step and body["seen"] != {"owner": me, "n": step}:
                failures.append(f"{me} step {step} saw {body['seen']}")
        cookies[index] = client.cookie
        client.close()

    started = time.monotonic()
    errors = run_together(count, work)
    lost = 0
    for index, cookie in cookies.items():
        if cookie is None or served.dump(cookie) != {"owner": f"client-{index}", "n": rounds}:
            lost += 1
    served.record("16 own sessions", count, count * rounds, lost, len(failures) + len(errors),
                  started)  # fmt: skip
    context = f"\n{failures[:5]} {errors[:3]}\n{served.server.tail()}"
    assert not errors and not failures, context
    assert len(set(cookies.values())) == count, context
    assert lost == 0, context
    served.assert_clean_log()


def test_every_worker_serves_from_the_shared_store(served: Served) -> None:
    """T55: with the store opened before the fork (--preload), every worker reads and writes it."""
    count, rounds = 8, 10
    pids: set[str] = set()
    failures: list[str] = []

    def work(index: int) -> None:
        # A new connection per request, each held 20 ms: an idle worker that has just answered
        # would otherwise take every next connection (or keep every keep-alive one), and which
        # worker accepts would decide the test. Busy workers leave the connections to others.
        cookie = None
        for step in range(rounds):
            with Client(served.server.port, cookie) as client:
                status, body, headers = client.get(f"/incr?k=n{index}&hold=0.02")
                cookie = client.cookie
            pids.add(headers["X-Worker-Pid"])
            if status != 200 or body != step + 1:
                failures.append(f"client {index} step {step}: {status} {body}")

    errors = run_together(count, work)
    context = f"\n{failures[:5]} {errors[:3]}\n{served.server.tail()}"
    assert not errors and not failures, context
    assert len(pids) >= 2, f"only workers {pids} answered{context}"
    served.assert_clean_log()
