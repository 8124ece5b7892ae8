"""Log out everywhere under gunicorn: one user's browsers keep working while one revokes the rest.

Several clients (threads, each with its own cookie) log in as one user and keep reading,
writing and logging in again (a new id for the same user) in four sync workers; midway, one
of them ends all the others' sessions with ``revoke_other_sessions()``. Afterwards exactly one
of that user's sessions lives, the revoker's, and no other client's next request finds a
session: no in-flight save or re-login brought a revoked one back.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator

import pytest

import wsgisession
from tests.live.load.server import Client, Served, run_together, serving
from tests.support.stores import LOAD_STORES
from wsgisession import NoUserIndexError

pytestmark = pytest.mark.load

CLIENTS = 6
#: Requests each client makes before the revoker revokes, and after it (at least).
BEFORE, AFTER = 30, 30
USER = "carol"
#: What each client does at step i: mostly reads and writes, some log in again.
OPS = ("read", "write", "read", "write", "relogin", "read", "write")


@pytest.fixture(scope="module", params=LOAD_STORES)
def served(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Served]:
    """One 4-worker sync server per server store (skipped, as the store contract is, for a
    store that keeps no user index yet)."""
    with serving(request, tmp_path_factory.mktemp("users"), request.param, "sync 4") as served:
        with served.backend.open() as store:
            try:
                wsgisession.user_sessions(store, USER)
            except NoUserIndexError as exc:
                pytest.skip(f"{type(store).__name__} keeps no user index: {exc}")
        yield served


def test_revoke_others_while_they_keep_working_leaves_one_session(served: Served) -> None:
    """Revoke all others mid-traffic: one session of the user lives, none comes back."""
    port = served.server.port
    clients = [Client(port) for _ in range(CLIENTS)]
    for client in clients:
        status, body, _ = client.get(f"/bind?user={USER}")
        assert status == 200 and body == {"user_id": USER}, served.server.tail()
    with served.backend.open() as store:
        assert len(wsgisession.user_sessions(store, USER)) == CLIENTS, served.server.tail()

    revoked = threading.Event()
    outcome: dict[str, object] = {}
    failures: list[str] = []
    counts = [0] * CLIENTS
    #: Per other client: its requests sent after the revocation that still found it logged in.
    late_hits: dict[int, int] = {}

    def work(index: int) -> None:
        client = clients[index]
        step = seen_after = 0
        while step < 50 * (BEFORE + AFTER):
            if index == 0 and step == BEFORE:
                status, body, _ = client.get("/revoke-others")
                if status != 200 or not isinstance(body, dict):
                    failures.append(f"revoke: {status} {body}")
                else:
                    outcome.update(body)
                revoked.set()
            if (index == 0 and step >= BEFORE + AFTER) or seen_after >= AFTER:
                break
            was_revoked = revoked.is_set()
            op = OPS[(step + index) % len(OPS)]
            status, body, _ = client.get(f"/as-user?op={op}")
            step += 1
            seen_after += was_revoked
            if status != 200 or not isinstance(body, dict):
                failures.append(f"client {index} step {step} {op}: {status} {body}")
            elif index == 0 and body["user_id"] != USER:
                failures.append(f"the revoker lost its login at step {step}: {body}")
            elif index and was_revoked and body["user_id"] is not None:
                # Sent after revoke_other_sessions() returned: it must find no session.
                late_hits[index] = late_hits.get(index, 0) + 1
        else:
            failures.append(f"client {index} never saw the revocation")
        counts[index] = step

    started = time.monotonic()
    errors = run_together(CLIENTS, work)
    context = f"\n{failures[:5]} {errors[:3]} {outcome}\n{served.server.tail()}"
    with served.backend.open() as store:
        living = wsgisession.user_sessions(store, USER)
    served.record("revoke others mid-traffic", CLIENTS, sum(counts),
                  len(living) - 1, len(failures) + len(errors), started)  # fmt: skip
    assert not errors and not failures, context
    assert outcome.get("revoked") == CLIENTS - 1, context
    assert outcome.get("user_id") == USER, context
    assert not late_hits, f"logged-in answers after the revocation: {late_hits}{context}"
    assert len(living) == 1, f"{len(living)} sessions of {USER} live{context}"
    for index, client in enumerate(clients):
        status, body, _ = client.get("/as-user?op=read")
        assert status == 200, context
        expected = USER if index == 0 else None
        assert body["user_id"] == expected, f"client {index}: {body}{context}"
        client.close()
    with served.backend.open() as store:
        assert len(wsgisession.user_sessions(store, USER)) == 1, context
    served.assert_clean_log()
